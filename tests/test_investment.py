"""Abatement investment: the net present value of an option, the hurdle rate, the
capital budget and lead times (``Firm.review_abatement``, ``agents/abatement.py``).

The hand-computed case (on paper): capital 1,000 CNY per t/yr, operating cost 50 CNY/t,
lifetime 10 years, lead time 2 years, hurdle rate 10%, a steady expected price P. The
option abates in years 2..11 after the decision, each counted at the year's end:

    sum_{s=2}^{11} 1.1^-(s+1) = 1.1^-2 x (1 - 1.1^-10) / 0.1 = 0.826446 x 6.144567 = 5.078155
    NPV(P) = -1,000 + (P - 50) x 5.078155
    NPV(300) = 269.54;   break-even P* = 50 + 1,000 / 5.078155 = 246.92 CNY/t
"""

from __future__ import annotations

import numpy as np
import pytest

from etsim import CarbonMarketModel
from etsim.agents.abatement import capital_recovery_factor, levelised_cost, npv_per_tonne

WINDOW = 5.078155  # discounted years 2..11 at 10%, from the paper computation above
BREAK_EVEN = 246.92  # CNY/t
NPV_AT_300 = 269.54  # CNY per t/yr

ONE_OPTION = {  # the hand-computed option, without spread
    "name": "retrofit", "intensity_reduction": 0.2, "capital_cost": 1000.0,
    "operating_cost": 50.0, "lifetime_years": 10, "lead_time_years": 2,
}

STEEL_ONLY = {  # classroom's market, steel alone: 2025-2026, intensity rule
    "sectors.cement.enabled": False,
    "sectors.aluminium.enabled": False,
    "trading.discount_rate_sd": 0.0,  # every firm's hurdle rate is hurdle_rate itself
    "investment.hurdle_rate": 0.10,
    "investment.peer_discount": 0.0,
}


def _one(values: dict[str, float]) -> dict[str, np.ndarray]:
    """A single firm with a single option, as (1, 1) arrays."""
    return {key: np.array([[value]]) for key, value in values.items()}


def _npv(price: float, growth: float = 0.0, hurdle: float = 0.10, foresight: int = 5,
         earns: np.ndarray | None = None, **option: float) -> float:
    values = {"capital_cost": 1000.0, "operating_cost": 50.0, "lead_time": 2, "lifetime": 10}
    values.update(option)
    arrays = _one(values)
    return float(npv_per_tonne(np.array([price]), np.array([growth]), np.array([hurdle]),
                               foresight, arrays["capital_cost"], arrays["operating_cost"],
                               arrays["lead_time"].astype(int), arrays["lifetime"].astype(int),
                               earns)[0, 0])


def _review(price: float, overrides: dict, seed: int = 1) -> CarbonMarketModel:
    """A fresh model whose firms, all expecting ``price`` with no growth, review their
    options in January of the first year."""
    model = CarbonMarketModel("classroom", seed=seed, overrides=overrides)
    model.firms.expected_price[:] = price
    model.firms.expected_growth[:] = 0.0
    year = model.scenario.start_year
    model.agents.shuffle_do("review_abatement", year)
    return model


# --- the finance, on paper -------------------------------------------------------------


def test_npv_matches_the_hand_computation() -> None:
    assert _npv(300.0) == pytest.approx(NPV_AT_300, abs=0.01)
    assert _npv(BREAK_EVEN) == pytest.approx(0.0, abs=0.01)
    # the paper's break-even is the levelised cost at the hurdle rate (lead time counted)
    assert float(levelised_cost(1000.0, 50.0, 10, 2, 0.10)) == pytest.approx(BREAK_EVEN, abs=0.01)
    assert float(capital_recovery_factor(0.10, 10)) == pytest.approx(1 / 6.144567, rel=1e-6)
    assert 1.1**-2 / float(capital_recovery_factor(0.10, 10)) == pytest.approx(WINDOW, rel=1e-6)


def test_the_price_path_grows_over_the_foresight_years_then_stays_level() -> None:
    # no capital, no costs, no discounting, three years from now: P + 1.1 P + 1.1 P
    npv = _npv(100.0, growth=0.1, hurdle=0.0, foresight=2, capital_cost=0.0,
               operating_cost=0.0, lead_time=0, lifetime=3)
    assert npv == pytest.approx(100 + 110 + 110)


def test_years_under_verified_emissions_earn_nothing() -> None:
    # a tonne abated in years 0 and 1 earns nothing (quota follows emissions then)
    earns = np.array([[False, False, True, True]])
    npv = _npv(100.0, hurdle=0.0, capital_cost=0.0, operating_cost=10.0, lead_time=0,
               lifetime=4, earns=earns)
    assert npv == pytest.approx(-10 - 10 + 90 + 90)


def test_the_levelised_cost_is_the_break_even_of_every_library_option() -> None:
    model = CarbonMarketModel("china-2024", seed=3, overrides={"scale": 0.02})
    options = model.firms.options
    rate = model.scenario.investment.hurdle_rate
    n = len(options.cost)
    values = npv_per_tonne(options.cost[:, 0], np.zeros(n), np.full(n, rate), 5,
                           options.capital_cost[:, :1], options.operating_cost[:, :1],
                           options.lead_time[:, :1], options.lifetime[:, :1])
    assert np.allclose(values, 0.0, atol=1e-6)
    # stored cheapest first: the firm's marginal abatement cost curve
    assert (options.cost[:, 1:] >= options.cost[:, :-1])[options.valid[:, 1:]].all()


# --- the decision in the model ---------------------------------------------------------


@pytest.mark.parametrize(("price", "adopts"), [(BREAK_EVEN - 1.0, False),
                                              (BREAK_EVEN + 1.0, True)])
def test_a_firm_adopts_just_above_the_break_even_price(price: float, adopts: bool) -> None:
    overrides = {**STEEL_ONLY, "sectors.steel.abatement": [ONE_OPTION],
                 "investment.capital_budget_share": 5.0}
    model = _review(price, overrides)
    adopted = model.firms.options.adopted_year[:, 0] == model.scenario.start_year
    assert adopted.all() if adopts else not adopted.any()


def test_a_higher_hurdle_rate_means_fewer_adoptions() -> None:
    counts = []
    for hurdle in (0.04, 0.10, 0.20, 0.35):
        overrides = {"trading.discount_rate_sd": 0.0, "investment.hurdle_rate": hurdle,
                     "investment.capital_budget_share": 5.0, "investment.peer_discount": 0.0}
        model = _review(200.0, overrides)
        counts.append(int((model.firms.options.adopted_year >= 0).sum()))
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1], counts


def test_a_higher_hurdle_rate_means_fewer_adoptions_in_a_run() -> None:
    adopted = []
    for hurdle in (0.05, 0.30):
        model = CarbonMarketModel("classroom", seed=2,
                                  overrides={"investment.hurdle_rate": hurdle}).run()
        adopted.append(int((model.firms.options.adopted_year >= 0).sum()))
    assert adopted[0] > adopted[1], adopted


def test_the_capital_budget_binds() -> None:
    def run(share: float) -> CarbonMarketModel:
        return CarbonMarketModel("classroom", seed=1, overrides={
            "investment.capital_budget_share": share, "end_year": 2027}).run()

    tight, loose = run(0.01), run(5.0)
    for model in (tight, loose):
        revenue = np.array([c.product_price for c in model.sector_configs])[
            model.firms.sector] * model.firms.base_output
        budget = model.scenario.investment.capital_budget_share * revenue
        assert (model.fy["investment"] <= budget[:, None] * (1 + 1e-9)).all()
    # the tight budget held firms back: fewer options, less capital
    assert (tight.firms.options.adopted_year >= 0).sum() < (
        loose.firms.options.adopted_year >= 0).sum()
    assert tight.fy["investment"].sum() < loose.fy["investment"].sum()


def test_capital_is_paid_over_the_build_years() -> None:
    # Capital = 1,000 x base output x intensity (about 2 t/t) x 0.2, about 1.75 times a
    # steel firm's yearly budget (0.07 x 3,800 CNY/t x base output). Built over two
    # years (lead time 2), each year's half fits; built in one year, it does not.
    adopted = {}
    for lead in (1, 2):
        option = {**ONE_OPTION, "lead_time_years": lead}
        model = _review(1000.0, {**STEEL_ONLY, "investment.capital_budget_share": 0.07,
                                 "sectors.steel.abatement": [option]})
        options = model.firms.options
        adopted[lead] = options.adopted_year[:, 0] == 2025
        budget = 0.07 * 3800.0 * model.firms.base_output
        assert (model.fy["investment"] <= budget[:, None] * (1 + 1e-9)).all()
        if lead == 2:
            capital = 1000.0 * model.firms.base_output * model.firms.baseline_intensity * 0.2
            paid = model.fy["investment"][adopted[lead]]
            np.testing.assert_allclose(paid[:, 0], capital[adopted[lead]] / 2)
            np.testing.assert_allclose(paid[:, 1], capital[adopted[lead]] / 2)
    assert adopted[2].all() and not adopted[1].any()


def test_zero_budget_adopts_only_options_without_capital() -> None:
    free = {**ONE_OPTION, "name": "free", "capital_cost": 0.0, "lead_time_years": 0}
    overrides = {**STEEL_ONLY, "investment.capital_budget_share": 0.0,
                 "sectors.steel.abatement": [ONE_OPTION, free]}
    model = _review(400.0, overrides)
    options = model.firms.options
    free_first = np.array([names.index("free") for names in options.names])
    rows = np.arange(len(free_first))
    assert (options.adopted_year[rows, free_first] == 2025).all()
    assert (options.adopted_year[rows, 1 - free_first] < 0).all()
    assert model.fy["investment"].sum() == 0


@pytest.mark.parametrize("lead", [0, 2])
def test_lead_time_delays_the_cut_by_exactly_the_lead_time(lead: int) -> None:
    # free and worth adopting at any positive price: every firm adopts in January 2025
    option = {**ONE_OPTION, "capital_cost": 0.0, "operating_cost": 0.0,
              "lead_time_years": lead}
    model = CarbonMarketModel("classroom", seed=1, overrides={
        **STEEL_ONLY, "end_year": 2028, "sectors.steel.abatement": [option]}).run()
    assert (model.firms.options.adopted_year[:, 0] == 2025).all()
    years = model.results()["firm_years"]
    baseline = dict(zip(model.firms.firm_id.tolist(), model.firms.baseline_intensity.tolist(),
                        strict=True))
    ratio = years["intensity"] / years["firm_id"].map(baseline)
    for year, group in ratio.groupby(years["year"]):
        expected = 0.8 if year >= 2025 + lead else 1.0
        assert np.allclose(group, expected), (year, lead)


def test_investment_and_option_costs_are_in_the_results() -> None:
    model = CarbonMarketModel("classroom", seed=1).run()
    tables = model.results()
    options = tables["abatement_options"]
    for column in ("capital_cost", "operating_cost", "lifetime_years", "cost_per_t"):
        assert column in options
    rate = model.scenario.investment.hurdle_rate
    derived = levelised_cost(options["capital_cost"].to_numpy(),
                             options["operating_cost"].to_numpy(),
                             options["lifetime_years"].to_numpy(),
                             options["lead_time_years"].to_numpy(), rate)
    assert np.allclose(options["cost_per_t"], derived)
    years = tables["firm_years"]
    assert {"investment", "province"} <= set(years.columns)
    assert years["investment"].sum() > 0
    # capital spent = capital cost x tonnes of every option adopted that year
    assert years["investment"].sum() == pytest.approx(model.fy["investment"].sum())


def test_reviewing_all_firms_at_once_decides_what_each_firm_decides_alone() -> None:
    # The schedule reviews every firm in one array computation; each firm reviewing on
    # its own, in any order, must adopt the same options and pay the same capital. A
    # middling budget binds for some firms, and the second January starts from what the
    # first adopted and still pays.
    from etsim.agents.firm import review_firms

    overrides = {"investment.capital_budget_share": 0.05, "investment.peer_discount": 0.0}
    together = CarbonMarketModel("classroom", seed=3, overrides=overrides)
    alone = CarbonMarketModel("classroom", seed=3, overrides=overrides)
    for model in (together, alone):
        model.firms.expected_price[:] = 400.0
        model.firms.expected_growth[:] = 0.0
    for year in (2025, 2026):
        review_firms(together.agents, year)
        for agent in reversed(list(alone.agents)):
            agent.review_abatement(year)
    adopted = together.firms.options.adopted_year
    assert (adopted == 2025).any() and (adopted == 2026).any()
    assert ((adopted < 0) & together.firms.options.valid).any()  # the budget held some back
    np.testing.assert_array_equal(adopted, alone.firms.options.adopted_year)
    np.testing.assert_array_equal(together.capital_due, alone.capital_due)
    np.testing.assert_array_equal(together.fy["investment"], alone.fy["investment"])
