"""Unit-level traders for static double-auction markets, as in experimental economics.

Each trader is on one side of the market for good and holds a list of units: redemption
values for a buyer, costs for a seller (Smith 1962). It trades one unit at a time, the best
unit first (highest value, lowest cost), and when picked it shouts a one-unit limit price.
The market (:mod:`model.static_market`) submits the shout to the real
:class:`model.exchange.OrderBook` and tells every trader what happened, so that learning
traders can adapt.

* :class:`ZIC` -- zero intelligence constrained (Gode & Sunder 1993): random prices that
  never make a loss.
* :class:`ZIU` -- zero intelligence unconstrained: random prices across the whole band.
* :class:`ZIP` -- zero intelligence plus (Cliff 1997, HP Labs HPL-97-141): a profit margin
  adapted by the Widrow-Hoff rule with momentum.

The interface is ``shout(best_bid, best_ask, rng) -> price | None``, ``observe(price,
accepted, side)``, ``fill()`` (the current unit traded) and ``reset()`` (new period: all
units back, learned state kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from etsim.model.exchange import BUY, SELL
from etsim.model.plugins import lookup


class UnitTrader:
    """A buyer or seller with a fixed list of units, trading one unit at a time.

    Args:
        side: ``BUY`` (+1) or ``SELL`` (-1).
        values: Redemption values (buyer) or unit costs (seller), CNY/t; any order, they are
            traded best first.
        floor: Lowest admissible price of the market.
        ceiling: Highest admissible price of the market.
        rng: Random generator for traders that draw parameters at creation.
    """

    name: ClassVar[str] = "unit"
    constrained: ClassVar[bool] = True
    """True if the trader never shouts a price at which it would lose money."""

    def __init__(
        self,
        side: int,
        values: Sequence[float],
        floor: float,
        ceiling: float,
        rng: np.random.Generator | None = None,
    ) -> None:
        if side not in (BUY, SELL):
            raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side!r}")
        if len(values) == 0:
            raise ValueError("a trader needs at least one unit")
        if not floor <= ceiling:
            raise ValueError(f"floor {floor} is above ceiling {ceiling}")
        self.side = side
        # Buyers trade their most valuable unit first, sellers their cheapest.
        self.values = sorted((float(v) for v in values), reverse=side == BUY)
        self.floor = float(floor)
        self.ceiling = float(ceiling)
        self.used = 0

    @property
    def active(self) -> bool:
        """True while the trader has units left this period."""
        return self.used < len(self.values)

    @property
    def value(self) -> float:
        """Value (cost) of the current unit; the last unit's once all are used up."""
        return self.values[min(self.used, len(self.values) - 1)]

    def fill(self) -> None:
        """Record that the current unit has traded."""
        if not self.active:
            raise RuntimeError("trader has no units left")
        self.used += 1

    def reset(self) -> None:
        """Start a new period: all units are back; learned state is kept."""
        self.used = 0

    def shout(
        self, best_bid: float | None, best_ask: float | None, rng: np.random.Generator
    ) -> float | None:
        """Limit price for one unit, or None to pass.

        Args:
            best_bid: Best bid in the book, or None.
            best_ask: Best ask in the book, or None.
            rng: Random generator of the market.

        Returns:
            A price inside ``[floor, ceiling]``, or None if the trader does not shout.
        """
        raise NotImplementedError

    def observe(self, price: float, accepted: bool, side: int) -> None:
        """Learn from the last shout (no-op for non-learning traders).

        Args:
            price: The shout's price; for an accepted shout, the trade price.
            accepted: True if the shout was accepted, i.e. a trade happened at ``price``.
            side: Side of the shout: ``BUY`` for a bid, ``SELL`` for an offer. For a trade it
                is the side of the resting order that the incoming order accepted.
        """


class ZIC(UnitTrader):
    """Zero-intelligence constrained trader (Gode & Sunder 1993).

    A buyer bids uniformly on ``[floor, value]``, a seller asks uniformly on
    ``[cost, ceiling]``, so it never trades at a loss and ignores the book.
    """

    name = "zic"

    def shout(
        self, best_bid: float | None, best_ask: float | None, rng: np.random.Generator
    ) -> float | None:
        """Uniform random price between the band edge and the current unit's value."""
        if self.side == BUY:
            low, high = self.floor, min(self.value, self.ceiling)
        else:
            low, high = max(self.value, self.floor), self.ceiling
        if low > high:  # the unit's value lies outside the band: no profitable price
            return None
        return float(rng.uniform(low, high))


class ZIU(UnitTrader):
    """Zero-intelligence unconstrained trader: uniform on ``[floor, ceiling]`` whatever its value.

    It can trade at a loss, so a market of ZIU traders also trades extramarginal units.
    """

    name = "ziu"
    constrained = False

    def shout(
        self, best_bid: float | None, best_ask: float | None, rng: np.random.Generator
    ) -> float | None:
        """Uniform random price across the whole band."""
        return float(rng.uniform(self.floor, self.ceiling))


class ZIP(UnitTrader):
    """Zero-intelligence-plus trader (Cliff 1997, HP Labs HPL-97-141).

    The trader shouts ``value x (1 - margin)`` as a buyer and ``value x (1 + margin)`` as a
    seller; the margin is >= 0 (and <= 1 for a buyer), so it never trades at a loss. Each unit
    has its own margin, kept from period to period: Cliff's traders hold one unit each, and
    one margin shared by units of very different value would put the next unit's price far
    from the last (with a shared margin, mean prices in a static market swung by up to 10 %
    from period to period instead of converging). Only the current unit (the last
    one once all are traded) learns. After
    every shout it moves its price towards a target with the Widrow-Hoff rule with momentum:
    ``delta = beta (target - price)``, ``momentum = gamma momentum + (1 - gamma) delta``,
    ``price += momentum``, and the margin follows from the new price. The target is the last
    shout's price ``q`` perturbed away from the trader's current price, ``R q + A`` with
    ``R ~ U[1, 1 + c_r]`` and ``A ~ U[0, c_a]`` to raise a price, ``R ~ U[1 - c_r, 1]`` and
    ``A ~ U[-c_a, 0]`` to lower it. Cliff's rules, for a seller (a buyer mirrors them):

    * the last shout was accepted at ``q``: if its price ``p <= q`` it raises its margin
      (it could have got more); else, if the shout was a bid and it is still active, it
      lowers its margin (it would not have got that deal);
    * the last shout was an offer that was not accepted: if it is active and ``p >= q``, it
      lowers its margin (its own offer would not have traded either).

    Args:
        side, values, floor, ceiling: As :class:`UnitTrader`.
        rng: Draws the initial margins, ``beta`` and ``gamma`` when they are not given.
        margin: Initial profit margin of every unit; default ``U[0.05, 0.35]`` per unit, as
            in Cliff's experiments.
        beta: Learning rate; default ``U[0.1, 0.5]``.
        gamma: Momentum; default ``U[0, 0.1]``.
        c_r: Relative perturbation of the target price (Cliff: 0.05).
        c_a: Absolute perturbation of the target price, CNY/t (Cliff: 0.05).
    """

    name = "zip"

    def __init__(
        self,
        side: int,
        values: Sequence[float],
        floor: float,
        ceiling: float,
        rng: np.random.Generator | None = None,
        *,
        margin: float | None = None,
        beta: float | None = None,
        gamma: float | None = None,
        c_r: float = 0.05,
        c_a: float = 0.05,
    ) -> None:
        super().__init__(side, values, floor, ceiling, rng)
        rng = rng if rng is not None else np.random.default_rng()
        n = len(self.values)
        # One margin (and momentum) per unit: units of different value need different
        # margins for the same price.
        self.margins = list(rng.uniform(0.05, 0.35, n) if margin is None else [margin] * n)
        self.beta = float(rng.uniform(0.1, 0.5) if beta is None else beta)
        self.gamma = float(rng.uniform(0.0, 0.1) if gamma is None else gamma)
        if not (min(self.margins) >= 0 and 0 < self.beta <= 1 and 0 <= self.gamma < 1):
            raise ValueError("need margin >= 0, 0 < beta <= 1 and 0 <= gamma < 1")
        self.c_r = float(c_r)
        self.c_a = float(c_a)
        self.momenta = [0.0] * n
        self._rng = rng

    @property
    def margin(self) -> float:
        """Profit margin of the current unit."""
        return self.margins[min(self.used, len(self.values) - 1)]

    @property
    def price(self) -> float:
        """Current shout price for the current unit, before clipping to the band."""
        if self.side == BUY:
            return self.value * (1.0 - self.margin)
        return self.value * (1.0 + self.margin)

    def shout(
        self, best_bid: float | None, best_ask: float | None, rng: np.random.Generator
    ) -> float | None:
        """The margin price, clipped to the band; None if the value lies outside the band."""
        if self.side == BUY:
            if self.value < self.floor:
                return None
            return min(max(self.price, self.floor), self.ceiling)
        if self.value > self.ceiling:
            return None
        return max(min(self.price, self.ceiling), self.floor)

    def observe(self, price: float, accepted: bool, side: int) -> None:
        """Cliff's margin update after a shout (see the class docstring)."""
        p = self.price
        raise_margin = lower_margin = False
        if self.side == SELL:
            if accepted:
                raise_margin = p <= price
                lower_margin = not raise_margin and side == BUY and self.active
            else:
                lower_margin = side == SELL and self.active and p >= price
        else:
            if accepted:
                raise_margin = p >= price
                lower_margin = not raise_margin and side == SELL and self.active
            else:
                lower_margin = side == BUY and self.active and p <= price
        if raise_margin or lower_margin:
            # A seller raises its margin by raising its price, a buyer by lowering it.
            self._move_towards(self._target(price, up=raise_margin == (self.side == SELL)))

    def _target(self, q: float, up: bool) -> float:
        """Cliff's perturbed target price: a little above (``up``) or below ``q``."""
        r, a = self._rng.random(), self._rng.random()
        if up:
            return q * (1.0 + self.c_r * r) + self.c_a * a
        return q * (1.0 - self.c_r * r) - self.c_a * a

    def _move_towards(self, target: float) -> None:
        """Widrow-Hoff step with momentum; the margin is clipped so no unit trades at a loss."""
        value = self.value
        if value <= 0:
            return
        k = min(self.used, len(self.values) - 1)
        p = self.price
        step = self.gamma * self.momenta[k] + (1.0 - self.gamma) * self.beta * (target - p)
        self.momenta[k] = step
        new = p + step
        if self.side == BUY:
            self.margins[k] = min(max(1.0 - new / value, 0.0), 1.0)
        else:
            self.margins[k] = max(new / value - 1.0, 0.0)


TRADERS: dict[str, type[UnitTrader]] = {"zic": ZIC, "ziu": ZIU, "zip": ZIP}
"""Unit-trader classes by name."""


def trader_class(name: str) -> type[UnitTrader]:
    """Look up a unit-trader class by name.

    Args:
        name: Key of :data:`TRADERS`, e.g. ``"zic"``.

    Returns:
        The trader class.

    Raises:
        KeyError: If ``name`` is unknown; the message lists the allowed names.
    """
    return lookup(TRADERS, name, "trader")
