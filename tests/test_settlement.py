"""Settlement on hand-built state: quota delivered and cash paid for each trade, the
firms' records of what they bought and sold, and the trade log with the payments it adds
(model/settlement.py).

Trades are hand-made dicts as ``OrderBook.trades()`` returns them.
"""

from __future__ import annotations

import numpy as np
import pytest
from institutions import hand_built_market, holding, ledger_balances, make_firms

from etsim.model.records import new_payments
from etsim.model.settlement import AUCTIONEER, RESERVE_POOL, TradeLog


def trades(buyer: list[int], seller: list[int], price: list[float],
           quantity: list[int]) -> dict[str, np.ndarray]:
    """A session's trades as the order book reports them."""
    return {"buyer": np.array(buyer, dtype=np.int64), "seller": np.array(seller, dtype=np.int64),
            "price": np.array(price, dtype=float),
            "quantity": np.array(quantity, dtype=np.int64)}


def test_trades_move_quota_and_cash_and_are_recorded() -> None:
    """Each trade moves tonnes to the buyer and cash to the seller; nothing is created or lost."""
    market = hand_built_market(make_firms(3))
    market.registry.issue(np.array([0]), np.array([100]), 2025, "issued_free")
    market.settlement().settle(trades([1, 2], [0, 0], [94.0, 95.0], [60, 40]),
                               "continuous", day=3, year=2025)
    # firm 0 sold 60 at 94 + 40 at 95 = 5,640 + 3,800 = 9,440 CNY
    assert market.registry.total().tolist() == [0, 60, 40]
    np.testing.assert_allclose(market.firms.cash, [9440.0, -5640.0, -3800.0])
    assert market.firms.cash.sum() == pytest.approx(0.0)
    np.testing.assert_array_equal(market.firms.net_sales, [100, -60, -40])
    col = market.records.col(2025)
    np.testing.assert_array_equal(market.records["bought"][:, col], [0, 60, 40])
    np.testing.assert_array_equal(market.records["sold"][:, col], [100, 0, 0])
    assert ledger_balances(market.registry)


def test_a_firm_trading_twice_in_a_session_has_both_trades_booked() -> None:
    """Several trades of one firm in a session add up (none overwrites another)."""
    market = hand_built_market(make_firms(3))
    market.registry.issue(np.array([0, 2]), np.array([70, 30]), 2025, "issued_free")
    market.settlement().settle(trades([1, 1], [0, 2], [90.0, 91.0], [70, 30]),
                               "continuous", day=0, year=2026)
    # firm 1 bought 70 at 90 + 30 at 91 = 6,300 + 2,730 = 9,030 CNY, booked in 2026
    assert market.registry.total().tolist() == [0, 100, 0]
    assert market.firms.cash[1] == pytest.approx(-9030.0)
    assert market.firms.net_sales[1] == -100
    assert market.records["bought"][1, market.records.col(2026)] == 100


def test_delivery_takes_the_sellers_oldest_vintage_first() -> None:
    """A seller delivers its oldest vintages first."""
    market = hand_built_market(make_firms(2))
    market.registry.issue(np.array([0]), np.array([30]), 2024, "issued_free")
    market.registry.issue(np.array([0]), np.array([70]), 2025, "issued_free")
    market.settlement().settle(trades([1], [0], [95.0], [50]), "block", day=0, year=2025)
    # 30 of vintage 2024, then 20 of vintage 2025
    assert (holding(market.registry, 1, 2024), holding(market.registry, 1, 2025)) == (30, 20)
    assert (holding(market.registry, 0, 2024), holding(market.registry, 0, 2025)) == (0, 50)


def test_delivering_more_than_held_raises_and_moves_nothing() -> None:
    """A seller that cannot deliver raises ValueError; no quota or cash moves."""
    market = hand_built_market(make_firms(2))
    market.registry.issue(np.array([0]), np.array([10]), 2025, "issued_free")
    with pytest.raises(ValueError, match="cannot deliver"):
        market.settlement().settle(trades([1], [0], [95.0], [11]), "continuous", 0, 2025)
    assert market.registry.total().tolist() == [10, 0]
    assert market.firms.cash.tolist() == [0.0, 0.0]
    assert market.trade_log.parts == []


def test_a_session_without_trades_changes_nothing() -> None:
    """No trades: no quota, cash or log entry moves."""
    market = hand_built_market(make_firms(2))
    market.settlement().settle(trades([], [], [], []), "continuous", 0, 2025)
    assert market.trade_log.parts == []
    assert market.firms.cash.tolist() == [0.0, 0.0]


def test_trades_are_logged_with_their_kind_day_and_rows() -> None:
    """Every settled trade is logged with its day, year, rows, price, tonnes and session kind."""
    market = hand_built_market(make_firms(3))
    market.registry.issue(np.array([0]), np.array([100]), 2025, "issued_free")
    market.settlement().settle(trades([1, 2], [0, 0], [94.0, 95.0], [60, 40]),
                               "continuous", day=7, year=2025)
    (part,) = market.trade_log.parts
    assert (part["kind"], part["day"], part["year"]) == ("continuous", 7, 2025)
    assert part["buyer_row"].tolist() == [1, 2] and part["seller_row"].tolist() == [0, 0]
    assert part["price"].tolist() == [94.0, 95.0] and part["quantity"].tolist() == [60, 40]
    # exchange trades are between firms: no money to or from the state
    assert market.payments == new_payments()


def test_trade_log_adds_auction_and_reserve_sales_to_the_payments() -> None:
    """Auction revenue and reserve sales are paid to the state; buy-backs are not sales."""
    payments = new_payments()
    log = TradeLog(payments)
    log.log(0, 2025, np.array([0, 1]), np.full(2, AUCTIONEER), 52.5, np.array([100, 20]),
            "auction")
    log.log(1, 2025, np.array([2]), np.full(1, RESERVE_POOL), 130.0, np.array([10]),
            "reserve")
    log.log(2, 2025, np.full(1, RESERVE_POOL), np.array([0]), 38.0, np.array([50]),
            "reserve")
    log.log(3, 2025, np.array([1]), np.array([0]), 95.0, np.array([5]), "block")
    # auction 52.5 x 120 = 6,300; reserve sale 130 x 10 = 1,300; the buy-back is not a sale
    assert payments["auctions"] == pytest.approx(6300.0)
    assert payments["reserve_sales"] == pytest.approx(1300.0)
    assert payments["reserve_purchases"] == 0.0
    # a scalar price is given to every trade of the part
    assert log.parts[0]["price"].tolist() == [52.5, 52.5]


def test_financial_accounts_keep_their_own_cash_and_holdings() -> None:
    """A financial account keeps its own cash and holdings; firm records get the firm's side."""
    market = hand_built_market(make_firms(2), {"financial.market_makers": 1})
    financial = market.financial
    assert (financial.n, financial.offset) == (1, 2)  # registry row 2
    cash_before = float(financial.cash[0])
    market.registry.issue(np.array([0]), np.array([100]), 2025, "issued_free")
    market.settlement().settle(trades([2], [0], [90.0], [100]), "continuous", 0, 2025)
    # the account pays 100 x 90 = 9,000 CNY for 100 t; firm 0 receives it
    assert financial.holdings[0] == 100 and holding(market.registry, 2, 2025) == 100
    assert financial.cash[0] == pytest.approx(cash_before - 9000.0)
    assert market.firms.cash.tolist() == [9000.0, 0.0]
    assert market.firms.net_sales.tolist() == [100, 0]
    col = market.records.col(2025)
    assert market.records["sold"][:, col].tolist() == [100, 0]
    assert market.records["bought"][:, col].tolist() == [0, 0]
    assert ledger_balances(market.registry)
