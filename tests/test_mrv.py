"""MRV behaviour: misreporting as a decision, inspections at random or by risk."""

from __future__ import annotations

import numpy as np

from etsim import CarbonMarketModel


def _misreporting_share(inspection: float) -> float:
    shares = []
    for seed in (1, 2, 3):
        model = CarbonMarketModel("classroom", seed=seed, mrv__misreporting_mode="decision",
                                  mrv__inspection_probability=inspection)
        model.run()
        shares.append(model.results()["firm_years"]["misreported"].mean())
    return float(np.mean(shares))


def test_more_inspections_lower_misreporting() -> None:
    # a firm misreports when 1 > inspection x 0.8 x (3 + 1) x its risk factor (mean 3)
    shares = [_misreporting_share(p) for p in (0.02, 0.1, 0.3)]
    assert shares[0] > shares[1] > shares[2]
    assert shares[0] > 0.9 and shares[2] < 0.1


def test_decision_rule_by_hand() -> None:
    model = CarbonMarketModel("classroom", seed=4, mrv__misreporting_mode="decision",
                              mrv__inspection_probability=0.1)
    model.step()  # January of the first year: the decision is taken
    factor = model.firms.risk_factor
    expected = 0.1 * 0.8 * (3.0 + 1.0) * factor < 1.0
    assert (model.firms.misreports == expected).all()
    assert 0 < expected.sum() < len(expected)


def _fines_found(selection: str) -> int:
    found = 0
    for seed in range(4):
        model = CarbonMarketModel("china-2024", seed=seed, scale=0.05,
                                  mrv__misreporting_share=0.3, mrv__inspection_selection=selection,
                                  mrv__inspection_probability=0.2, mrv__detection_probability=1.0)
        model.run()
        found += int((model.results()["firm_years"]["misreporting_fine"] > 0).sum())
    return found


def test_risk_based_inspections_find_more_misreporters_on_the_same_budget() -> None:
    assert _fines_found("risk_based") > 1.3 * _fines_found("random")


def test_risk_based_budget_is_the_inspection_share() -> None:
    model = CarbonMarketModel("classroom", seed=5, mrv__inspection_selection="risk_based",
                              mrv__inspection_probability=0.25)
    covered = model.covered(2025)
    assert model.mrv.inspected(2025, covered).sum() == round(0.25 * covered.sum())
