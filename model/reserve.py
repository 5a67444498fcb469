"""The national quota reserve pool and its pluggable market-stability policies.

The pool holds quota that is not in any firm's account: its initial endowment, the
share of each year's quota set aside, auction volume left unsold, quota withheld by
the bank-based rule and quota bought back from firms. It releases quota by auction.

Policies are a registry keyed by ``reserve_pool.policy``:

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
from typing import TYPE_CHECKING

from etsim.model.plugins import lookup
from etsim.model.scenario import ReservePoolConfig

if TYPE_CHECKING:
    from etsim.model.market import CarbonMarketModel


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
        self.holdings += tonnes
        self.endowed += tonnes

    def add(self, year: int, tonnes: int) -> None:
        """Quota into the pool in ``year`` (set-aside, unsold, withheld)."""
        self.holdings += tonnes
        self.intake[year] += tonnes

    def add_bought_back(self, year: int, tonnes: int) -> None:
        """Quota bought back from firms in ``year``."""
        self.add(year, tonnes)
        self.bought_back[year] += tonnes

    def release(self, year: int, tonnes: int) -> None:
        """Quota sold out of the pool in ``year``."""
        if tonnes > self.holdings:
            raise ValueError("the reserve pool cannot release more than it holds")
        self.holdings -= tonnes
        self.released[year] += tonnes

    def balance(self) -> int:
        """Endowment + intake - releases - holdings: 0 when the pool's books hold."""
        return self.endowed + sum(self.intake.values()) - sum(self.released.values()) - (
            self.holdings
        )


class NoReservePolicy:
    """The pool takes set-aside and unsold quota and never intervenes."""

    name = "none"

    def __init__(self, config: ReservePoolConfig) -> None:
        self.config = config

    def monthly(self, model: CarbonMarketModel, year: int, month: int) -> None:
        """Called at the start of every month."""

    def after_deadline(self, model: CarbonMarketModel, compliance_year: int) -> None:
        """Called after each compliance deadline."""


class PriceTriggerPolicy(NoReservePolicy):
    """Release above a price, buy back below another (checked monthly)."""

    name = "price_trigger"

    def monthly(self, model: CarbonMarketModel, year: int, month: int) -> None:
        """Compare the recent mean close with the triggers and act."""
        config = self.config
        recent = model.recent_mean_close(config.window_days)
        if recent is None:
            return
        pool = model.reserve
        if recent > config.release_price and pool.holdings > 0:
            volume = max(1, int(config.release_share * pool.holdings))
            model.auction_from_reserve(volume, config.absorb_price)
        elif recent < config.absorb_price:
            volume = int(config.absorb_share * model.annual_quota_estimate())
            if volume > 0:
                model.buy_back_into_reserve(volume, config.absorb_price)


class BankBasedPolicy(NoReservePolicy):
    """EU-MSR-like: react to the total quota held by firms after each deadline."""

    name = "bank_based"

    def after_deadline(self, model: CarbonMarketModel, compliance_year: int) -> None:
        """Withhold from the next issuance when the bank is large, release when small."""
        config = self.config
        tnac = model.total_bank()
        emissions = model.verified_total(compliance_year)
        if emissions <= 0:
            return
        ratio = tnac / emissions
        pool = model.reserve
        if ratio > config.tnac_upper:
            pool.withhold_pending += int(config.intake_rate * tnac)
        elif ratio < config.tnac_lower and pool.holdings > 0:
            volume = max(1, int(config.release_share * pool.holdings))
            model.auction_from_reserve(volume, config.absorb_price)


RESERVE_POLICIES: dict[str, type] = {
    policy.name: policy for policy in (NoReservePolicy, PriceTriggerPolicy, BankBasedPolicy)
}


def make_reserve_policy(config: ReservePoolConfig):
    """The policy registered under ``config.policy``."""
    return lookup(RESERVE_POLICIES, config.policy, "reserve policy")(config)
