"""Trading strategies: how firms turn their compliance position into orders.

Strategies are a registry keyed by the names used in scenario files
(``trading.strategy``): a new strategy is one class and one line in ``STRATEGIES``.
A strategy sees a :class:`TradingState` (numpy arrays, one entry per firm) and returns
the day's orders as arrays, so that order generation is vectorised; the exchange then
matches them one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.scenario import TradingConfig


@dataclass
class TradingState:
    """What the firms know on a trading day, one entry per firm."""

    position: np.ndarray  # expected quota surplus (+) or deficit (-) at the next deadline (t)
    short_later: np.ndarray  # bool: short over all open compliance years together
    sellable: np.ndarray  # quota held that may be sold now (t)
    urgency: np.ndarray  # 0 far from the firm's next deadline, 1 on it
    expected_price: np.ndarray  # CNY/t
    penalty_price: np.ndarray  # CNY/t, the cost of a tonne short at the deadline
    budget: np.ndarray  # what the firm may still spend on quota this year (CNY)
    can_trade: np.ndarray  # bool: covered and open for trading today
    limit_down: float
    limit_up: float
    banking: bool


@dataclass
class Orders:
    """One day's orders, in arrival order."""

    trader: np.ndarray
    side: np.ndarray  # +1 buy, -1 sell
    quantity: np.ndarray  # t (int64)
    limit_price: np.ndarray  # CNY/t


EARLY = 0.1


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
    Purchases are limited by the firm's carbon budget for the year.
    """

    name = "budget_constrained"

    def __init__(self, config: TradingConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng

    def orders(self, state: TradingState) -> Orders:
        """The day's orders for all firms."""
        config = self.config
        rng = self.rng
        n = len(state.position)
        activity = config.base_activity + (config.peak_activity - config.base_activity) * (
            state.urgency
        )
        active = state.can_trade & (rng.random(n) < activity)
        # Obligations are whole tonnes: a buyer short of any fraction needs one more tonne.
        wants_buy = active & (state.position < 0)
        wants_sell = active & (state.position >= 1) & (state.sellable >= 1)

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
        if not state.banking:
            sell_value = sell_value * (1.0 - state.urgency)

        # Quotes lie within quote_spread of the trader's own reservation value (never
        # beyond it), clipped to the day's price limits: a trader whose value is outside
        # the band quotes at its edge, so the price moves towards the values.
        low, high = state.limit_down, state.limit_up
        draw = rng.random(n)
        bid = np.clip(buy_value * (1.0 - config.quote_spread * draw), low, high)
        ask = np.clip(sell_value * (1.0 + config.quote_spread * draw), low, high)

        # Orders grow with urgency: firms put off most of their trading to the run-up
        # to the deadline (China's "tidal" trading), and in its last days they order
        # all that is left.
        share = config.order_share * np.maximum(state.urgency, EARLY) + (
            1.0 - config.order_share
        ) * state.urgency**8
        buy_qty = np.ceil(share * -state.position)
        affordable = np.floor(np.maximum(state.budget, 0.0) / np.maximum(bid, 0.01))
        buy_qty = np.minimum(buy_qty, affordable)
        sell_qty = np.minimum(
            np.ceil(share * np.floor(state.position)), state.sellable
        )

        buyers = np.flatnonzero(wants_buy & (buy_qty >= 1))
        sellers = np.flatnonzero(wants_sell & (sell_qty >= 1))
        trader = np.concatenate([buyers, sellers])
        side = np.concatenate([np.ones(len(buyers), np.int64), -np.ones(len(sellers), np.int64)])
        quantity = np.concatenate([buy_qty[buyers], sell_qty[sellers]]).astype(np.int64)
        price = np.concatenate([bid[buyers], ask[sellers]])
        arrival = rng.permutation(len(trader))
        return Orders(trader[arrival], side[arrival], quantity[arrival], price[arrival])


STRATEGIES: dict[str, type] = {BudgetConstrainedStrategy.name: BudgetConstrainedStrategy}


def make_strategy(config: TradingConfig, rng: np.random.Generator):
    """The strategy registered under ``config.strategy``."""
    try:
        return STRATEGIES[config.strategy](config, rng)
    except KeyError:
        raise KeyError(
            f"unknown trading strategy '{config.strategy}'; allowed: {', '.join(STRATEGIES)}"
        ) from None
