"""MRV rules on hand-built state: the misreporting decision, biased monthly reports,
random and risk-based inspections, and verification with fines (model/mrv.py).

Steel firms of the classroom scenario; the ``[mrv]`` section comes from overrides. Every
expected number is worked out in the comments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from institutions import STEEL_BENCHMARK_2025, HandBuiltMarket, hand_built_market, make_firms


def mrv_market(n: int, overrides: dict[str, Any] | None = None, seed: int = 0,
               **firm_attributes: Any) -> HandBuiltMarket:
    """``n`` steel firms with the given ``[mrv]`` overrides."""
    return hand_built_market(make_firms(n, **firm_attributes), overrides, seed=seed)


def test_becker_rule_misreports_when_the_expected_cost_is_below_the_gain() -> None:
    """A firm misreports when inspection x detection x (fine + 1) x its risk factor is below 1."""
    market = mrv_market(4, {"mrv.misreporting_mode": "decision",
                            "mrv.inspection_probability": 0.1,
                            "mrv.detection_probability": 0.8, "mrv.fine_multiple": 3.0},
                        risk_factor=[1.0, 3.0, 3.2, 4.0])
    market.mrv().decide_misreporting(2025)
    # 0.1 x 0.8 x 4 = 0.32 per unit of risk: 0.32, 0.96, 1.024, 1.28
    np.testing.assert_array_equal(market.firms.misreports, [True, True, False, False])
    np.testing.assert_array_equal(market.records["misreported"][:, 0], [1, 1, 0, 0])


def test_share_mode_keeps_the_drawn_misreporters() -> None:
    """In share mode the misreporters drawn with the firms are recorded unchanged."""
    market = mrv_market(3, {"mrv.misreporting_mode": "share"},
                        misreports=[False, True, False])
    market.mrv().decide_misreporting(2026)
    np.testing.assert_array_equal(market.records["misreported"][:, 1], [0, 1, 0])


def test_monthly_reports_hide_the_bias_share_of_a_misreporters_emissions() -> None:
    """A misreporter reports its emissions less the bias; the others report them in full."""
    market = mrv_market(2, {"mrv.misreporting_bias": 0.05}, misreports=[True, False])
    mrv = market.mrv()
    mrv.report_month(2025, np.array([100.0, 100.0]))
    mrv.report_month(2025, np.array([120.0, 80.0]))
    # firm 0: 0.95 x (100 + 120) = 209; firm 1: 100 + 80 = 180
    np.testing.assert_allclose(market.records["reported_emissions"][:, 0], [209.0, 180.0])


def test_random_inspections_follow_the_inspection_probability() -> None:
    """Random inspections hit none at probability 0, all at 1, about the share in between."""
    covered = np.ones(4000, dtype=bool)
    for probability, low, high in ((0.0, 0, 0), (1.0, 4000, 4000), (0.25, 900, 1100)):
        market = mrv_market(4000, {"mrv.inspection_probability": probability})
        inspected = market.mrv().inspected(2025, covered)
        # 0.25 x 4000 = 1000 expected, sd sqrt(4000 x 0.25 x 0.75) = 27: +/-100 is 3.6 sd
        assert low <= inspected.sum() <= high


def test_risk_based_inspections_pick_the_steepest_fall_in_reported_intensity() -> None:
    """Risk-based inspections pick the covered firms whose reported intensity fell most."""
    market = mrv_market(6, {"mrv.inspection_selection": "risk_based",
                            "mrv.inspection_probability": 0.4},
                        entry_year=[2024, 2024, 2024, 2024, 2024, 2027])
    records = market.records
    records["output"][:, 0] = 100.0
    records["verified_emissions"][:, 0] = 200.0  # 2.0 t/unit verified for 2025
    records["output"][:, 1] = 100.0
    records["reported_emissions"][:, 1] = [200.0, 150.0, 190.0, 100.0, 210.0, 10.0]
    covered = market.firms.covered(2026)  # firm 5 enters in 2027
    inspected = market.mrv().inspected(2026, covered)
    # reported / verified intensity: 1.0, 0.75, 0.95, 0.5, 1.05 (firm 5 not covered);
    # budget round(0.4 x 5) = 2: firms 3 and 1
    assert np.flatnonzero(inspected).tolist() == [1, 3]


def test_risk_based_budget_without_history_is_random_among_covered_firms() -> None:
    """Without a verified year before, risk-based inspections spend the budget on covered firms."""
    market = mrv_market(10, {"mrv.inspection_selection": "risk_based",
                             "mrv.inspection_probability": 0.25},
                        entry_year=[2024] * 8 + [2026] * 2)
    market.records["output"][:, 0] = 100.0
    market.records["reported_emissions"][:, 0] = 200.0
    covered = market.firms.covered(2025)
    inspected = market.mrv().inspected(2025, covered)
    assert inspected.sum() == 2  # round(0.25 x 8)
    assert not inspected[~covered].any()


def test_detected_misreporters_owe_true_emissions_and_a_fine() -> None:
    """A detected misreporter owes its true emissions and a fine on the hidden tonnes."""
    market = mrv_market(4, {"mrv.inspection_probability": 1.0,
                            "mrv.detection_probability": 1.0, "mrv.fine_multiple": 3.0},
                        entry_year=[2024, 2024, 2024, 2026])
    records = market.records
    records["emissions"][:, 0] = [1000.0, 1000.0, 1000.0, 0.0]
    records["reported_emissions"][:, 0] = [950.0, 1000.0, 950.4, 0.0]
    records["misreported"][:, 0] = [1, 0, 1, 0]
    market.mrv().verify(2025, mean_price=80.0)
    # firms 0 and 2 hid 50 and 49.6 t: fines 3 x 80 x 50 = 12,000 and 3 x 80 x 49.6
    # = 11,904; firm 3 is not covered in 2025
    np.testing.assert_array_equal(records["verified_emissions"][:3, 0], [1000, 1000, 1000])
    assert np.isnan(records["verified_emissions"][3, 0])
    np.testing.assert_allclose(records["misreporting_fine"][:, 0],
                               [12000.0, 0.0, 11904.0, 0.0])
    np.testing.assert_allclose(market.firms.cash, [-12000.0, 0.0, -11904.0, 0.0])
    assert market.payments["fines"] == pytest.approx(23904.0)
    assert records.verified_known[0]
    np.testing.assert_allclose(records["benchmark"][:, 0], STEEL_BENCHMARK_2025)


def test_uninspected_reports_are_verified_as_reported() -> None:
    """Without inspections a misreporter's report stands and no fine is paid."""
    market = mrv_market(2, {"mrv.inspection_probability": 0.0})
    records = market.records
    records["emissions"][:, 0] = [1000.0, 1000.0]
    records["reported_emissions"][:, 0] = [950.4, 1000.0]
    records["misreported"][:, 0] = [1, 0]
    market.mrv().verify(2025, mean_price=80.0)
    np.testing.assert_array_equal(records["verified_emissions"][:, 0], [950, 1000])
    assert market.payments["fines"] == 0.0
    assert records.verified_total(2025) == 1950.0
