"""Trading strategies: how firms turn their compliance position into orders.

Strategies are a registry keyed by the names used in scenario files
(``trading.strategy``): a new strategy is one class and one line in ``STRATEGIES``.
A strategy sees a :class:`TradingState` (numpy arrays, one entry per firm) and returns
the day's orders as arrays, so that order generation is vectorised; the exchange then
matches them one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

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


@dataclass
class Orders:
    """One day's orders, in arrival order."""

    trader: np.ndarray
    side: np.ndarray  # +1 buy, -1 sell
    quantity: np.ndarray  # t (int64)
    limit_price: np.ndarray  # CNY/t


EARLY = 0.1  # share of the order size used far from a deadline (see order_sizes)


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

    Patient firms make the book two-sided (:meth:`patient_quotes`): an active firm quotes
    patiently with probability ``patience x (1 - urgency) x (1 - |position| / annual
    emissions)``; a patient buyer bids at most the reference price (the last close) less
    up to ``quote_spread``, a patient seller asks at least the reference price plus up to
    ``quote_spread``, never beyond its own reservation value, so such orders rest below
    the best ask and above the best bid until an urgent firm takes them.

    Large positions go to the block session (:meth:`block_quantities`): a firm takes the
    share ``1 - block_threshold_t / |position|`` of each order (none at or below the
    threshold) to the block session, in orders of at least the exchange's minimum block
    size, so the block share of a firm's trading rises with the size of its position.
    Its listed order stays below block size (as on the exchange); any rest of the day's
    order waits for a later day.

    With ``trading.block_deals`` set, block trading is lumpy instead (:meth:`block_deals`):
    a firm whose position is at least the minimum block size trades it in the block
    session only: on a day it is active, with probability ``block_deals`` x the day's
    order share (below), one order of its remaining position divided by ``block_deals``
    (at least the minimum), so its position goes in a few large deals whose expected
    flow has the timing of the sliced orders, rising towards the deadline; firms with
    smaller positions trade on the listed session.

    Other strategies change only how quotes are drawn from the reservation values
    (:meth:`quotes`) and may learn from the day's outcome (:meth:`observe`).
    """

    name = "budget_constrained"
    needs_own_mac = False  # whether the model must fill TradingState.own_mac

    def __init__(self, config: TradingConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng

    def reservation_values(self, state: TradingState) -> tuple[np.ndarray, np.ndarray]:
        """Per firm: the most it pays to buy and the least it takes to sell (CNY/t)."""
        config = self.config
        # A buyer pays up to its expected price plus a premium that doubles by the
        # deadline day, never more than the penalty it would pay per tonne short.
        buy_value = np.minimum(
            state.expected_price * (1.0 + config.buyer_premium * (1.0 + state.urgency)),
            state.penalty_price,
        )
        # A surplus the firm will need for later years is sold only at the expected price
        # or above (it would have to buy it back); a surplus for good at a discount.
        discount = np.where(state.short_later, 0.0, config.seller_discount)
        sell_value = state.expected_price * (1.0 - discount)
        if state.banking:
            # Hotelling: a banked tonne is worth next year's expected price discounted
            # at the firm's own rate; a firm that expects the price to rise faster than
            # its rate holds its surplus unless paid that much now.
            hold_value = state.expected_price * (1.0 + state.expected_growth) / (
                1.0 + state.discount_rate)
            falling = sell_value * (1.0 - state.urgency)
            sell_value = np.maximum(sell_value, hold_value)
            if state.must_sell is not None:
                # quota the carry-over limit would cancel cannot be banked: it is sold
                # as without banking, at a value falling towards the deadline
                sell_value = np.where(state.must_sell >= 1, falling, sell_value)
        else:
            sell_value = sell_value * (1.0 - state.urgency)
        return buy_value, sell_value

    def quotes(
        self, buy_value: np.ndarray, sell_value: np.ndarray, state: TradingState
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per firm: the bid it would place and the ask it would place (CNY/t)."""
        # Quotes lie within quote_spread of the trader's own reservation value (never
        # beyond it), clipped to the day's price limits: a trader whose value is outside
        # the band quotes at its edge, so the price moves towards the values.
        low, high = state.limit_down, state.limit_up
        draw = self.rng.random(len(buy_value))
        spread = self.config.quote_spread
        bid = np.clip(buy_value * (1.0 - spread * draw), low, high)
        ask = np.clip(sell_value * (1.0 + spread * draw), low, high)
        return bid, ask

    def patient_quotes(self, bid: np.ndarray, ask: np.ndarray, state: TradingState
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Per firm, the bid and ask after patience: a patient firm's bid is at most the
        reference price less up to ``quote_spread`` of it, its ask at least the
        reference price plus up to that (uniform draws), within the day's limits; an
        urgent firm's quotes are left as they are (see the class docstring)."""
        patience = self.config.patience
        if state.reference_price is None or patience <= 0:
            return bid, ask
        n = len(bid)
        calm = 1.0 - state.urgency
        if state.annual_need is not None:
            # a position small against the firm's yearly needs can wait
            size = np.abs(state.position) / np.maximum(state.annual_need, 1.0)
            calm = calm * np.clip(1.0 - size, 0.0, 1.0)
        patient = self.rng.random(n) < patience * calm
        depth = self.config.quote_spread * self.rng.random(n)
        reference = state.reference_price
        low, high = state.limit_down, state.limit_up
        patient_bid = np.clip(np.minimum(bid, reference * (1.0 - depth)), low, high)
        patient_ask = np.clip(np.maximum(ask, reference * (1.0 + depth)), low, high)
        return np.where(patient, patient_bid, bid), np.where(patient, patient_ask, ask)

    def block_quantities(self, quantity: np.ndarray, cap: np.ndarray,
                         state: TradingState) -> np.ndarray:
        """Per firm, the tonnes of today's order it takes to the block session.

        Args:
            quantity: Today's order size per firm (t).
            cap: The most the firm may order today (t): what it needs or may sell,
                within its budget or holdings.
            state: What the firms know today.

        Returns:
            ``(1 - block_threshold_t / |position|) x quantity`` (0 at or below the
            threshold), raised to the exchange's minimum block size where the block
            part of the whole position reaches it (block trades are large lumps), within
            ``cap``; 0 where that is still below the minimum.
        """
        minimum = state.block_min_t
        if minimum <= 0:
            return np.zeros_like(quantity)
        size = np.abs(state.position)
        share = np.clip(1.0 - self.config.block_threshold_t / np.maximum(size, 1.0),
                        0.0, 1.0)
        block = np.floor(share * quantity)
        lump = (share * size >= minimum) & (block < minimum)
        block = np.where(lump, np.minimum(minimum, cap), block)
        return np.where(block >= minimum, block, 0.0)

    def block_deals(self, size: np.ndarray, cap: np.ndarray, state: TradingState
                    ) -> np.ndarray:
        """Per firm, the block order of lumpy block trading (``trading.block_deals``).

        Args:
            size: What the firm has left to trade for its deadline (t).
            cap: The most it may order today (t).
            state: What the firms know today.

        Returns:
            ``max(block_min_t, ceil(size / block_deals))`` within ``cap`` where ``size``
            is at least the exchange's minimum block size and that order still is; else 0
            (the firm trades on the listed session).
        """
        minimum = state.block_min_t
        deals = self.config.block_deals
        if minimum <= 0 or deals <= 0:
            return np.zeros_like(size)
        deal = np.minimum(np.maximum(np.ceil(size / deals), minimum), cap)
        return np.where((size >= minimum) & (deal >= minimum), deal, 0.0)

    def observe(self, orders: Orders, filled: np.ndarray, close: float) -> None:
        """Learn from the day: ``filled`` is True for each order that traded at all."""

    def orders(self, state: TradingState, members: np.ndarray | None = None) -> Orders:
        """The day's orders of the firms in ``members`` (a boolean mask; all if None),
        in firm order (the model shuffles the arrival order)."""
        config = self.config
        rng = self.rng
        n = len(state.position)
        activity = config.base_activity + (config.peak_activity - config.base_activity) * (
            state.urgency
        )
        allowed = state.can_trade if members is None else state.can_trade & members
        active = allowed & (rng.random(n) < activity)
        # Obligations are whole tonnes: a buyer short of any fraction needs one more tonne.
        wants_buy = active & (state.position < 0)
        wants_sell = active & (state.position >= 1) & (state.sellable >= 1)
        buy_value, sell_value = self.reservation_values(state)
        bid, ask = self.patient_quotes(*self.quotes(buy_value, sell_value, state), state)

        # Orders grow with urgency: firms put off most of their trading to the run-up
        # to the deadline (China's "tidal" trading), and in its last days they order
        # all that is left.
        share = config.order_share * np.maximum(state.urgency, EARLY) + (
            1.0 - config.order_share
        ) * state.urgency**8
        affordable = np.floor(np.maximum(state.budget, 0.0) / np.maximum(bid, 0.01))
        buy_cap = np.minimum(np.ceil(-state.position), affordable)
        buy_qty = np.minimum(np.ceil(share * -state.position), affordable)
        # what a firm sells for its deadline: its surplus, or first what the carry-over
        # limit would cancel (sold at the value without banking, see reservation_values)
        surplus = np.floor(state.position)
        if state.banking and state.must_sell is not None:
            surplus = np.where(state.must_sell >= 1, np.minimum(surplus, state.must_sell),
                               surplus)
        sell_cap = np.minimum(surplus, state.sellable)
        sell_qty = np.minimum(np.ceil(share * surplus), state.sellable)
        # large positions: a share of the order goes to the block session as its own order
        if config.block_deals > 0:
            # lumpy: a large position is traded in a few block deals, no listed slices. A
            # deal of 1 / block_deals of the position comes with probability share x
            # block_deals on an active day, so the expected flow keeps the timing of the
            # sliced orders (share of the position a day), bunched before the deadline.
            deal_today = rng.random(n) < share * config.block_deals
            buy_block = self.block_deals(np.ceil(-state.position), buy_cap, state)
            sell_block = self.block_deals(surplus, sell_cap, state)
            buy_block = np.where(deal_today, buy_block, 0.0)
            sell_block = np.where(deal_today, sell_block, 0.0)
            large_buy = np.ceil(-state.position) >= state.block_min_t
            large_sell = surplus >= state.block_min_t
            buy_qty = np.where(large_buy, 0.0, buy_qty)
            sell_qty = np.where(large_sell, 0.0, sell_qty)
            buy_listed, sell_listed = buy_qty, sell_qty
        else:
            buy_block = self.block_quantities(buy_qty, buy_cap, state)
            sell_block = self.block_quantities(sell_qty, sell_cap, state)
            buy_listed = np.maximum(buy_qty - buy_block, 0.0)
            sell_listed = np.maximum(sell_qty - sell_block, 0.0)
        if state.block_min_t > 0:
            # a listed order is below block size (calibration 3): the rest waits
            buy_listed = np.minimum(buy_listed, state.block_min_t - 1)
            sell_listed = np.minimum(sell_listed, state.block_min_t - 1)

        parts = [(wants_buy, buy_block, bid, 1), (wants_sell, sell_block, ask, -1),
                 (wants_buy, buy_listed, bid, 1), (wants_sell, sell_listed, ask, -1)]
        traders, sides, quantities, prices = [], [], [], []
        for wants, qty, quote, sign in parts:
            firms = np.flatnonzero(wants & (qty >= 1))
            traders.append(firms)
            sides.append(np.full(len(firms), sign, np.int64))
            quantities.append(qty[firms])
            prices.append(quote[firms])
        return Orders(np.concatenate(traders), np.concatenate(sides),
                      np.concatenate(quantities).astype(np.int64), np.concatenate(prices))


class ZeroIntelligenceStrategy(BudgetConstrainedStrategy):
    """Zero-intelligence constrained quotes (Gode & Sunder 1993) on the same positions.

    A buyer bids uniformly between the day's lower limit and its reservation value, a
    seller asks uniformly between its reservation value and the upper limit: random,
    but never a trade at a loss against the firm's own value.
    """

    name = "zero_intelligence"

    def quotes(
        self, buy_value: np.ndarray, sell_value: np.ndarray, state: TradingState
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform quotes between the price limit and the reservation value."""
        low, high = state.limit_down, state.limit_up
        draw = self.rng.random(len(buy_value))
        bid = low + draw * (np.clip(buy_value, low, high) - low)
        floor = np.clip(sell_value, low, high)
        ask = floor + draw * (high - floor)
        return bid, ask


class ZIPStrategy(BudgetConstrainedStrategy):
    """Adaptive profit margins (Cliff's zero-intelligence-plus, ZIP) on the same positions.

    Each firm keeps a buying and a selling margin: it bids ``value x (1 - margin)`` and
    asks ``value x (1 + margin)``. After each day in which it quoted, it moves its quote
    a share ``zip_learning_rate`` of the way towards a target next to the close: below
    it when its order traded (it tries to pay less or charge more next time), above it
    for a bid that did not trade, below it for an ask that did not (Widrow-Hoff rule as
    in Cliff 1997, applied once a day). Margins stay between 0 and 0.9.
    """

    name = "zip"

    def __init__(self, config: TradingConfig, rng: np.random.Generator) -> None:
        super().__init__(config, rng)
        self.buy_margin: np.ndarray | None = None
        self.sell_margin: np.ndarray | None = None
        self._values: tuple[np.ndarray, np.ndarray] | None = None

    def quotes(
        self, buy_value: np.ndarray, sell_value: np.ndarray, state: TradingState
    ) -> tuple[np.ndarray, np.ndarray]:
        """Quotes at the firms' current margins."""
        if self.buy_margin is None:
            # Cliff draws initial margins at random; here between 0.05 and 0.35
            self.buy_margin = self.rng.uniform(0.05, 0.35, len(buy_value))
            self.sell_margin = self.rng.uniform(0.05, 0.35, len(buy_value))
        self._values = (buy_value, sell_value)
        low, high = state.limit_down, state.limit_up
        bid = np.clip(buy_value * (1.0 - self.buy_margin), low, high)
        ask = np.clip(sell_value * (1.0 + self.sell_margin), low, high)
        return bid, ask

    def observe(self, orders: Orders, filled: np.ndarray, close: float) -> None:
        """Widrow-Hoff step of each quoting firm's margin towards a target near the close."""
        if self._values is None or not len(orders.trader):
            return
        rate = self.config.zip_learning_rate
        buy_value, sell_value = self._values
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
    a tonne short on the day: ``buy = mac + urgency x (penalty - mac)``. A long firm
    sells as every firm does (``BudgetConstrainedStrategy.reservation_values``): at
    the Hotelling value of a banked tonne or, without banking, at a value that falls
    with urgency. Quotes are drawn within ``quote_spread`` of the values.
    """

    name = "fundamental_compliance"
    needs_own_mac = True

    def reservation_values(self, state: TradingState) -> tuple[np.ndarray, np.ndarray]:
        """Buy at the firm's own marginal abatement cost, sell at the value of holding."""
        _, sell_value = super().reservation_values(state)
        if state.own_mac is None:
            raise ValueError("fundamental_compliance needs the firms' own_mac")
        mac = np.minimum(state.own_mac, state.penalty_price)
        buy_value = mac + state.urgency * (state.penalty_price - mac)
        return buy_value, sell_value


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
