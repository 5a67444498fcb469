"""Static double-auction markets: the classic price-discovery check of the exchange.

A static market (Smith 1962; Gode & Sunder 1993) has fixed buyers and sellers whose unit values
and costs are the same in every period. Each period every trader gets its units back, traders
are picked at random to shout one unit into a fresh :class:`model.exchange.OrderBook` whose
band is ``[floor, ceiling]``, and a shout that crosses the book trades at once at the resting
order's price. Each trader has at most one live order: a new shout replaces its old one, and
as in Gode & Sunder a trade cancels all other unaccepted bids and offers. The period ends after
``shouts_per_period`` shouts, or earlier once no trade is possible. Theory says the market
should trade the competitive-equilibrium (CE) quantity near the CE price; allocative efficiency
(realised / maximum surplus) measures how close it gets.

The default market (:data:`BUYER_VALUES`, :data:`SELLER_COSTS`) is hand-built, not one of
Gode & Sunder's: 6 buyers and 6 sellers with 4 units each, values 75-200 CNY/t and costs
50-175 CNY/t, dealt round-robin from one demand and one supply schedule so that most traders
hold both intramarginal and extramarginal units. Its CE is 16 units at any price in
[118, 122] CNY/t (CE price 120) with a maximum surplus of 1109 CNY; 8 units on each side
are extramarginal. Demand and supply are not mirror images, and with the default band
[1, 250] ZI-C's late prices sit about 5 % above the CE price while ZIP's converge to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from etsim.agents.traders import UnitTrader, trader_class
from etsim.model.exchange import BUY, SELL, OrderBook

BUYER_VALUES: tuple[tuple[float, ...], ...] = (
    (200.0, 170.0, 140.0, 108.0),
    (195.0, 165.0, 135.0, 104.0),
    (190.0, 160.0, 130.0, 100.0),
    (185.0, 155.0, 122.0, 95.0),
    (180.0, 150.0, 116.0, 85.0),
    (175.0, 145.0, 112.0, 75.0),
)
"""Redemption values of the default market's six buyers, CNY/t."""

SELLER_COSTS: tuple[tuple[float, ...], ...] = (
    (50.0, 90.0, 112.0, 140.0),
    (60.0, 95.0, 114.0, 150.0),
    (70.0, 100.0, 116.0, 160.0),
    (75.0, 105.0, 118.0, 165.0),
    (80.0, 108.0, 124.0, 170.0),
    (85.0, 110.0, 130.0, 175.0),
)
"""Unit costs of the default market's six sellers, CNY/t."""

FLOOR = 1.0
"""Default lowest admissible price, CNY/t (Gode & Sunder's band started at 1)."""

CEILING = 250.0
"""Default highest admissible price, CNY/t."""


def _units(values: Sequence[Sequence[float]] | Sequence[float]) -> np.ndarray:
    """All units of one side as a flat float array (per-trader lists or a flat list)."""
    parts = [np.ravel(np.asarray(v, dtype=np.float64)) for v in values]
    return np.concatenate(parts) if parts else np.empty(0)


def competitive_equilibrium(
    buyer_values: Sequence[Sequence[float]] | Sequence[float],
    seller_costs: Sequence[Sequence[float]] | Sequence[float],
) -> tuple[float, float, int]:
    """Crossing of the step demand and supply curves.

    With values sorted high to low (``d_1 >= d_2 >= ...``) and costs low to high
    (``s_1 <= s_2 <= ...``), the CE quantity ``q`` is the largest ``k`` with ``d_k >= s_k``,
    and every price in ``[max(s_q, d_{q+1}), min(d_q, s_{q+1})]`` clears the market (a missing
    ``d_{q+1}`` or ``s_{q+1}`` drops out). Use the midpoint as the CE price.

    Args:
        buyer_values: Buyers' unit values, one list per buyer (or one flat list).
        seller_costs: Sellers' unit costs, one list per seller (or one flat list).

    Returns:
        ``(price_low, price_high, quantity)``. With no profitable unit (``quantity == 0``)
        the interval is ``[d_1, s_1]``, the prices at which nobody wants to trade.
    """
    d = np.sort(_units(buyer_values))[::-1]
    s = np.sort(_units(seller_costs))
    if d.size == 0 or s.size == 0:
        raise ValueError("need at least one buyer unit and one seller unit")
    n = min(d.size, s.size)
    q = int(np.count_nonzero(d[:n] >= s[:n]))  # d - s is non-increasing, so a prefix
    if q == 0:
        return float(d[0]), float(s[0]), 0
    low = max(s[q - 1], d[q]) if q < d.size else s[q - 1]
    high = min(d[q - 1], s[q]) if q < s.size else d[q - 1]
    return float(low), float(high), q


def max_surplus(
    buyer_values: Sequence[Sequence[float]] | Sequence[float],
    seller_costs: Sequence[Sequence[float]] | Sequence[float],
) -> float:
    """Maximum total surplus: sum of ``d_k - s_k`` over the CE quantity's units."""
    d = np.sort(_units(buyer_values))[::-1]
    s = np.sort(_units(seller_costs))
    n = min(d.size, s.size)
    gains = d[:n] - s[:n]
    return float(gains[gains >= 0].sum())


def allocative_efficiency(
    buyer_values: Sequence[Sequence[float]] | Sequence[float],
    seller_costs: Sequence[Sequence[float]] | Sequence[float],
    traded_values: Sequence[float],
    traded_costs: Sequence[float],
) -> float:
    """Realised surplus over the maximum (CE) surplus; prices are transfers and drop out.

    Args:
        buyer_values: All buyers' unit values (defines the maximum surplus).
        seller_costs: All sellers' unit costs.
        traded_values: Value of the buyer's unit in each trade.
        traded_costs: Cost of the seller's unit in each trade.

    Returns:
        The efficiency; 1.0 at the CE allocation, negative if losing trades outweigh the
        gains, NaN if the market has no surplus to realise.
    """
    if len(traded_values) != len(traded_costs):
        raise ValueError("traded_values and traded_costs must have the same length")
    best = max_surplus(buyer_values, seller_costs)
    realised = float(np.sum(traded_values) - np.sum(traded_costs))
    return realised / best if best > 0 else math.nan


def late_mean_price(prices: Sequence[float]) -> float:
    """Mean price of the last third of a period's trades (at least one trade; NaN if none)."""
    if len(prices) == 0:
        return math.nan
    return float(np.mean(prices[-math.ceil(len(prices) / 3) :]))


@dataclass(frozen=True)
class StaticMarketResult:
    """Outcome of :func:`run_static_market`.

    Attributes:
        trader: Trader type name.
        floor: Lowest admissible price.
        ceiling: Highest admissible price.
        ce_low: Lower end of the CE price interval.
        ce_high: Upper end of the CE price interval.
        ce_quantity: CE quantity (units).
        ce_price: Midpoint of the CE price interval.
        max_surplus: CE (maximum) surplus, CNY.
        trades: One dict per period with arrays ``buyer`` and ``seller`` (trader index on its
            side), ``price``, ``value`` (the buyer's unit value) and ``cost`` (the seller's
            unit cost), in execution order.
        efficiency: Allocative efficiency per period.
        late_price: Mean price of the last third of each period's trades (NaN if none).
        quantity: Units traded per period.
        shouts: Shouts made per period.
        units_bought: Units bought, shape ``(periods, n_buyers)``.
        units_sold: Units sold, shape ``(periods, n_sellers)``.
    """

    trader: str
    floor: float
    ceiling: float
    ce_low: float
    ce_high: float
    ce_quantity: int
    ce_price: float
    max_surplus: float
    trades: list[dict[str, np.ndarray]]
    efficiency: np.ndarray
    late_price: np.ndarray
    quantity: np.ndarray
    shouts: np.ndarray
    units_bought: np.ndarray
    units_sold: np.ndarray


def _trade_possible(
    buyers: list[UnitTrader],
    sellers: list[UnitTrader],
    floor: float,
    ceiling: float,
    constrained: bool,
) -> bool:
    """Whether any pair of active traders can still trade inside the band."""
    values = [b.value for b in buyers if b.active and (not constrained or b.value >= floor)]
    costs = [s.value for s in sellers if s.active and (not constrained or s.value <= ceiling)]
    if not values or not costs:
        return False
    return not constrained or max(values) >= min(costs)


def run_static_market(
    buyer_values: Sequence[Sequence[float]] = BUYER_VALUES,
    seller_costs: Sequence[Sequence[float]] = SELLER_COSTS,
    trader: str = "zic",
    periods: int = 1,
    shouts_per_period: int = 2000,
    seed: int = 0,
    floor: float = FLOOR,
    ceiling: float = CEILING,
    tick: float = 0.01,
) -> StaticMarketResult:
    """Run a static double-auction market of one trader type on the real order book.

    Args:
        buyer_values: Unit values, one list per buyer, CNY/t.
        seller_costs: Unit costs, one list per seller, CNY/t.
        trader: Trader type, a key of :data:`agents.traders.TRADERS`.
        periods: Number of trading periods. Traders (and so ZIP margins) persist across
            periods; only their units are reset.
        shouts_per_period: Maximum number of shouts (trader picks) per period.
        seed: Seed of the market's random generator (trader parameters, picks and prices).
        floor: Lowest admissible price (the book's ``limit_down``).
        ceiling: Highest admissible price (the book's ``limit_up``).
        tick: Price tick of the book.

    Returns:
        A :class:`StaticMarketResult`.

    Raises:
        KeyError: On an unknown trader name.
        ValueError: On an empty side or non-positive ``periods``/``shouts_per_period``.
    """
    cls = trader_class(trader)
    if periods < 1 or shouts_per_period < 1:
        raise ValueError("periods and shouts_per_period must be >= 1")
    if not buyer_values or not seller_costs:
        raise ValueError("need at least one buyer and one seller")
    rng = np.random.default_rng(seed)
    buyers = [cls(BUY, v, floor, ceiling, rng) for v in buyer_values]
    sellers = [cls(SELL, c, floor, ceiling, rng) for c in seller_costs]
    everyone = buyers + sellers  # book trader id = index here
    nb = len(buyers)
    low, high, q = competitive_equilibrium(buyer_values, seller_costs)
    best = max_surplus(buyer_values, seller_costs)

    trades: list[dict[str, np.ndarray]] = []
    efficiency, late, quantity, shouts = [], [], [], []
    bought = np.zeros((periods, nb), dtype=np.int64)
    sold = np.zeros((periods, len(sellers)), dtype=np.int64)
    for period in range(periods):
        for t in everyone:
            t.reset()
        book = OrderBook(floor, ceiling, tick=tick)
        live = [-1] * len(everyone)  # each trader's resting order id
        rows: list[tuple[int, int, float, float, float]] = []
        n_shouts = 0
        possible = _trade_possible(buyers, sellers, floor, ceiling, cls.constrained)
        while possible and n_shouts < shouts_per_period:
            n_shouts += 1
            active = [i for i, t in enumerate(everyone) if t.active]
            i = active[int(rng.integers(len(active)))]
            t = everyone[i]
            price = t.shout(book.best_bid(), book.best_ask(), rng)
            if price is None:
                continue
            book.cancel(live[i])  # a new shout replaces the trader's old quote
            n_before = len(book.trade_tick)
            live[i] = book.submit(i, t.side, 1, price)
            if live[i] < 0:  # outside the band (cannot happen with in-band shouts)
                continue
            if len(book.trade_tick) == n_before:  # no trade: the shout now rests
                for other in everyone:
                    other.observe(float(price), False, t.side)
                continue
            b, s = book.trade_buyer[-1], book.trade_seller[-1]
            traded = round(book.trade_tick[-1] * book.tick, 2)
            rows.append((b, s - nb, traded, everyone[b].value, everyone[s].value))
            # The incoming order accepted the resting one, so the accepted shout is on the
            # resting side. Learn before the units are used up, so that the two traded units
            # themselves learn that they could have got a better price.
            for other in everyone:
                other.observe(traded, True, -t.side)
            everyone[b].fill()
            everyone[s].fill()
            # Gode & Sunder: a transaction cancels all unaccepted bids and offers.
            for j, order in enumerate(live):
                book.cancel(order)
                live[j] = -1
            possible = _trade_possible(buyers, sellers, floor, ceiling, cls.constrained)
        arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
        trades.append(
            {
                "buyer": arr[:, 0].astype(np.int64),
                "seller": arr[:, 1].astype(np.int64),
                "price": arr[:, 2],
                "value": arr[:, 3],
                "cost": arr[:, 4],
            }
        )
        efficiency.append(allocative_efficiency(buyer_values, seller_costs, arr[:, 3], arr[:, 4]))
        late.append(late_mean_price(arr[:, 2]))
        quantity.append(len(rows))
        shouts.append(n_shouts)
        bought[period] = [b.used for b in buyers]
        sold[period] = [s.used for s in sellers]
    return StaticMarketResult(
        trader=trader,
        floor=book.limit_down,
        ceiling=book.limit_up,
        ce_low=low,
        ce_high=high,
        ce_quantity=q,
        ce_price=(low + high) / 2.0,
        max_surplus=best,
        trades=trades,
        efficiency=np.array(efficiency),
        late_price=np.array(late),
        quantity=np.array(quantity, dtype=np.int64),
        shouts=np.array(shouts, dtype=np.int64),
        units_bought=bought,
        units_sold=sold,
    )
