"""Financial traders: exchange accounts that are not compliance firms.

China's national ETS admitted only covered firms at first; the rules on the national
exchange foresee institutions and individuals as further participants. This module gives
the model two kinds of such accounts, registered by the names a scenario would use:

* ``speculator`` -- trades the close against a fundamental anchor (mean reversion): it buys
  when the previous close is below its estimate of value by more than its threshold, and
  sells what it holds when the close is above value by more than the threshold. Its
  estimate of value is the fundamental price the model passes in.
* ``market_maker`` -- quotes a bid and an ask every day around a reference price (the
  previous close, or the previous closing mid quote), ``spread`` apart, and shifts both
  quotes down when its inventory is above half its position limit (up when below), so that
  it sells more readily when long and buys more readily when flat.

Rules every account keeps, whatever its strategy (enforced by :class:`FinancialTraders`,
not by the strategies):

* **No short selling.** China's market has no short selling of allowances: an account
  never offers more than it holds, so its holdings never go below zero.
* **Position limit.** Holdings never exceed ``position_limit_t``: an account never bids
  for more than the room left under its limit.
* **Cash.** An account never bids for more than its cash pays at its bid price; trades
  happen at the resting order's price, never above a bid, so cash never goes negative.

These hold for day orders (one bid and one ask per account per day): what can fill is
at most what was ordered. If the model lets GTC orders of these accounts rest overnight,
it must pass what rests in :attr:`FinancialDayState.resting_buy_t` and friends, so that
new orders leave room for them.

The accounts' quota lives in the model's registry like a firm's; :class:`FinancialTraders`
keeps a mirror of each account's holdings and cash (one array entry per account) so that
orders are generated vectorised, and :meth:`FinancialTraders.settle_trades` updates it
from a session's trades. Its accounts are registry rows ``offset .. offset + n - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from etsim.agents.strategies import Orders
from etsim.model.plugins import lookup

if TYPE_CHECKING:  # the model imports this module: no import back at run time
    from etsim.model.scenario import FinancialTradersConfig

_EPS = 1e-7  # tolerance in ticks against float noise, as in model.exchange


@dataclass
class FinancialDayState:
    """What financial traders know when they place the day's orders.

    Attributes:
        previous_close: The previous session's close (CNY/t).
        limit_down: The listed session's lowest admissible price today.
        limit_up: The listed session's highest admissible price today.
        fundamental_price: The model's fundamental price (CNY/t); speculators' value.
        tick: Price tick; quotes are put on this grid inside the band.
        best_bid: Best bid at the previous close (NaN if none), for a mid reference.
        best_ask: Best ask at the previous close (NaN if none).
        resting_buy_t: Per account, tonnes still bid in orders resting from earlier days
            (GTC), or None; new bids leave room for them under the limit.
        resting_sell_t: Per account, tonnes still offered in resting orders, or None.
        resting_buy_value: Per account, cash the resting bids may cost, or None.
    """

    previous_close: float
    limit_down: float
    limit_up: float
    fundamental_price: float
    tick: float = 0.01
    best_bid: float = math.nan
    best_ask: float = math.nan
    resting_buy_t: np.ndarray | None = None
    resting_sell_t: np.ndarray | None = None
    resting_buy_value: np.ndarray | None = None


class FinancialStrategy:
    """How a group of accounts of one kind quotes; a new kind is one subclass.

    Args:
        config: The scenario's ``[financial]`` section (``FinancialTradersConfig``),
            or an object with the same attributes.
        rng: Random generator; all of the strategy's randomness comes from it.
        n: Number of accounts of this kind.
    """

    name: ClassVar[str] = "financial"

    def __init__(self, config: FinancialTradersConfig, rng: np.random.Generator, n: int) -> None:
        self.config = config
        self.rng = rng
        self.n = n

    def quotes(
        self,
        state: FinancialDayState,
        cash: np.ndarray,
        holdings: np.ndarray,
        position_limit: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The day's wishes of each account, before the container's limits.

        Args:
            state: The day's market state.
            cash: Each account's cash (CNY).
            holdings: Each account's allowances (t).
            position_limit: Each account's position limit (t).

        Returns:
            ``(buy_t, bid, sell_t, ask)``: tonnes to buy (0 for none) and the bid price,
            tonnes to sell and the ask price, one entry per account.
        """
        raise NotImplementedError


class Speculator(FinancialStrategy):
    """Mean reversion on the close towards the fundamental price (see the module doc).

    A buyer bids ``value x (1 - threshold)``, so that any fill leaves it at least its
    threshold below value; a seller asks ``value x (1 + threshold)``. Quotes are clipped
    to the day's band. Thresholds differ by account, drawn once at creation.
    """

    name = "speculator"

    def __init__(self, config: FinancialTradersConfig, rng: np.random.Generator, n: int) -> None:
        super().__init__(config, rng, n)
        spread = config.threshold_dispersion
        self.threshold = config.threshold * (1.0 + spread * rng.uniform(-1.0, 1.0, n))

    def quotes(
        self,
        state: FinancialDayState,
        cash: np.ndarray,
        holdings: np.ndarray,
        position_limit: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Buy below value, sell above, each with probability ``activity``."""
        n = self.n
        active = self.rng.random(n) < self.config.activity  # drawn every day: determinism
        value = state.fundamental_price
        none = np.zeros(n, dtype=np.int64)
        if not (math.isfinite(value) and value > 0):
            return none, np.full(n, np.nan), none, np.full(n, np.nan)
        gap = state.previous_close / value - 1.0
        size = int(self.config.order_t)
        buy_t = np.where(active & (gap < -self.threshold), size, 0)
        sell_t = np.where(active & (gap > self.threshold), size, 0)
        return buy_t, value * (1.0 - self.threshold), sell_t, value * (1.0 + self.threshold)


class MarketMaker(FinancialStrategy):
    """Two-sided quotes around a reference price, skewed by inventory (see the module doc).

    ``bid = ref x (1 - spread/2 - shift)`` and ``ask = ref x (1 + spread/2 - shift)`` with
    ``shift = inventory_skew x (2 x holdings / position_limit - 1)``.
    """

    name = "market_maker"

    def reference_price(self, state: FinancialDayState) -> float:
        """The previous close, or the closing mid quote when configured and both exist."""
        if (self.config.reference == "mid" and math.isfinite(state.best_bid)
                and math.isfinite(state.best_ask)):
            return 0.5 * (state.best_bid + state.best_ask)
        return state.previous_close

    def quotes(
        self,
        state: FinancialDayState,
        cash: np.ndarray,
        holdings: np.ndarray,
        position_limit: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Quote ``quote_t`` on both sides; the container trims what limits forbid."""
        config = self.config
        ref = self.reference_price(state)
        fill = holdings / np.maximum(position_limit, 1)
        shift = config.inventory_skew * (2.0 * fill - 1.0)
        half = 0.5 * config.spread
        size = np.full(self.n, int(config.quote_t), dtype=np.int64)
        return size, ref * (1.0 - half - shift), size.copy(), ref * (1.0 + half - shift)


FINANCIAL_TRADERS: dict[str, type[FinancialStrategy]] = {
    kind.name: kind for kind in (Speculator, MarketMaker)
}
"""Financial trader kinds by the names used in scenario files."""


class FinancialTraders:
    """All financial accounts of a run: their state arrays and their daily orders.

    Args:
        counts: Accounts per kind, e.g. ``{"market_maker": 2, "speculator": 5}``; rows are
            assigned in this order (all accounts of the first kind, then the next).
        config: The scenario's ``[financial]`` section (``FinancialTradersConfig``),
            or an object with the same attributes.
        rng: Random generator; the accounts' orders are deterministic given its state.
        offset: Registry row of the first account; accounts are rows
            ``offset .. offset + n - 1`` and orders carry these ids.

    Attributes:
        cash: Cash per account (CNY), float64.
        holdings: Allowances per account (t), int64; a mirror of the registry.
        position_limit: Position limit per account (t), int64.
        kind: Index into :attr:`kinds` per account.
        kinds: Kind names in row order of their groups.
    """

    def __init__(
        self,
        counts: Mapping[str, int],
        config: FinancialTradersConfig,
        rng: np.random.Generator,
        offset: int,
    ) -> None:


        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset!r}")
        if config.spread <= 0 or config.cash < 0 or config.position_limit_t < 1:
            raise ValueError("need spread > 0, cash >= 0 and position_limit_t >= 1")
        if not (config.threshold > 0 and 0 <= config.threshold_dispersion < 1
                and 0 <= config.activity <= 1):
            raise ValueError("need threshold > 0, 0 <= threshold_dispersion < 1 and "
                             "0 <= activity <= 1")
        if config.reference not in ("close", "mid"):
            raise ValueError(f"reference must be 'close' or 'mid', got {config.reference!r}")
        self.config = config
        self.offset = int(offset)
        self.kinds: list[str] = []
        self.strategies: list[FinancialStrategy] = []
        self._groups: list[slice] = []
        start = 0
        for name, count in counts.items():
            if count < 0:
                raise ValueError(f"negative count for {name!r}: {count}")
            if count == 0:
                continue
            strategy = lookup(FINANCIAL_TRADERS, name, "financial trader")(config, rng, count)
            self.kinds.append(name)
            self.strategies.append(strategy)
            self._groups.append(slice(start, start + count))
            start += count
        self.n = start
        self.kind = np.zeros(self.n, dtype=np.int64)
        for index, group in enumerate(self._groups):
            self.kind[group] = index
        self.cash = np.full(self.n, float(config.cash))
        self.holdings = np.zeros(self.n, dtype=np.int64)
        self.position_limit = np.full(self.n, int(config.position_limit_t), dtype=np.int64)

    @classmethod
    def from_config(
        cls, config: FinancialTradersConfig, rng: np.random.Generator, offset: int
    ) -> FinancialTraders:
        """Market makers then speculators, as many as ``config`` says."""
        return cls({"market_maker": config.market_makers, "speculator": config.speculators},
                   config, rng, offset)

    @property
    def rows(self) -> np.ndarray:
        """Registry rows (= trader ids in orders) of the accounts."""
        return np.arange(self.offset, self.offset + self.n, dtype=np.int64)

    def owns(self, trader: np.ndarray) -> np.ndarray:
        """Mask of the trader ids that are accounts of this container."""
        trader = np.asarray(trader)
        return (trader >= self.offset) & (trader < self.offset + self.n)

    def orders(self, state: FinancialDayState) -> Orders:
        """The day's orders of all accounts: bids first, then asks, each in row order.

        Each account places at most one bid and one ask, on the tick grid inside the day's
        band, the ask at least one tick above its own bid (no self-trade). Quantities are
        cut to the position limit, the cash and the holdings (see the module doc); an
        account left with less than a tonne places nothing on that side.

        Args:
            state: The day's market state.

        Returns:
            :class:`agents.strategies.Orders` with trader ids ``offset + row``.
        """
        n = self.n
        buy_t = np.zeros(n, dtype=np.int64)
        sell_t = np.zeros(n, dtype=np.int64)
        bid = np.full(n, np.nan)
        ask = np.full(n, np.nan)
        for strategy, group in zip(self.strategies, self._groups, strict=True):
            b_t, b, s_t, a = strategy.quotes(state, self.cash[group], self.holdings[group],
                                             self.position_limit[group])
            buy_t[group], bid[group], sell_t[group], ask[group] = b_t, b, s_t, a

        tick = state.tick
        lo = math.ceil(state.limit_down / tick - _EPS)
        hi = math.floor(state.limit_up / tick + _EPS)
        if lo >= hi:  # no room for a bid below an ask
            return _no_orders()
        # Onto the grid, to the less aggressive side, and inside the band.
        bid_tick = np.clip(np.floor(np.nan_to_num(bid, nan=lo) / tick + _EPS), lo, hi)
        ask_tick = np.clip(np.ceil(np.nan_to_num(ask, nan=hi) / tick - _EPS), lo, hi)
        # An account quoting both sides keeps its ask above its bid, or the exchange's
        # self-trade prevention would cancel one; only clipping can make them meet.
        meet = (buy_t >= 1) & (sell_t >= 1) & (ask_tick <= bid_tick)
        bid_tick = np.where(meet, np.minimum(bid_tick, hi - 1), bid_tick)
        ask_tick = np.where(meet, bid_tick + 1, ask_tick)
        bid_price = np.round(bid_tick * tick, 2)
        ask_price = np.round(ask_tick * tick, 2)

        resting_buy = _or_zero(state.resting_buy_t, n)
        resting_sell = _or_zero(state.resting_sell_t, n)
        resting_value = _or_zero(state.resting_buy_value, n)
        room = self.position_limit - self.holdings - resting_buy
        affordable = np.floor(np.maximum(self.cash - resting_value, 0.0)
                              / np.maximum(bid_price, tick))
        buy_t = np.minimum(np.minimum(buy_t, room), affordable).astype(np.int64)
        sell_t = np.minimum(sell_t, self.holdings - resting_sell).astype(np.int64)
        buyers = np.flatnonzero(buy_t >= 1)
        sellers = np.flatnonzero(sell_t >= 1)
        rows = self.rows
        return Orders(
            trader=np.concatenate([rows[buyers], rows[sellers]]),
            side=np.concatenate([np.ones(len(buyers), np.int64),
                                 -np.ones(len(sellers), np.int64)]),
            quantity=np.concatenate([buy_t[buyers], sell_t[sellers]]),
            limit_price=np.concatenate([bid_price[buyers], ask_price[sellers]]),
        )

    def settle(self, rows: np.ndarray, qty_signed: np.ndarray, cash_signed: np.ndarray) -> None:
        """Book trades of the accounts: tonnes in and cash out for a purchase, and back.

        Args:
            rows: Registry rows (trader ids), all of this container; repeats are summed.
            qty_signed: Tonnes received (+) or delivered (-), per entry.
            cash_signed: Cash received (+) or paid (-), per entry.

        Raises:
            ValueError: If a row is not an account here, or the result breaks a rule
                (negative holdings, holdings over the limit, negative cash): a bug in the
                caller, since the orders never allow it.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if not np.all(self.owns(rows)):
            raise ValueError("settle() got rows that are not financial accounts")
        local = rows - self.offset
        np.add.at(self.holdings, local, np.asarray(qty_signed, dtype=np.int64))
        np.add.at(self.cash, local, np.asarray(cash_signed, dtype=np.float64))
        self.check()

    def settle_trades(self, trades: Mapping[str, np.ndarray]) -> None:
        """Book a session's trades (``OrderBook.trades()``) for the accounts among them."""
        buyer, seller = trades["buyer"], trades["seller"]
        qty = np.asarray(trades["quantity"], dtype=np.int64)
        value = np.asarray(trades["price"], dtype=np.float64) * qty
        bought, sold = self.owns(buyer), self.owns(seller)
        if bought.any() or sold.any():
            self.settle(np.concatenate([buyer[bought], seller[sold]]),
                        np.concatenate([qty[bought], -qty[sold]]),
                        np.concatenate([-value[bought], value[sold]]))

    def check(self) -> None:
        """Raise ValueError if an account is short, over its limit or overdrawn."""
        bad = ((self.holdings < 0) | (self.holdings > self.position_limit)
               | (self.cash < -1e-6 * np.maximum(1.0, self.config.cash)))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"financial account {self.offset + row}: holdings {self.holdings[row]} t "
                f"(limit {self.position_limit[row]}), cash {self.cash[row]:.2f}")


def _or_zero(values: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n) if values is None else np.asarray(values, dtype=np.float64)


def _no_orders() -> Orders:
    empty = np.zeros(0, dtype=np.int64)
    return Orders(empty, empty.copy(), empty.copy(), np.zeros(0))
