"""The invariants every run keeps, checked at its end (reported in ``run.json``).

- Quota is never created or destroyed outside the rules: for every vintage, issued
  free + auctioned + reserve releases = holdings + surrendered + cancelled + reserve
  intake (``Registry.ledger``), and the reserve pool's books balance.
- No holding is negative; financial accounts hold what the registry says, within their
  position limits and cash.
- Each firm's running net sales (sold minus bought, exchange and reserve pool) equal the
  sum of its yearly records (both feed the carry-over rule).
- No trade outside the day's price limits, no price or close of 0 or less; every trade
  has a buyer and a seller who are different accounts, and a positive quantity.
- Cash balances: every yuan a firm paid went to the state, the pool, the offset
  market or a financial account.
- Money and prices are numbers: no cash, payment, penalty, fine, cost or trade price is
  NaN or infinite (NaN compares false with everything, so it would pass the checks
  above unseen).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from etsim.model.session import price_band

if TYPE_CHECKING:  # annotations only
    from etsim.model.records import MarketState

# money columns of the firm-year records (CNY)
MONEY_RECORDS = ("penalty", "misreporting_fine", "abatement_cost", "offset_cost", "investment")


class InvariantError(RuntimeError):
    """A run broke one of the invariants (quota created or lost, ...)."""


def check_invariants(model: MarketState) -> dict[str, Any]:
    """Check the invariants above; ``ok`` is False with ``violations`` when broken."""
    violations = []
    ledger = model.registry.ledger()
    for row in ledger:
        if row["balance"] != 0:
            violations.append(f"vintage {row['vintage']}: ledger off by {row['balance']} t")
    if (model.registry.holdings < 0).any():
        violations.append("a holding is negative")
    financial = model.financial
    if financial.n:
        held = model.registry.holdings[financial.rows].sum(axis=1)
        if not np.array_equal(held, financial.holdings):
            violations.append("financial accounts' holdings differ from the registry")
        if (held > financial.position_limit).any() or (financial.cash < -1e-6).any():
            violations.append("a financial account is over its position limit or overdrawn")
    if model.reserve.balance() != 0 or model.reserve.holdings < 0:
        violations.append(f"reserve pool books off by {model.reserve.balance()} t")
    # the carry-over rule reads both counts of net sales: they must agree
    counted = model.fy.net_sales(int(model.years[0]), int(model.years[-1]))
    if not np.array_equal(model.firms.net_sales, counted):
        violations.append("firms' net sales differ from their yearly sales and purchases")
    closes = model.daily["close"]
    if (closes[: model.day] <= 0).any():
        violations.append("a close of 0 or less")
    for log in ([] if _trades_hold(model) else model.trade_log.parts):
        if log["kind"] in ("continuous", "block") and len(log["quantity"]):
            day = log["day"]
            down, up = _bands(model, log)
            if (log["price"] < down - 1e-9).any() or (log["price"] > up + 1e-9).any():
                violations.append(f"day {day}: a {log['kind']} trade outside the price limits")
            if (log["price"] <= 0).any():
                violations.append(f"day {day}: a {log['kind']} trade at a price of 0 or less")
        if (log["buyer_row"] == log["seller_row"]).any():
            violations.append("a trade has the same buyer and seller")
        if (log["quantity"] <= 0).any():
            violations.append("a trade of no quantity")
    # Money: every yuan a firm paid went to the state, the pool, the offset market or a
    # financial account (whose starting cash came from outside the market).
    paid = model.payments
    financial_change = float((financial.cash - float(financial.config.cash)).sum())
    cash_balance = model.firms.cash.sum() + financial_change + (
        paid["auctions"] + paid["reserve_sales"] - paid["reserve_purchases"] + paid["penalties"]
        + paid["fines"] + paid["offsets"]
    )
    scale = max(1.0, abs(paid["penalties"]) + abs(paid["auctions"]))
    if not abs(cash_balance) <= 1e-6 * scale + 1.0:  # "not <=": NaN is off too
        violations.append(f"cash does not balance (off by {cash_balance:.2f} CNY)")
    violations += _not_finite(model)
    return {
        "ok": not violations,
        "violations": violations,
        "ledger": ledger,
        "reserve_pool": {"holdings": model.reserve.holdings, "balance": model.reserve.balance()},
        "cash_balance_cny": float(cash_balance),
    }


def _bands(model: MarketState, log: dict[str, Any]) -> tuple[float, float]:
    """The price limits a logged part of trades had to keep (none for the auctions'
    and the reserve pool's)."""
    if log["kind"] not in ("continuous", "block") or not len(log["quantity"]):
        return -np.inf, np.inf
    day = log["day"]
    if log["kind"] == "block":  # the block band around the same previous close
        market = model.scenario.market
        return price_band(model.daily.reference_before(day), market.block_price_limit,
                          market.tick)
    return model.daily["limit_down"][day], model.daily["limit_up"][day]


def _trades_hold(model: MarketState) -> bool:
    """Whether every logged trade keeps the checks of :func:`check_invariants`: inside
    its session's price limits and above 0, between two accounts, of some quantity.
    All trades at once; the per-part messages are written only when one does not."""
    parts = model.trade_log.parts
    if not parts:
        return True
    sizes = np.array([len(log["quantity"]) for log in parts])
    kinds = np.array([log["kind"] for log in parts])
    first_day = np.array([log["day"] for log in parts])
    # each part's band: the day's listed limits, a block band, none for the others
    down = np.where(kinds == "continuous", model.daily["limit_down"][first_day], -np.inf)
    up = np.where(kinds == "continuous", model.daily["limit_up"][first_day], np.inf)
    for k in np.flatnonzero((kinds == "block") & (sizes > 0)).tolist():
        down[k], up[k] = _bands(model, parts[k])
    exchange = np.repeat((kinds == "continuous") | (kinds == "block"), sizes)
    price = np.concatenate([log["price"] for log in parts])
    return not (
        (price < np.repeat(down, sizes) - 1e-9).any()
        or (price > np.repeat(up, sizes) + 1e-9).any()
        or (exchange & (price <= 0)).any()
        or (np.concatenate([log["buyer_row"] for log in parts])
            == np.concatenate([log["seller_row"] for log in parts])).any()
        or (np.concatenate([log["quantity"] for log in parts]) <= 0).any())


def _not_finite(model: MarketState) -> list[str]:
    """Violations for money or prices that are NaN or infinite."""
    found = [f"payments of {kind} are not a finite number ({value})"
             for kind, value in model.payments.items() if not math.isfinite(value)]
    if not np.isfinite(model.firms.cash).all():
        found.append("a firm's cash is not a finite number")
    if model.financial.n and not np.isfinite(model.financial.cash).all():
        found.append("a financial account's cash is not a finite number")
    for name in MONEY_RECORDS:
        if name in model.fy and not np.isfinite(model.fy[name]).all():
            found.append(f"a firm's {name} is not a finite number")
    parts = model.trade_log.parts
    if parts and not np.isfinite(np.concatenate([log["price"] for log in parts])).all():
        found.append("a trade price is not a finite number")
    return found
