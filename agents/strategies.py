"""Trading strategies: how firms turn their compliance position into orders.

Strategies are a registry keyed by the names used in scenario files
(``trading.strategy``): a new strategy is one class and one line in ``STRATEGIES``.
A strategy sees a :class:`TradingState` (numpy arrays, one entry per firm) and returns
the day's orders as arrays: the random draws are made with numpy, the firms' values,
quotes and order sizes in one compiled pass over the firms (:func:`day_orders`); the
exchange then matches the orders one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from etsim.model._numba import njit
from etsim.model.plugins import lookup

if TYPE_CHECKING:  # the model imports this module: no import back at run time
    from etsim.model.scenario import TradingConfig


@dataclass
class TradingState:
    """What the firms know on a trading day, one entry per firm."""

    position: np.ndarray  # expected quota surplus (+) or deficit (-) at the next deadline (t)
    short_later: np.ndarray  # bool: short over all open compliance years together
    sellable: np.ndarray  # quota held that may be sold now (t)
    urgency: np.ndarray  # 0 far from the firm's next deadline, 1 on it
    expected_price: np.ndarray  # CNY/t
    expected_growth: np.ndarray  # expected yearly rate of change of the price
    discount_rate: np.ndarray  # the firm's own yearly discount rate
    penalty_price: np.ndarray  # CNY/t, the cost of a tonne short at the deadline
    budget: np.ndarray  # what the firm may still spend on quota this year (CNY)
    can_trade: np.ndarray  # bool: covered and open for trading today
    limit_down: float
    limit_up: float
    banking: bool
    # CNY/t: the levelised cost of the firm's own option that would close its expected
    # shortage (its marginal abatement cost there); inf when its options cannot. Only
    # filled (by the model) when a strategy uses it, else None.
    own_mac: np.ndarray | None = None
    # CNY/t: the reference price (the last close), on which the listed band is based;
    # patient quotes rest on either side of it. None: no patient quotes.
    reference_price: float | None = None
    # t a year: each firm's annual emissions, against which its position is small or
    # large (patience). None: position size does not change patience.
    annual_need: np.ndarray | None = None
    # t: the exchange's minimum block order (market.block_min_t); 0 = no block orders
    block_min_t: int = 0
    # t: what each firm must sell before its next deadline so as not to have quota
    # cancelled by the carry-over limit (compliance.must_sell); None: no limit
    must_sell: np.ndarray | None = None
    # True when every firm has the same urgency (one deadline for all, as the model's
    # firms have): the strategies then raise it to a power once, not per firm
    shared_urgency: bool = False


@dataclass
class Orders:
    """One day's orders, in arrival order."""

    trader: np.ndarray
    side: np.ndarray  # +1 buy, -1 sell
    quantity: np.ndarray  # t (int64)
    limit_price: np.ndarray  # CNY/t


EARLY = 0.1  # share of the order size used far from a deadline (see order_sizes)

# How a strategy values quota (``value_rule``) and draws its quotes from the values
# (``quote_rule``): the compiled day below branches on these, so a new strategy is a
# class with its rules and, for a new rule, a branch in ``buy_value`` or ``quotes``.
BUY_AT_EXPECTED = 0  # buy value: expected price plus a premium rising with urgency
BUY_AT_OWN_MAC = 1  # buy value: own marginal abatement cost, rising to the penalty
QUOTE_SPREAD = 0  # within quote_spread of the value (uniform draw)
QUOTE_UNIFORM = 1  # uniform between the band's edge and the value (zero intelligence)
QUOTE_MARGIN = 2  # at the firm's own margin from the value (ZIP)

# The formulas of a firm's day, one firm at a time, compiled with numba (they also run
# as plain Python with NUMBA_DISABLE_JIT). The random draws are made with numpy before
# (``BudgetConstrainedStrategy.orders``), in the order the model has always drawn them;
# numpy's own ufuncs on scalars keep every result bit for bit what the former array
# code gave (np.clip is np.minimum(np.maximum(x, low), high) on numbers).


@njit(cache=True)
def _clip(x, low, high):  # pragma: no cover (compiled)
    return np.minimum(np.maximum(x, low), high)


@njit(cache=True)
def buy_value(rule, buyer_premium, urgency, expected, penalty, own_mac
              ):  # pragma: no cover (compiled)
    """The most a firm pays for a tonne (CNY/t): see the strategies' docstrings."""
    if rule == BUY_AT_OWN_MAC:
        mac = np.minimum(own_mac, penalty)
        return mac + urgency * (penalty - mac)
    # up to the expected price plus a premium that doubles by the deadline day, never
    # more than the penalty for a tonne short
    return np.minimum(expected * (1.0 + buyer_premium * (1.0 + urgency)), penalty)


@njit(cache=True)
def sell_value(seller_discount, banking, urgency, expected, growth, rate, short_later,
               must_sell):  # pragma: no cover (compiled)
    """The least a firm takes for a tonne (CNY/t); ``must_sell``: the carry-over limit
    would cancel some of its quota (it cannot be banked)."""
    # a surplus needed for later years is sold only at the expected price or above (it
    # would have to be bought back); a surplus for good at a discount
    discount = 0.0 if short_later else seller_discount
    value = expected * (1.0 - discount)
    if not banking:
        return value * (1.0 - urgency)
    # Hotelling: a banked tonne is worth next year's expected price discounted at the
    # firm's own rate; quota the carry-over limit would cancel is sold as without
    # banking, at a value falling towards the deadline
    hold = expected * (1.0 + growth) / (1.0 + rate)
    if must_sell:
        return value * (1.0 - urgency)
    return np.maximum(value, hold)


@njit(cache=True)
def quotes(rule, buy, sell, low, high, quote_spread, draw, buy_margin, sell_margin
           ):  # pragma: no cover (compiled)
    """A firm's bid and ask from its values, within the day's limits ``low``..``high``.

    ``QUOTE_SPREAD``: up to ``quote_spread`` below the buy value and above the sell
    value (``draw`` uniform in [0, 1)), clipped to the limits, so a firm whose value is
    outside the band quotes at its edge and the price moves towards the values.
    ``QUOTE_UNIFORM``: uniformly between the lower limit and the buy value, and between
    the sell value and the upper limit. ``QUOTE_MARGIN``: ``value x (1 -/+ margin)``.
    """
    if rule == QUOTE_UNIFORM:
        floor = _clip(sell, low, high)
        return low + draw * (_clip(buy, low, high) - low), floor + draw * (high - floor)
    if rule == QUOTE_MARGIN:
        return (_clip(buy * (1.0 - buy_margin), low, high),
                _clip(sell * (1.0 + sell_margin), low, high))
    return (_clip(buy * (1.0 - quote_spread * draw), low, high),
            _clip(sell * (1.0 + quote_spread * draw), low, high))


@njit(cache=True)
def patient_quotes(bid, ask, reference, low, high, quote_spread, depth_draw
                   ):  # pragma: no cover (compiled)
    """A patient firm's bid and ask: its bid at most the reference price less up to
    ``quote_spread`` of it, its ask at least the reference price plus up to that
    (``depth_draw`` uniform in [0, 1)), within the day's limits."""
    depth = quote_spread * depth_draw
    return (_clip(np.minimum(bid, reference * (1.0 - depth)), low, high),
            _clip(np.maximum(ask, reference * (1.0 + depth)), low, high))


@njit(cache=True)
def calm(urgency, position, annual_need, has_need):  # pragma: no cover (compiled)
    """How far a firm is from having to trade: ``1 - urgency``, times ``1 - |position| /
    annual emissions`` (within 0..1) when its annual needs are known: a position small
    against its yearly needs can wait."""
    calm_ = 1.0 - urgency
    if has_need:
        size = np.abs(position) / np.maximum(annual_need, 1.0)
        calm_ = calm_ * _clip(1.0 - size, 0.0, 1.0)
    return calm_


@njit(cache=True)
def block_quantity(quantity, cap, position, block_threshold_t, minimum
                   ):  # pragma: no cover (compiled)
    """The tonnes of today's order a firm takes to the block session (sliced blocks).

    Args:
        quantity: Today's order size (t).
        cap: The most the firm may order today (t): what it needs or may sell, within
            its budget or holdings.
        position: The firm's position (t).
        block_threshold_t: ``trading.block_threshold_t``.
        minimum: The exchange's minimum block size (t); 0: no block orders.

    Returns:
        ``(1 - block_threshold_t / |position|) x quantity`` (0 at or below the
        threshold), raised to the exchange's minimum block size where the block part of
        the whole position reaches it (block trades are large lumps), within ``cap``; 0
        where that is still below the minimum.
    """
    if minimum <= 0:
        return 0.0
    size = np.abs(position)
    share = _clip(1.0 - block_threshold_t / np.maximum(size, 1.0), 0.0, 1.0)
    block = np.floor(share * quantity)
    if share * size >= minimum and block < minimum:
        block = np.minimum(minimum, cap)
    return block if block >= minimum else 0.0


@njit(cache=True)
def block_deal(size, cap, minimum, deals):  # pragma: no cover (compiled)
    """A firm's block order in lumpy block trading (``trading.block_deals``).

    Args:
        size: What the firm has left to trade for its deadline (t).
        cap: The most it may order today (t).
        minimum: The exchange's minimum block size (t).
        deals: ``trading.block_deals``.

    Returns:
        ``max(minimum, ceil(size / deals))`` within ``cap`` where ``size`` is at least the
        minimum and that order still is; else 0 (the firm trades on the listed session).
    """
    if minimum <= 0 or deals <= 0:
        return 0.0
    deal = np.minimum(np.maximum(np.ceil(size / deals), minimum), cap)
    return deal if size >= minimum and deal >= minimum else 0.0


@njit(cache=True)
def _values(params, rule, banking, urgency, expected, growth, rate, penalty, short_later,
            own_mac, must_sell):  # pragma: no cover (compiled)
    """Every firm's buy and sell value (``BudgetConstrainedStrategy.reservation_values``)."""
    n = len(expected)
    buy, sell = np.empty(n), np.empty(n)
    for i in range(n):
        buy[i] = buy_value(rule, params[P_BUYER_PREMIUM], urgency[i], expected[i],
                           penalty[i], own_mac[i] if len(own_mac) else 0.0)
        sell[i] = sell_value(params[P_SELLER_DISCOUNT], banking, urgency[i], expected[i],
                             growth[i], rate[i], short_later[i],
                             len(must_sell) > 0 and must_sell[i] >= 1)
    return buy, sell


# positions of the strategy's parameters in its ``params`` array (``_parameters``)
(P_BASE_ACTIVITY, P_PEAK_ACTIVITY, P_BUYER_PREMIUM, P_SELLER_DISCOUNT, P_QUOTE_SPREAD,
 P_PATIENCE, P_ORDER_SHARE, P_BLOCK_THRESHOLD, P_BLOCK_DEALS) = range(9)


@njit(cache=True)
def day_orders(params, value_rule, quote_rule, banking, low, high, reference, minimum,
               position, short_later, sellable, urgency, urgency_8, expected, growth, rate,
               penalty, budget, allowed, own_mac, annual_need, must_sell, active_draw,
               quote_draw, buy_margin, sell_margin, patient_draw, depth_draw, deal_draw
               ):  # pragma: no cover (compiled)
    """One strategy's orders of the day (``BudgetConstrainedStrategy.orders``).

    Per firm arrays as in ``TradingState`` (``allowed``: may trade and uses this
    strategy; ``urgency_8``: urgency to the 8th power; both urgencies may instead be
    one value all firms share, an array of length 1); ``own_mac``, ``annual_need``,
    ``must_sell``, ``quote_draw``, the margins, ``patient_draw`` (with ``depth_draw``)
    and ``deal_draw`` are empty when not used. ``reference`` is NaN without patient
    quotes; ``minimum`` is the minimum block size (0: none).

    Returns:
        ``(trader, side, quantity, limit_price, buy_value, sell_value)``: the orders,
        block orders first (buys, then sells), then listed ones, each in firm order; the
        values of the active firms (NaN for the others).
    """
    n = len(position)
    base, peak = params[P_BASE_ACTIVITY], params[P_PEAK_ACTIVITY]
    spread, patience = params[P_QUOTE_SPREAD], params[P_PATIENCE]
    order_share = params[P_ORDER_SHARE]
    patient_on = len(patient_draw) > 0
    limited = banking and len(must_sell) > 0
    buy_values, sell_values = np.full(n, np.nan), np.full(n, np.nan)
    # per active firm: its quotes and its four orders' tonnes (block and listed sides)
    firm = np.empty(n, dtype=np.int64)
    bid, ask = np.empty(n), np.empty(n)
    tonnes = np.zeros((4, n))
    m = 0
    shared = len(urgency) == 1  # one urgency for all firms
    for i in range(n):
        u = urgency[0] if shared else urgency[i]
        if not (allowed[i] and active_draw[i] < base + (peak - base) * u):
            continue
        p = position[i]
        buying = p < 0
        selling = p >= 1 and sellable[i] >= 1
        # Obligations are whole tonnes: a buyer short of any fraction needs one more tonne.
        if not (buying or selling):
            continue
        cancel = limited and must_sell[i] >= 1
        bv = buy_value(value_rule, params[P_BUYER_PREMIUM], u, expected[i], penalty[i],
                       own_mac[i] if len(own_mac) else 0.0)
        sv = sell_value(params[P_SELLER_DISCOUNT], banking, u, expected[i], growth[i],
                        rate[i], short_later[i], cancel)
        buy_values[i], sell_values[i] = bv, sv
        b, a = quotes(quote_rule, bv, sv, low, high, spread,
                      quote_draw[i] if len(quote_draw) else 0.0,
                      buy_margin[i] if len(buy_margin) else 0.0,
                      sell_margin[i] if len(sell_margin) else 0.0)
        if patient_on and patient_draw[i] < patience * calm(
                u, p, annual_need[i] if len(annual_need) else 0.0, len(annual_need) > 0):
            b, a = patient_quotes(b, a, reference, low, high, spread, depth_draw[i])
        # Orders grow with urgency: firms put off most of their trading to the run-up
        # to the deadline (China's "tidal" trading), and in its last days they order
        # all that is left.
        u8 = urgency_8[0] if shared else urgency_8[i]
        share = order_share * np.maximum(u, EARLY) + (1.0 - order_share) * u8
        buy_block = sell_block = buy_listed = sell_listed = 0.0
        if buying:
            affordable = np.floor(np.maximum(budget[i], 0.0) / np.maximum(b, 0.01))
            need = np.ceil(-p)
            cap = np.minimum(need, affordable)
            qty = np.minimum(np.ceil(share * -p), affordable)
            buy_block, buy_listed = _split(qty, cap, need, p, share, params, minimum,
                                           deal_draw, i)
        if selling:
            # what a firm sells for its deadline: its surplus, or first what the
            # carry-over limit would cancel (sold at the value without banking)
            surplus = np.floor(p)
            if cancel:
                surplus = np.minimum(surplus, must_sell[i])
            cap = np.minimum(surplus, sellable[i])
            qty = np.minimum(np.ceil(share * surplus), sellable[i])
            sell_block, sell_listed = _split(qty, cap, surplus, p, share, params, minimum,
                                             deal_draw, i)
        firm[m], bid[m], ask[m] = i, b, a
        tonnes[0, m], tonnes[1, m] = buy_block, sell_block
        tonnes[2, m], tonnes[3, m] = buy_listed, sell_listed
        m += 1
    count = 0
    for part in range(4):
        for k in range(m):
            if tonnes[part, k] >= 1:
                count += 1
    trader = np.empty(count, dtype=np.int64)
    side = np.empty(count, dtype=np.int64)
    quantity = np.empty(count, dtype=np.int64)
    price = np.empty(count)
    j = 0
    for part in range(4):
        buys = part % 2 == 0
        for k in range(m):
            if tonnes[part, k] >= 1:
                trader[j] = firm[k]
                side[j] = 1 if buys else -1
                quantity[j] = np.int64(tonnes[part, k])
                price[j] = bid[k] if buys else ask[k]
                j += 1
    return trader, side, quantity, price, buy_values, sell_values


@njit(cache=True)
def _split(qty, cap, size, position, share, params, minimum, deal_draw, i
           ):  # pragma: no cover (compiled)
    """A side's order of the day split into its block part and its listed part (t)."""
    deals = params[P_BLOCK_DEALS]
    if deals > 0:
        # lumpy: a large position is traded in a few block deals, no listed slices. A
        # deal of 1 / block_deals of the position comes with probability share x
        # block_deals on an active day, so the expected flow keeps the timing of the
        # sliced orders (share of the position a day), bunched before the deadline.
        block = block_deal(size, cap, minimum, deals)
        if not deal_draw[i] < share * deals:
            block = 0.0
        listed = 0.0 if size >= minimum else qty
    else:
        # a share of a large position's order goes to the block session
        block = block_quantity(qty, cap, position, params[P_BLOCK_THRESHOLD], minimum)
        listed = np.maximum(qty - block, 0.0)
    if minimum > 0:
        # a listed order is below block size (calibration 3): the rest waits
        listed = np.minimum(listed, minimum - 1)
    return block, listed


class BudgetConstrainedStrategy:
    """Firms buy their expected deficit and sell their expected surplus.

    Each day a firm with a position to trade places one order with probability
    ``base_activity + (peak_activity - base_activity) x urgency``, so trading bunches
    before the deadline. Its limit price is random within its reservation value, in the
    spirit of zero-intelligence constrained traders (Gode & Sunder 1993) but drawn
    within ``quote_spread`` of the value rather than across the whole band, so that the
    price is pulled towards the traders' values: a buyer bids up to ``quote_spread``
    below its reservation value, which rises from ``expected x (1 + buyer_premium)`` far
    from the deadline to ``expected x (1 + 2 x buyer_premium)`` on the deadline day,
    never above the penalty price; a seller asks up to ``quote_spread`` above its
    reservation value. The seller's reservation value is ``expected x (1 -
    seller_discount)`` for a surplus it will not need, the expected price for one it
    will need in later years, and it falls with urgency when quota cannot be banked.
    When quota can be banked, a seller never takes less than the value of holding
    (Hotelling): ``expected x (1 + expected growth) / (1 + its discount rate)``, so a
    firm that expects the price to rise faster than its discount rate banks its
    surplus, and one that does not sells it.
    Purchases are limited by the firm's carbon budget for the year. Where a carry-over
    limit would cancel part of a firm's surplus after its next deadline
    (``TradingState.must_sell``), that part cannot be banked: the firm sells it first,
    at the value without banking (falling with urgency), before it holds the rest.

    Patient firms make the book two-sided (:func:`patient_quotes`): an active firm quotes
    patiently with probability ``patience x (1 - urgency) x (1 - |position| / annual
    emissions)`` (:func:`calm`); a patient buyer bids at most the reference price (the
    last close) less up to ``quote_spread``, a patient seller asks at least the
    reference price plus up to ``quote_spread``, never beyond its own reservation
    value, so such orders rest below the best ask and above the best bid until an
    urgent firm takes them.

    Large positions go to the block session (:func:`block_quantity`): a firm takes the
    share ``1 - block_threshold_t / |position|`` of each order (none at or below the
    threshold) to the block session, in orders of at least the exchange's minimum block
    size, so the block share of a firm's trading rises with the size of its position.
    Its listed order stays below block size (as on the exchange); any rest of the day's
    order waits for a later day.

    With ``trading.block_deals`` set, block trading is lumpy instead (:func:`block_deal`):
    a firm whose position is at least the minimum block size trades it in the block
    session only: on a day it is active, with probability ``block_deals`` x the day's
    order share (below), one order of its remaining position divided by ``block_deals``
    (at least the minimum), so its position goes in a few large deals whose expected
    flow has the timing of the sliced orders, rising towards the deadline; firms with
    smaller positions trade on the listed session.

    The day's formulas are compiled (:func:`day_orders`). Other strategies change how
    quota is valued (``value_rule``, :func:`buy_value`) or how quotes are drawn from
    the values (``quote_rule``, :func:`quotes`, with their draws in :meth:`_quote_draws`)
    and may learn from the day's outcome (:meth:`observe`).
    """

    name = "budget_constrained"
    needs_own_mac = False  # whether the model must fill TradingState.own_mac
    value_rule = BUY_AT_EXPECTED
    quote_rule = QUOTE_SPREAD

    def __init__(self, config: TradingConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        # the parameters the compiled day reads, at the positions P_*
        self._params = np.array([
            config.base_activity, config.peak_activity, config.buyer_premium,
            config.seller_discount, config.quote_spread, config.patience,
            config.order_share, config.block_threshold_t, config.block_deals],
            dtype=np.float64)
        # the last day's buy and sell values (a learning strategy's observe reads them)
        self._day_values: tuple[np.ndarray, np.ndarray] | None = None

    def _own_mac(self, state: TradingState) -> np.ndarray:
        if self.value_rule != BUY_AT_OWN_MAC:
            return _NONE
        if state.own_mac is None:
            raise ValueError(f"{self.name} needs the firms' own_mac")
        return _floats(state.own_mac)

    def reservation_values(self, state: TradingState) -> tuple[np.ndarray, np.ndarray]:
        """Per firm: the most it pays to buy and the least it takes to sell (CNY/t)
        (:func:`buy_value`, :func:`sell_value`)."""
        return _values(self._params, self.value_rule, bool(state.banking),
                       _floats(state.urgency), _floats(state.expected_price),
                       _floats(state.expected_growth), _floats(state.discount_rate),
                       _floats(state.penalty_price), _bools(state.short_later),
                       self._own_mac(state), _optional(state.must_sell))

    def _quote_draws(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The day's draws of :func:`quotes` for ``n`` firms: the uniform draws, the
        buying and the selling margins (empty where the rule has none)."""
        return self.rng.random(n), _NONE, _NONE

    def observe(self, orders: Orders, filled: np.ndarray, close: float) -> None:
        """Learn from the day: ``filled`` is True for each order that traded at all."""

    def orders(self, state: TradingState, members: np.ndarray | None = None) -> Orders:
        """The day's orders of the firms in ``members`` (a boolean mask; all if None),
        in firm order (the model shuffles the arrival order): block orders (buys, then
        sells), then listed orders (buys, then sells)."""
        config = self.config
        rng = self.rng
        n = len(state.position)
        # the random draws, in the order the model has always made them
        active_draw = rng.random(n)
        quote_draw, buy_margin, sell_margin = self._quote_draws(n)
        patient = state.reference_price is not None and config.patience > 0
        patient_draw = rng.random(n) if patient else _NONE
        depth_draw = rng.random(n) if patient else _NONE
        deal_draw = rng.random(n) if config.block_deals > 0 else _NONE
        allowed = _bools(state.can_trade)
        if members is not None:
            allowed = allowed & members
        urgency = _floats(state.urgency)
        if state.shared_urgency and len(urgency):
            urgency = urgency[:1]  # the kernel reads one value for all
        trader, side, quantity, price, buy, sell = day_orders(
            self._params, self.value_rule, self.quote_rule, bool(state.banking),
            float(state.limit_down), float(state.limit_up),
            float(state.reference_price) if patient else np.nan, float(state.block_min_t),
            _floats(state.position), _bools(state.short_later), _floats(state.sellable),
            urgency, _power8(urgency),
            _floats(state.expected_price), _floats(state.expected_growth),
            _floats(state.discount_rate), _floats(state.penalty_price),
            _floats(state.budget), allowed, self._own_mac(state),
            _optional(state.annual_need) if patient else _NONE, _optional(state.must_sell),
            active_draw, quote_draw, buy_margin, sell_margin, patient_draw, depth_draw,
            deal_draw)
        self._day_values = (buy, sell)
        return Orders(trader, side, quantity, price)


_NONE = np.zeros(0)  # an array argument a strategy does not use


def _floats(values: np.ndarray) -> np.ndarray:
    """``values`` as a contiguous float64 array (no copy when it already is one)."""
    if type(values) is np.ndarray and values.dtype == np.float64 and values.flags.c_contiguous:
        return values
    return np.ascontiguousarray(values, dtype=np.float64)


def _bools(values: np.ndarray) -> np.ndarray:
    """``values`` as a contiguous bool array (no copy when it already is one)."""
    if type(values) is np.ndarray and values.dtype == np.bool_ and values.flags.c_contiguous:
        return values
    return np.ascontiguousarray(values, dtype=np.bool_)


def _power8(urgency: np.ndarray) -> np.ndarray:
    """``urgency**8`` with numpy's power, as the model has always computed it (Python's
    power of a float differs in the last bit for some values); where the firms share
    one urgency it is raised once."""
    if len(urgency) > 1 and urgency[0] == urgency[-1] and (urgency == urgency[0]).all():
        return np.full(len(urgency), (urgency[:1] ** 8)[0])
    return urgency**8


def _optional(values: np.ndarray | None) -> np.ndarray:
    """An optional per-firm array: empty when None."""
    return _NONE if values is None else _floats(values)


def warm_up() -> None:
    """Compile (or load from the cache) the order formation kernels on a tiny day."""
    two, some = np.ones(2), np.ones(2, dtype=np.bool_)
    day_orders(np.zeros(9), BUY_AT_EXPECTED, QUOTE_SPREAD, True, 1.0, 2.0, np.nan, 0.0,
               two, some, two, two, two, two, two, two, two, two, some, _NONE, _NONE, _NONE,
               two, two, _NONE, _NONE, _NONE, _NONE, _NONE)
    _values(np.zeros(9), BUY_AT_EXPECTED, True, two, two, two, two, two, some, _NONE, _NONE)


class ZeroIntelligenceStrategy(BudgetConstrainedStrategy):
    """Zero-intelligence constrained quotes (Gode & Sunder 1993) on the same positions.

    A buyer bids uniformly between the day's lower limit and its reservation value, a
    seller asks uniformly between its reservation value and the upper limit: random,
    but never a trade at a loss against the firm's own value (``QUOTE_UNIFORM``).
    """

    name = "zero_intelligence"
    quote_rule = QUOTE_UNIFORM


class ZIPStrategy(BudgetConstrainedStrategy):
    """Adaptive profit margins (Cliff's zero-intelligence-plus, ZIP) on the same positions.

    Each firm keeps a buying and a selling margin: it bids ``value x (1 - margin)`` and
    asks ``value x (1 + margin)`` (``QUOTE_MARGIN``). After each day in which it quoted,
    it moves its quote a share ``zip_learning_rate`` of the way towards a target next to
    the close: below it when its order traded (it tries to pay less or charge more next
    time), above it for a bid that did not trade, below it for an ask that did not
    (Widrow-Hoff rule as in Cliff 1997, applied once a day). Margins stay between 0 and
    0.9.
    """

    name = "zip"
    quote_rule = QUOTE_MARGIN

    def __init__(self, config: TradingConfig, rng: np.random.Generator) -> None:
        super().__init__(config, rng)
        self.buy_margin: np.ndarray | None = None
        self.sell_margin: np.ndarray | None = None

    def _quote_draws(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """No daily draw; the firms' margins, drawn on the first day."""
        if self.buy_margin is None:
            # Cliff draws initial margins at random; here between 0.05 and 0.35
            self.buy_margin = self.rng.uniform(0.05, 0.35, n)
            self.sell_margin = self.rng.uniform(0.05, 0.35, n)
        return _NONE, self.buy_margin, self.sell_margin

    def observe(self, orders: Orders, filled: np.ndarray, close: float) -> None:
        """Widrow-Hoff step of each quoting firm's margin towards a target near the close."""
        if self._day_values is None or not len(orders.trader):
            return
        rate = self.config.zip_learning_rate
        buy_value, sell_value = self._day_values
        for side, margin, values, sign in ((1, self.buy_margin, buy_value, -1.0),
                                           (-1, self.sell_margin, sell_value, 1.0)):
            mine = orders.side == side
            firms = orders.trader[mine]
            quoted = orders.limit_price[mine]
            traded = filled[mine]
            # traded: aim a little better than the close; not traded: a little worse
            nudge = np.where(traded, sign * 0.02, -sign * 0.02)
            target = close * (1.0 + nudge)
            new_quote = quoted + rate * (target - quoted)
            value = np.maximum(values[firms], 0.01)
            margin[firms] = np.clip(sign * (new_quote / value - 1.0), 0.0, 0.9)


class FundamentalComplianceStrategy(BudgetConstrainedStrategy):
    """A compliance trader that values quota at its own marginal abatement cost.

    A short firm's alternative to buying a tonne is to abate it: its reservation value
    is its own marginal abatement cost at its expected shortage (``own_mac``: the
    levelised cost of its own option that would close the gap), never above the
    penalty price. Abatement decided now arrives only after a lead time, so as the
    deadline nears the value rises with urgency towards the penalty price, the cost of
    a tonne short on the day: ``buy = mac + urgency x (penalty - mac)``
    (``BUY_AT_OWN_MAC``). A long firm sells as every firm does: at the Hotelling value
    of a banked tonne or, without banking, at a value that falls with urgency. Quotes
    are drawn within ``quote_spread`` of the values.
    """

    name = "fundamental_compliance"
    needs_own_mac = True
    value_rule = BUY_AT_OWN_MAC


STRATEGIES: dict[str, type] = {
    strategy.name: strategy
    for strategy in (BudgetConstrainedStrategy, ZeroIntelligenceStrategy, ZIPStrategy,
                     FundamentalComplianceStrategy)
}


def make_strategy(name: str, config: TradingConfig, rng: np.random.Generator):
    """The strategy registered under ``name``."""
    return lookup(STRATEGIES, name, "trading strategy")(config, rng)


class StrategyMix:
    """The firms' trading strategies: one per firm, drawn per sector
    (``trading.strategy_mix``), each strategy placing the orders of its own firms.

    Args:
        names: The strategies in use (``trading.strategy`` first).
        firm_strategy: Per firm, the index of its strategy in ``names``.
        config: The scenario's ``[trading]`` section.
        rng: The model's random generator.
    """

    def __init__(self, names: list[str], firm_strategy: np.ndarray, config: TradingConfig,
                 rng: np.random.Generator) -> None:
        self.names = names
        self.firm_strategy = firm_strategy
        self.strategies = [make_strategy(name, config, rng) for name in names]
        self.rng = rng
        self.needs_own_mac = any(s.needs_own_mac for s in self.strategies)
        # only adaptive strategies need each day's fills (a per-day cost otherwise)
        self.learns = any(
            type(s).observe is not BudgetConstrainedStrategy.observe for s in self.strategies)

    def orders(self, state: TradingState, extra: Callable[[], Orders] | None = None
               ) -> tuple[Orders, np.ndarray]:
        """The day's orders of all strategies in random arrival order, and which
        strategy placed each.

        Args:
            state: What the firms know today.
            extra: Places other accounts' orders (the financial traders') after the
                firms' (the order of the random draws); their orders are marked
                ``len(self.strategies)``.
        """
        if len(self.strategies) == 1 and extra is None:  # one part: nothing to join
            day = self.strategies[0].orders(state)
            arrival = self.rng.permutation(len(day.trader))
            return (Orders(day.trader[arrival], day.side[arrival], day.quantity[arrival],
                           day.limit_price[arrival]), np.zeros(len(arrival), dtype=int))
        if len(self.strategies) == 1:
            parts = [self.strategies[0].orders(state)]
        else:
            parts = [strategy.orders(state, self.firm_strategy == index)
                     for index, strategy in enumerate(self.strategies)]
        if extra is not None:
            parts.append(extra())
        placed_by = np.concatenate([np.full(len(p.trader), i) for i, p in enumerate(parts)])
        arrival = self.rng.permutation(len(placed_by))
        orders = Orders(*(np.concatenate([getattr(p, f) for p in parts])[arrival]
                          for f in ("trader", "side", "quantity", "limit_price")))
        return orders, placed_by[arrival]

    def observe(self, orders: Orders, placed_by: np.ndarray, traded: set[int],
                close: float) -> None:
        """Tell each strategy which of its orders' traders traded today, and the close."""
        filled = np.fromiter((t in traded for t in orders.trader.tolist()), dtype=bool,
                             count=len(orders.trader))
        for index, strategy in enumerate(self.strategies):
            mine = placed_by == index
            part = Orders(orders.trader[mine], orders.side[mine], orders.quantity[mine],
                          orders.limit_price[mine])
            strategy.observe(part, filled[mine], close)
