"""The reserve pool's books and its policies as pure functions of ``ReserveSignals``
(model/reserve.py): ``none``, ``price_trigger`` and ``bank_based``.

Policy configuration comes from the classroom scenario's ``[reserve_pool]`` with
overrides; the defaults are release_price 120, absorb_price 40, release_share 0.25,
absorb_share 0.01, tnac_upper 0.15, tnac_lower 0.05 and intake_rate 0.24.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest
from institutions import scenario

from etsim.model.reserve import (
    NO_INTERVENTION,
    BankBasedPolicy,
    Intervention,
    NoReservePolicy,
    PriceTriggerPolicy,
    ReservePool,
    ReserveSignals,
    make_reserve_policy,
)


def signals(recent_price: float | None = 95.0, holdings: int = 1000,
            annual_quota: float = 50_000.0, bank: int = 0,
            verified_emissions: float = 0.0) -> ReserveSignals:
    """Signals with a pool of 1,000 t and a year's quota of 50,000 t unless told."""
    return ReserveSignals(recent_price, holdings, annual_quota, bank, verified_emissions)


def policy(name: str):
    """The named policy with the classroom scenario's default thresholds."""
    return make_reserve_policy(scenario({"reserve_pool.policy": name}).reserve_pool)


def test_pool_books_balance_and_refuse_to_release_more_than_held() -> None:
    """The pool's books balance, and releasing more than it holds raises ValueError."""
    pool = ReservePool()
    pool.endow(500)
    pool.add(2025, 120)
    pool.add_bought_back(2025, 30)
    pool.release(2026, 200)
    # 500 + 120 + 30 - 200 = 450
    assert pool.holdings == 450
    assert (pool.intake[2025], pool.bought_back[2025], pool.released[2026]) == (150, 30, 200)
    assert pool.balance() == 0
    with pytest.raises(ValueError, match="more than it holds"):
        pool.release(2026, 451)
    assert pool.holdings == 450 and pool.released[2026] == 200


@pytest.mark.parametrize("flow", ["endow", "add", "add_bought_back", "release"])
def test_pool_refuses_negative_flows_and_keeps_its_books(flow: str) -> None:
    """A negative endowment, intake or release is refused and changes nothing."""
    pool = ReservePool()
    pool.endow(100)
    move = getattr(pool, flow)
    with pytest.raises(ValueError, match="0 or more tonnes"):
        move(-5) if flow == "endow" else move(2025, -5)
    assert pool.holdings == 100 and pool.balance() == 0
    assert not pool.intake and not pool.released and not pool.bought_back


def test_make_reserve_policy_picks_the_configured_policy() -> None:
    """reserve_pool.policy names the policy class."""
    assert type(policy("none")) is NoReservePolicy
    assert type(policy("price_trigger")) is PriceTriggerPolicy
    assert type(policy("bank_based")) is BankBasedPolicy


def test_no_policy_never_intervenes() -> None:
    """The ``none`` policy neither releases, buys back nor withholds, whatever it sees."""
    none = policy("none")
    for seen in (signals(500.0), signals(1.0), signals(bank=10**9, verified_emissions=1.0)):
        assert none.monthly(seen) == NO_INTERVENTION
        assert none.after_deadline(seen) == NO_INTERVENTION


def test_price_trigger_releases_a_share_of_the_pool_above_the_release_price() -> None:
    """Above release_price the pool auctions release_share of its holdings, if it has any."""
    trigger = policy("price_trigger")
    # 0.25 x 1,000 = 250 t at reserve price 40
    assert trigger.monthly(signals(130.0)) == Intervention(release=250, release_price=40.0)
    # int(0.25 x 2) = 0, raised to 1 t
    assert trigger.monthly(signals(130.0, holdings=2)).release == 1
    assert trigger.monthly(signals(130.0, holdings=0)) == NO_INTERVENTION
    assert trigger.monthly(signals(120.0)) == NO_INTERVENTION  # not above 120


def test_price_trigger_buys_back_below_the_absorb_price() -> None:
    """Below absorb_price the pool buys back absorb_share of a year's quota, capped at it."""
    trigger = policy("price_trigger")
    # 0.01 x 50,000 = 500 t, ceiling 40
    assert trigger.monthly(signals(30.0)) == Intervention(buy_back=500, buy_back_ceiling=40.0)
    assert trigger.monthly(signals(30.0, annual_quota=50.0)) == NO_INTERVENTION  # int(0.5)
    assert trigger.monthly(signals(40.0)) == NO_INTERVENTION  # not below 40
    assert trigger.monthly(signals(None)) == NO_INTERVENTION
    assert trigger.after_deadline(signals(30.0)) == NO_INTERVENTION  # it acts monthly


def test_price_trigger_thresholds_come_from_the_scenario() -> None:
    """The triggers, shares and prices are the scenario's reserve_pool keys."""
    config = scenario({"reserve_pool.policy": "price_trigger",
                       "reserve_pool.release_price": 100.0, "reserve_pool.absorb_price": 60.0,
                       "reserve_pool.release_share": 0.5}).reserve_pool
    trigger = make_reserve_policy(config)
    assert trigger.monthly(signals(101.0)) == Intervention(release=500, release_price=60.0)
    # 0.01 x 50,000 = 500 t bought back below 60
    assert trigger.monthly(signals(59.0)) == Intervention(buy_back=500, buy_back_ceiling=60.0)


def test_bank_based_withholds_a_share_of_a_large_bank() -> None:
    """A bank above tnac_upper x verified emissions withholds intake_rate x bank."""
    bank_based = policy("bank_based")
    # 2,000 / 10,000 = 0.2 > 0.15: withhold int(0.24 x 2,000) = 480 t
    decided = bank_based.after_deadline(signals(bank=2000, verified_emissions=10_000.0))
    assert decided == Intervention(withhold=480)
    assert bank_based.monthly(signals(500.0, bank=2000)) == NO_INTERVENTION  # deadlines only


def test_bank_based_releases_when_the_bank_is_small() -> None:
    """A bank below tnac_lower x verified emissions releases release_share of the pool."""
    bank_based = policy("bank_based")
    # 300 / 10,000 = 0.03 < 0.05: release 0.25 x 1,000 = 250 t at reserve price 40
    small = signals(bank=300, verified_emissions=10_000.0)
    assert bank_based.after_deadline(small) == Intervention(release=250, release_price=40.0)
    empty_pool = signals(holdings=0, bank=300, verified_emissions=10_000.0)
    assert bank_based.after_deadline(empty_pool) == NO_INTERVENTION
    between = signals(bank=1000, verified_emissions=10_000.0)  # 0.1
    assert bank_based.after_deadline(between) == NO_INTERVENTION
    assert bank_based.after_deadline(signals(bank=10**6)) == NO_INTERVENTION  # no deadline


def test_signals_and_interventions_are_frozen_values() -> None:
    """Policies read values: signals and interventions cannot be changed after the fact."""
    seen = signals()
    with pytest.raises(FrozenInstanceError):
        seen.holdings = 0  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        NO_INTERVENTION.release = 1  # type: ignore[misc]
