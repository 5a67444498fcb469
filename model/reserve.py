"""The national quota reserve pool and its pluggable market-stability policies.

The pool holds quota that is not in any firm's account: its initial endowment, the
share of each year's quota set aside, auction volume left unsold, quota withheld by
the bank-based rule and quota bought back from firms. It releases quota by auction.

Policies are a registry keyed by ``reserve_pool.policy``. A policy reads a small
``ReserveSignals`` value (the recent price, the pool's holdings, the firms' bank, ...)
and returns an ``Intervention`` (release, buy back, withhold); the primary market
carries it out (``model.primary``). Policies never touch the model:

- ``none``: the pool only collects set-aside and unsold quota;
- ``price_trigger``: each month, the mean close over ``window_days`` is compared with
  ``release_price`` (above: auction ``release_share`` of the pool, reserve price
  ``absorb_price``) and ``absorb_price`` (below: buy back up to ``absorb_share`` of the
  year's quota in a reverse auction with that ceiling);
- ``bank_based``: like the EU Market Stability Reserve, at each compliance deadline
  the quota held by firms (TNAC) over the year's verified emissions is compared with
  ``tnac_upper`` (above: withhold ``intake_rate`` x TNAC from the next issuance) and
  ``tnac_lower`` (below: auction ``release_share`` of the pool).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from etsim.model.plugins import lookup
from etsim.model.scenario import ReservePoolConfig


def _check_tonnes(tonnes: int, flow: str) -> int:
    """``tonnes`` as an int: 0 or more whole tonnes (quota moves in whole tonnes only).

    Raises:
        ValueError: Negative (it would move quota the other way unseen by the pool's
            yearly records) or a fraction of a tonne (lost or made up by rounding later).
    """
    if isinstance(tonnes, bool) or not isinstance(tonnes, (int, float, np.integer,
                                                           np.floating)):
        raise ValueError(f"the reserve pool's {flow} must be 0 or more tonnes, a whole "
                         f"number, not {tonnes!r}")
    if tonnes < 0 or not float(tonnes).is_integer():
        raise ValueError(f"the reserve pool's {flow} must be 0 or more tonnes, a whole "
                         f"number, not {tonnes}")
    return int(tonnes)


class ReservePool:
    """The pool's holdings and its flows by calendar year (whole tonnes)."""

    def __init__(self) -> None:
        self.holdings = 0
        self.intake: dict[int, int] = defaultdict(int)  # all quota into the pool, per year
        self.released: dict[int, int] = defaultdict(int)
        self.bought_back: dict[int, int] = defaultdict(int)
        self.withhold_pending = 0  # bank-based intake still to take from issuance
        self.endowed = 0

    def endow(self, tonnes: int) -> None:
        """The pool's initial holdings (never issued, so outside the firms' ledger)."""
        tonnes = _check_tonnes(tonnes, "endowment")
        self.holdings += tonnes
        self.endowed += tonnes

    def add(self, year: int, tonnes: int) -> None:
        """Quota into the pool in ``year`` (set-aside, unsold, withheld)."""
        tonnes = _check_tonnes(tonnes, "intake")
        self.holdings += tonnes
        self.intake[year] += tonnes

    def add_bought_back(self, year: int, tonnes: int) -> None:
        """Quota bought back from firms in ``year``."""
        tonnes = _check_tonnes(tonnes, "buy-back")
        self.add(year, tonnes)
        self.bought_back[year] += tonnes

    def release(self, year: int, tonnes: int) -> None:
        """Quota sold out of the pool in ``year``."""
        tonnes = _check_tonnes(tonnes, "release")
        if tonnes > self.holdings:
            raise ValueError("the reserve pool cannot release more than it holds")
        self.holdings -= tonnes
        self.released[year] += tonnes

    def balance(self) -> int:
        """Endowment + intake - releases - holdings: 0 when the pool's books hold."""
        return self.endowed + sum(self.intake.values()) - sum(self.released.values()) - (
            self.holdings
        )


@dataclass(frozen=True)
class ReserveSignals:
    """What a reserve policy looks at.

    Attributes:
        recent_price: Mean market price over the policy's ``window_days`` (CNY/t),
            None before the first trading day.
        holdings: Quota in the pool (t).
        annual_quota: Quota needed for a year of covered emissions at current
            intensities (t): the scale of a buy-back.
        bank: Quota held by firms (t), the TNAC of the EU's reserve.
        verified_emissions: Verified emissions of the compliance year just settled (t);
            0 outside a deadline.
    """

    recent_price: float | None
    holdings: int
    annual_quota: float
    bank: int
    verified_emissions: float = 0.0


@dataclass(frozen=True)
class Intervention:
    """What a policy decides; the primary market carries it out.

    Attributes:
        release: Tonnes to auction out of the pool.
        release_price: The reserve price of that auction (CNY/t).
        buy_back: Tonnes to buy back from firms in a reverse auction.
        buy_back_ceiling: The highest price paid in the buy-back (CNY/t).
        withhold: Tonnes to withhold from the next issuances into the pool.
    """

    release: int = 0
    release_price: float = 0.0
    buy_back: int = 0
    buy_back_ceiling: float = 0.0
    withhold: int = 0

    def __post_init__(self) -> None:
        # a policy (a plugin too) decides in whole tonnes: a fraction would be lost or
        # made up by the rounding of the registry's whole-tonne accounts
        for flow in ("release", "buy_back", "withhold"):
            object.__setattr__(self, flow, _check_tonnes(getattr(self, flow), flow))


NO_INTERVENTION = Intervention()


class NoReservePolicy:
    """The pool takes set-aside and unsold quota and never intervenes."""

    name = "none"

    def __init__(self, config: ReservePoolConfig) -> None:
        self.config = config

    def monthly(self, signals: ReserveSignals) -> Intervention:
        """Decided at the start of every month."""
        return NO_INTERVENTION

    def after_deadline(self, signals: ReserveSignals) -> Intervention:
        """Decided after each compliance deadline."""
        return NO_INTERVENTION


class PriceTriggerPolicy(NoReservePolicy):
    """Release above a price, buy back below another (checked monthly)."""

    name = "price_trigger"

    def monthly(self, signals: ReserveSignals) -> Intervention:
        """Compare the recent mean price with the triggers."""
        config = self.config
        recent = signals.recent_price
        if recent is None:
            return NO_INTERVENTION
        if recent > config.release_price and signals.holdings > 0:
            volume = max(1, int(config.release_share * signals.holdings))
            return Intervention(release=volume, release_price=config.absorb_price)
        if recent < config.absorb_price:
            volume = int(config.absorb_share * signals.annual_quota)
            if volume > 0:
                return Intervention(buy_back=volume, buy_back_ceiling=config.absorb_price)
        return NO_INTERVENTION


class BankBasedPolicy(NoReservePolicy):
    """EU-MSR-like: react to the total quota held by firms after each deadline."""

    name = "bank_based"

    def after_deadline(self, signals: ReserveSignals) -> Intervention:
        """Withhold from the next issuance when the bank is large, release when small."""
        config = self.config
        if signals.verified_emissions <= 0:
            return NO_INTERVENTION
        ratio = signals.bank / signals.verified_emissions
        if ratio > config.tnac_upper:
            return Intervention(withhold=int(config.intake_rate * signals.bank))
        if ratio < config.tnac_lower and signals.holdings > 0:
            volume = max(1, int(config.release_share * signals.holdings))
            return Intervention(release=volume, release_price=config.absorb_price)
        return NO_INTERVENTION


RESERVE_POLICIES: dict[str, type] = {
    policy.name: policy for policy in (NoReservePolicy, PriceTriggerPolicy, BankBasedPolicy)
}


def make_reserve_policy(config: ReservePoolConfig):
    """The policy registered under ``config.policy``."""
    return lookup(RESERVE_POLICIES, config.policy, "reserve policy")(config)
