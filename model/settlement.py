"""Settlement: quota delivered and cash paid for each trade, and the log of all trades.

Every trade of the exchange's sessions, the primary auctions and the reserve pool's
operations is logged here (``TradeLog``), with the registry rows of buyer and seller:
the auctioneer is -1, the reserve pool -2 (``AUCTIONEER``, ``RESERVE_POOL``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from etsim.model import matching

if TYPE_CHECKING:  # annotations only
    from etsim.agents.financial import FinancialTraders
    from etsim.agents.population import FirmState
    from etsim.model.records import FirmYears
    from etsim.model.registry import Registry

AUCTIONEER = -1  # seller of primary-market (paid share) auctions
RESERVE_POOL = -2  # counterparty of reserve pool sales and purchases


class TradeLog:
    """All trades of a run, kept as arrays per session or auction.

    Args:
        payments: The run's money flows (auction revenue and the pool's sales are added).
    """

    def __init__(self, payments: dict[str, float]) -> None:
        self.parts: list[dict[str, Any]] = []
        self.payments = payments

    def log(self, day: int, year: int, buyer_rows: np.ndarray, seller_rows: np.ndarray,
            price: Any, quantity: np.ndarray, kind: str) -> None:
        """Keep trades of one kind (continuous, block, auction, reserve) of a day: a
        part of the log, its ``day`` and ``year`` once, the trades as arrays."""
        n = len(quantity)
        prices = np.asarray(price, dtype=float)
        self.parts.append({
            "day": int(day),
            "buyer_row": np.asarray(buyer_rows, dtype=np.int64),
            "seller_row": np.asarray(seller_rows, dtype=np.int64),
            "price": (prices.copy() if prices.shape == (n,)
                      else np.broadcast_to(prices, (n,)).copy()),
            "quantity": np.asarray(quantity, dtype=np.int64),
            "kind": kind,
            "year": year,
        })
        if kind == "auction":
            self.payments["auctions"] += float((np.asarray(price) * quantity).sum())
        elif kind == "reserve" and buyer_rows[0] >= 0:
            self.payments["reserve_sales"] += float((np.asarray(price) * quantity).sum())


class Settlement:
    """Delivers quota and pays for each trade of an exchange session.

    Args:
        registry: The quota registry (quota moves between accounts).
        firms: The firms' state (``cash`` and ``net_sales`` change).
        records: The firm-year records (``bought`` and ``sold``).
        financial: The financial accounts (they keep their own cash).
        trade_log: Where the trades are logged.
    """

    def __init__(self, registry: Registry, firms: FirmState, records: FirmYears,
                 financial: FinancialTraders, trade_log: TradeLog) -> None:
        self.registry = registry
        self.firms = firms
        self.records = records
        self.financial = financial
        self.trade_log = trade_log

    def accounts(self, year: int) -> tuple[Any, ...]:
        """What a compiled settlement of ``year``'s trades writes, in the order of
        ``_kernels.settle_session``'s arguments after the trades: the registry's
        holdings, the number of firms, the firms' cash and net sales, and their
        ``bought`` and ``sold`` of ``year``."""
        col = self.records.col(year)
        firms = self.firms
        return (self.registry.holdings, firms.n, firms.cash, firms.net_sales,
                self.records["bought"][:, col], self.records["sold"][:, col])

    def settled(self, trades: dict[str, np.ndarray], kind: str, day: int, year: int,
                failed: int) -> None:
        """After a compiled delivery and payment of a session's trades
        (``_kernels.settle_session``, its code ``failed``): raise if a seller could not
        deliver, else book the financial accounts' side and log the trades."""
        self.registry.raise_undelivered(failed, trades["seller"], trades["quantity"])
        if self.financial.n:
            self.financial.settle_trades(trades)
        self.trade_log.log(day, year, trades["buyer"], trades["seller"], trades["price"],
                           trades["quantity"], kind)

    def settle(self, trades: dict[str, np.ndarray], kind: str, day: int, year: int) -> None:
        """Deliver quota and pay for each trade of a session (``OrderBook.trades()``)."""
        buyers, sellers = trades["buyer"], trades["seller"]
        if not len(buyers):
            return
        qty, prices = trades["quantity"], trades["price"]
        firms = self.firms
        col = self.records.col(year)
        kernels = matching.kernels() if matching.engine() == "compiled" else None
        if kernels is not None:
            # deliver, then pay, in one compiled call (the same order as below)
            sellers64 = np.ascontiguousarray(sellers, dtype=np.int64)
            qty64 = np.ascontiguousarray(qty, dtype=np.int64)
            if not (len(sellers64) == len(buyers) == len(qty64)):
                raise ValueError("sellers, buyers and quantities must have the same length")
            failed = kernels.settle_session(
                self.registry.holdings, sellers64, np.ascontiguousarray(buyers, dtype=np.int64),
                qty64, np.ascontiguousarray(prices, dtype=np.float64), *self.accounts(year)[1:])
            self.settled({"buyer": buyers, "seller": sellers64, "price": prices,
                          "quantity": qty64}, kind, day, year, failed)
            return
        self.registry.transfer_many(sellers, buyers, qty)
        value = prices * qty
        buying, bought, paid = buyers, qty, value
        selling, sold, received = sellers, qty, value
        if self.financial.n:
            # financial accounts keep their own cash; firm records are for firm rows
            self.financial.settle_trades(trades)
            n_firms = firms.n
            firm_buys, firm_sells = buyers < n_firms, sellers < n_firms
            buying, bought, paid = buyers[firm_buys], qty[firm_buys], value[firm_buys]
            selling, sold, received = sellers[firm_sells], qty[firm_sells], value[firm_sells]
        np.add.at(firms.cash, buying, -paid)
        np.add.at(firms.cash, selling, received)
        np.add.at(firms.net_sales, buying, -bought)
        np.add.at(firms.net_sales, selling, sold)
        np.add.at(self.records["bought"][:, col], buying, bought)
        np.add.at(self.records["sold"][:, col], selling, sold)
        self.trade_log.log(day, year, buyers, sellers, prices, qty, kind)
