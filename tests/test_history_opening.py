"""The opening cycle (``compliance.opening_cycle``) and the exchange's opening day
(``market.opening_date``): China's first cycle, 2019-20, due at the end of 2021, and the
market's first trading day, 16 July 2021.

Hand-built state on the classroom scenario (first compliance year 2025, due at the end of
2026; steel benchmark 2.0 t/unit): an opening cycle of two years due at the end of 2025
stands for the cycle before the run. Expected numbers are worked out in the comments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from institutions import hand_built_market, holding, ledger_balances, make_firms

from etsim import CarbonMarketModel
from etsim.agents.strategies import Orders
from etsim.model.scenario import ScenarioError, load_scenario

CYCLE = {"compliance.opening_cycle.years": 2,
         "compliance.opening_cycle.deadline": "2025-12",
         "compliance.opening_cycle.benchmark": {"steel": 2.2},
         "compliance.offset_share": 0.0}


def cycle_market(intensity: list[float], entry_year: list[int] | int = 2024,
                 **overrides):
    firms = make_firms(len(intensity), baseline_intensity=intensity, entry_year=entry_year)
    return hand_built_market(firms, {**CYCLE, **overrides})


def test_opening_cycle_issues_its_quota_and_owes_its_emissions() -> None:
    """Quota = years x output x the cycle's benchmark; owed = the same at the firm's
    relative intensity; firms entering in the first year are not in it."""
    market = cycle_market([1.8, 2.0, 2.2], entry_year=[2024, 2024, 2025])
    compliance = market.compliance()
    compliance.open_cycle()
    # quota 2 x 100 x 2.2 = 440; owed 440 x 1.8 / 2.0 = 396 and 440 x 1.0 = 440
    assert [holding(market.registry, f, 2024) for f in range(3)] == [440, 440, 0]
    assert compliance.opening_owed.tolist() == [396, 440, 0]
    assert ledger_balances(market.registry)


def test_quota_ratio_above_one_makes_the_cycle_long() -> None:
    """A cycle whose benchmark is 10% above the balance value owes 1/1.1 of its quota."""
    market = cycle_market([2.0], **{"compliance.opening_cycle.quota_ratio": 1.1})
    compliance = market.compliance()
    compliance.open_cycle()
    assert compliance.opening_owed.tolist() == [round(440 / 1.1)]  # 400


def test_settling_the_opening_cycle_surrenders_and_fines_a_shortfall() -> None:
    """At the deadline the owed quota is surrendered; a firm short pays multiple x price x
    short and has the shortfall deducted from its next quota; no quota is created or lost."""
    market = cycle_market([1.8, 2.2])
    compliance = market.compliance()
    compliance.open_cycle()  # owed 396 and 484, both hold 440
    result = compliance.settle_opening(reference_price=50.0)
    assert result == {"owed": 880, "surrendered": 836, "short": 44}
    # firm 0 keeps 440 - 396 = 44 (banking unlimited); firm 1 is 44 short
    assert [holding(market.registry, f, 2024) for f in range(2)] == [44, 0]
    multiple = market.scenario.penalty.multiple
    np.testing.assert_allclose(market.firms.cash, [0.0, -multiple * 50.0 * 44])
    assert market.firms.pending_deduction.tolist() == [0, 44]
    assert compliance.opening_owed.tolist() == [0, 0]
    assert ledger_balances(market.registry)


def test_without_banking_the_cycles_surplus_is_cancelled() -> None:
    """With banking off, quota of the cycle's vintage left after the deadline is cancelled."""
    market = cycle_market([1.8], **{"compliance.banking": False})
    compliance = market.compliance()
    compliance.open_cycle()
    compliance.settle_opening(reference_price=50.0)
    assert holding(market.registry, 0, 2024) == 0
    assert ledger_balances(market.registry)


def test_firms_trade_for_the_opening_deadline_first() -> None:
    """Before its deadline the opening cycle is the nearest: the position is the cycle's
    quota held less what is owed; after it, the first compliance year's deadline."""
    market = cycle_market([1.8, 2.2])
    positions = market.positions()
    compliance = positions.compliance  # the one Compliance the positions read, as in a run
    compliance.open_cycle()
    positions.refresh(2025, day=0, last_close=95.0)
    state = positions.trading_state(0)
    assert positions.next_deadline == market.calendar.last_day(2025, 12)
    np.testing.assert_allclose(state.position, [44.0, -44.0])
    compliance.settle_opening(reference_price=50.0)
    positions.refresh(2025, day=market.calendar.first_day(2026, 1), last_close=95.0)
    assert positions.next_deadline == market.calendar.last_day(2026, 12)


def test_no_order_is_taken_before_the_opening_date() -> None:
    """Before market.opening_date the session takes no order and firms may not trade."""
    firms = make_firms(2)
    market = hand_built_market(firms, {"market.opening_date": "2025-03-03"})
    market.registry.issue(np.arange(2), np.array([100, 0]), 2025, "issued_free")
    session = market.session()
    opening = market.calendar.day_of("2025-03-03")
    assert opening == market.calendar.first_day(2025, 3)
    orders = Orders(np.array([0, 1]), np.array([-1, 1]), np.array([50, 50]),
                    np.array([95.0, 95.0]))
    session.trade(opening - 1, 2025, orders, None)
    assert market.daily["volume"][opening - 1] == 0
    assert not market.positions().trading_state(opening - 1).can_trade.any()
    session.trade(opening, 2025, orders, None)
    assert market.daily["volume"][opening] == 50
    assert market.positions().trading_state(opening).can_trade.all()


@pytest.mark.parametrize(("overrides", "words"), [
    ({"compliance.opening_cycle.years": 2, "compliance.opening_cycle.deadline": "2026-12",
      "compliance.opening_cycle.benchmark": {"steel": 2.2}}, "before the first compliance"),
    ({"compliance.opening_cycle.years": 2, "compliance.opening_cycle.deadline": "2025-12",
      "compliance.opening_cycle.benchmark": {"glass": 2.2}}, "unknown sector 'glass'"),
    ({"compliance.opening_cycle.years": 2, "compliance.opening_cycle.deadline": "2025-13",
      "compliance.opening_cycle.benchmark": {"steel": 2.2}}, "deadline"),
    ({"compliance.opening_cycle.years": 2}, "deadline"),
    ({"market.opening_date": "16 July 2021"}, "YYYY-MM-DD"),
])
def test_bad_opening_keys_are_refused_with_the_key_named(overrides, words) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario("classroom", overrides)
    assert words in str(error.value)


def test_china_history_opens_on_16_july_2021_and_trades_the_first_cycle() -> None:
    """No trade before 16 July 2021; trading before the end-2021 deadline; what power owed
    for 2019-20 is surrendered (or short) at it, with no quota created or lost."""
    model = CarbonMarketModel("china-history", seed=3, overrides={"scale": 0.03})
    owed = int(model.compliance.opening_owed.sum())
    assert owed > 0
    model.run()
    daily = model.results()["market_daily"]
    dates = pd.to_datetime(daily["date"])
    assert daily.loc[dates < "2021-07-16", "volume"].sum() == 0
    assert daily.loc[(dates >= "2021-07-16") & (dates <= "2021-12-31"), "volume"].sum() > 0
    result = model.compliance.opening_result
    assert result["owed"] == owed and result["surrendered"] + result["short"] == owed
    assert result["short"] <= 0.01 * owed  # firms bought what they lacked
    assert model.invariants["ok"]
