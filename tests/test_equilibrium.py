"""The intertemporal equilibrium (banking, no borrowing, discounting) and allocative
efficiency: hand-worked cases, economic direction, and the model's use of them.

The hand cases share one step curve per year: 5 t at 10 CNY/t, 5 t at 50, 5 t at 100.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from etsim import CarbonMarketModel
from etsim.model.equilibrium import (
    allocative_efficiency,
    banking_equilibrium,
    clearing_price,
    horizon_path,
    market_equilibrium,
)
from etsim.model.results import run_record

COSTS = np.array([10.0, 50.0, 100.0])
TONNES = np.array([5.0, 5.0, 5.0])


def _solve(gaps, bank=0.0, rate=0.0, banking=True, costs=COSTS, tonnes=TONNES):
    """The path for yearly gaps (unabated emissions minus quota)."""
    gaps = np.asarray(gaps, dtype=float)
    return banking_equilibrium(gaps, np.zeros(len(gaps)), costs, tonnes, bank=bank, rate=rate,
                               banking=banking)


# --- hand-worked paths ---------------------------------------------------------------------


def test_a_bank_is_built_then_used_up() -> None:
    # gaps 2 and 12, r = 10%. Year 1 alone would need 50; abating more in year 0 is
    # cheaper in present value. In money of year 0 the steps are 10, 50, 100 (year 0) and
    # 9.09, 45.45, 90.91 (year 1); closing 14 t takes 5 + 5 t of the two cheapest and
    # 4 t of the third, year 1's 50 step: p0 = 50 / 1.1, p1 = 50. Year 0 abates its 5 t
    # at 10 (< 45.45), banks 3 t; year 1 abates 5 t at 10 and 4 t at 50 and uses the bank.
    path = _solve([2.0, 12.0], rate=0.1)
    np.testing.assert_allclose(path.price, [50 / 1.1, 50.0])
    np.testing.assert_allclose(path.abatement, [5.0, 9.0])
    np.testing.assert_allclose(path.abatement_cost, [50.0, 50.0 + 200.0])
    np.testing.assert_allclose(path.bank, [3.0, 0.0])
    assert path.price[1] / path.price[0] == pytest.approx(1.1)  # Hotelling


def test_an_initial_bank_is_carried_and_used_up() -> None:
    # bank 4: the gap over both years is 10 t, the two 10 steps close it: p0 = 10, p1 = 11
    path = _solve([2.0, 12.0], bank=4.0, rate=0.1)
    np.testing.assert_allclose(path.price, [10.0, 11.0])
    np.testing.assert_allclose(path.abatement, [5.0, 5.0])
    np.testing.assert_allclose(path.bank, [7.0, 0.0])


def test_no_borrowing_splits_the_path_into_phases() -> None:
    # gaps 12, -10, 14 at r = 10%. Year 0 alone needs 12 t: price 100 (5 + 5 + 2 t). Over
    # years 0-1 or 0-2 the first-year price would be lower (9.09 and 41.32), but year 1's
    # surplus cannot be borrowed: year 0 has the highest first-year price, so the bank is
    # empty at its end. From year 1 (bank 0): the gap of years 1-2 is 4 t, closed by
    # year 2's 10 step, 10 in year 2 = 10 / 1.1 in year 1. Year 1 banks its surplus.
    path = _solve([12.0, -10.0, 14.0], rate=0.1)
    np.testing.assert_allclose(path.price, [100.0, 10 / 1.1, 10.0])
    np.testing.assert_allclose(path.abatement, [12.0, 0.0, 4.0])
    np.testing.assert_allclose(path.abatement_cost, [50 + 250 + 200, 0.0, 40.0])
    np.testing.assert_allclose(path.bank, [0.0, 10.0, 0.0])
    assert path.price[1] < path.price[0]  # the price falls where the constraint binds


def test_without_discounting_one_price_rules_the_horizon() -> None:
    # gaps 2, 6, 10 at r = 0: 18 t over three years; the three 10 steps give 15 t, the
    # rest comes from a 50 step (year 0's first, ties go to the earlier year): 50 throughout
    path = _solve([2.0, 6.0, 10.0], rate=0.0)
    np.testing.assert_allclose(path.price, [50.0, 50.0, 50.0])
    np.testing.assert_allclose(path.abatement, [8.0, 5.0, 5.0])
    np.testing.assert_allclose(path.bank, [6.0, 5.0, 0.0])
    # the price of the pooled curve of the three years for the whole gap
    pooled = clearing_price(np.repeat(COSTS, 3), np.repeat(TONNES, 3), 18.0)
    assert path.price[0] == pooled[0]
    assert path.abatement_cost.sum() == pytest.approx(pooled[1])


def test_years_without_a_shortage_have_price_zero_and_keep_the_bank() -> None:
    path = _solve([-3.0, -2.0], bank=1.0, rate=0.1)
    np.testing.assert_allclose(path.price, [0.0, 0.0])
    np.testing.assert_allclose(path.abatement, [0.0, 0.0])
    np.testing.assert_allclose(path.bank, [4.0, 6.0])


def test_abatement_is_done_where_it_is_cheapest_and_banked() -> None:
    # per-year curves: 10 t at 10 in year 0, 10 t at 100 in year 1; the whole gap is in
    # year 1, and abating in year 0 and banking is cheaper: p0 = 10, p1 = 11
    path = _solve([0.0, 10.0], rate=0.1, costs=np.array([[10.0], [100.0]]),
                  tonnes=np.array([[10.0], [10.0]]))
    np.testing.assert_allclose(path.price, [10.0, 11.0])
    np.testing.assert_allclose(path.abatement, [10.0, 0.0])
    np.testing.assert_allclose(path.abatement_cost, [100.0, 0.0])
    np.testing.assert_allclose(path.bank, [10.0, 0.0])


def test_a_gap_no_option_closes_costs_the_dearest_option() -> None:
    # year 0 needs 30 t, its options give 15: the dearest option's cost, every option
    # used, the 15 t left unmet (the bank is not negative); year 1 has no gap
    path = _solve([30.0, 0.0], rate=0.1)
    np.testing.assert_allclose(path.price, [100.0, 0.0])
    np.testing.assert_allclose(path.abatement, [15.0, 0.0])
    np.testing.assert_allclose(path.abatement_cost, [800.0, 0.0])
    np.testing.assert_allclose(path.bank, [0.0, 0.0])
    # no option at all: no price
    empty = _solve([3.0, 7.0], rate=0.1, costs=np.array([]), tonnes=np.array([]))
    assert np.isnan(empty.price).all()


def test_without_banking_each_year_is_the_static_problem() -> None:
    gaps = [7.0, -4.0, 12.0, 3.0]
    path = _solve(gaps, rate=0.1, banking=False)
    for year, gap in enumerate(gaps):
        price, cost = clearing_price(COSTS, TONNES, gap)
        assert path.price[year] == price
        assert path.abatement_cost[year] == pytest.approx(cost)
    assert (path.bank == 0).all()  # what is left is cancelled
    # a bank held at the start counts towards the first year only
    with_bank = _solve(gaps, bank=2.0, rate=0.1, banking=False)
    assert with_bank.price[0] == clearing_price(COSTS, TONNES, 5.0)[0]
    np.testing.assert_array_equal(with_bank.price[1:], path.price[1:])


# --- economic direction ---------------------------------------------------------------------

FINE_COSTS = np.linspace(1.0, 200.0, 200)  # an almost smooth curve: 100 t a year
FINE_TONNES = np.full(200, 0.5)
GROWING_GAPS = np.array([10.0, 30.0, 60.0])


def _fine(rate: float, quota: float = 0.0):
    return banking_equilibrium(GROWING_GAPS, np.full(3, quota), FINE_COSTS, FINE_TONNES,
                               rate=rate)


def test_a_higher_discount_rate_lowers_the_first_price_and_raises_the_last() -> None:
    patient, impatient = _fine(0.0), _fine(0.15)
    assert (patient.bank[:-1] > 0).all() and (impatient.bank[:-1] > 0).all()  # banking
    assert impatient.price[0] < patient.price[0]
    assert impatient.price[-1] > patient.price[-1]
    np.testing.assert_allclose(impatient.price[1:] / impatient.price[:-1], 1.15)
    # waiting costs more: less abatement early, more late
    assert impatient.abatement[0] < patient.abatement[0]
    assert impatient.abatement[-1] > patient.abatement[-1]


def test_more_quota_lowers_the_price() -> None:
    scarce, ample = _fine(0.08), _fine(0.08, quota=10.0)
    assert (ample.price < scarce.price).all()
    assert ample.abatement.sum() < scarce.abatement.sum()


# --- allocative efficiency --------------------------------------------------------------------

# firm A: 10 t at 10, 10 t at 30; firm B: 10 t at 20, 10 t at 40
FIRM_COSTS = np.array([[10.0, 30.0], [20.0, 40.0]])
FIRM_TONNES = np.array([[10.0, 10.0], [10.0, 10.0]])


def _efficiency(shortage, abatement, cost, backstop=40.0):
    return allocative_efficiency(np.array(shortage, dtype=float), FIRM_COSTS, FIRM_TONNES,
                                 abatement, cost, backstop)


def test_efficiency_is_one_at_least_cost_and_zero_in_autarky() -> None:
    # A is 20 t short, B has a surplus and 20 t are abated. Alone, A abates 10 t at 10
    # and 10 t at 30: 400. At least cost 10 t at 10 (A) and 10 t at 20 (B): 300.
    perfect = _efficiency([20.0, -10.0], 20.0, 300.0)
    assert (perfect.autarky_cost, perfect.least_cost) == (400.0, 300.0)
    assert perfect.efficiency == 1.0
    assert _efficiency([20.0, -10.0], 20.0, 400.0).efficiency == 0.0
    assert _efficiency([20.0, -10.0], 20.0, 350.0).efficiency == 0.5
    assert _efficiency([20.0, -10.0], 20.0, 450.0).efficiency == -0.5  # worse than autarky


def test_efficiency_compares_the_abatement_actually_done() -> None:
    # A 30 t and B 10 t short, 20 t abated: autarky shares them 3:1, A 15 t (10 at 10,
    # 5 at 30: 250) and B 5 t (at 20: 100), 350; least cost 10 at 10 + 10 at 20 = 300
    result = _efficiency([30.0, 10.0], 20.0, 320.0)
    assert (result.autarky_cost, result.least_cost) == (350.0, 300.0)
    assert result.efficiency == pytest.approx(0.6)
    # beyond a firm's options the backstop: A alone 30 t = 100 + 300 + 10 x 40 = 800;
    # least cost 10 at 10, 10 at 20, 10 at 30 = 600
    result = _efficiency([30.0, -5.0], 30.0, 700.0)
    assert (result.autarky_cost, result.least_cost) == (800.0, 600.0)
    assert result.efficiency == 0.5


def test_efficiency_is_undefined_when_trade_can_save_nothing() -> None:
    # 10 t abated: A's own 10 t at 10 is already the least cost
    assert math.isnan(_efficiency([20.0, -10.0], 10.0, 100.0).efficiency)
    assert math.isnan(_efficiency([20.0, -10.0], 0.0, 0.0).efficiency)  # nothing abated
    assert math.isnan(_efficiency([-20.0, -10.0], 5.0, 50.0).efficiency)  # nobody short


# --- the model's equilibrium ------------------------------------------------------------------


@pytest.fixture(scope="module")
def classroom_four_years() -> CarbonMarketModel:
    model = CarbonMarketModel("classroom", seed=1, end_year=2028)
    model.run()
    return model


def test_market_years_report_the_intertemporal_and_static_prices(classroom_four_years) -> None:
    model = classroom_four_years
    years = model.results()["market_years"].set_index("year")
    compliance = years.loc[2025:2028]
    rate = model.scenario.trading.discount_rate
    path_years, path = market_equilibrium(model)
    assert path_years.tolist() == [2025, 2026, 2027, 2028]
    np.testing.assert_array_equal(compliance["equilibrium_price"], path.price)
    np.testing.assert_array_equal(compliance["least_cost_abatement_cost"], path.abatement_cost)
    assert (compliance["equilibrium_price"] > 0).all()
    # Hotelling while a bank is held
    for j in range(3):
        if path.bank[j] > 0:
            assert path.price[j + 1] / path.price[j] == pytest.approx(1 + rate)
    # the market goes on after end_year: by default a tail of foresight_years - 1
    # projected years (2029-2032 here), so the bank left at end_year is carried, not
    # used up
    assert path.bank[-1] > 0
    # without the tail the bank is used up by end_year, and with less shortage ahead
    # every price is lower
    _, cut = market_equilibrium(model, tail_years=0)
    assert cut.bank[-1] == 0
    assert (cut.price < path.price).all()
    np.testing.assert_array_equal(market_equilibrium(
        model, tail_years=model.scenario.trading.foresight_years - 1)[1].price, path.price)
    # the static one-year price beside it (2025 has no shortage on its own)
    assert compliance.loc[2025, "static_equilibrium_price"] == 0
    assert (compliance.loc[2026:, "static_equilibrium_price"] > 0).all()
    # settlement year: no compliance, nothing to solve
    assert np.isnan(years.loc[2029, ["equilibrium_price", "static_equilibrium_price",
                                     "allocative_efficiency"]].astype(float)).all()


def test_allocative_efficiency_of_a_run(classroom_four_years) -> None:
    model = classroom_four_years
    years = model.results()["market_years"].set_index("year").loc[2025:2028]
    # 2025: nothing abated yet (options take a year to work)
    assert np.isnan(years.loc[2025, "allocative_efficiency"])
    efficiency = years["allocative_efficiency"].dropna()
    assert len(efficiency) == 3
    # one expected price for all firms: each adopts what costs less, close to least cost
    assert ((efficiency > 0.8) & (efficiency < 1 + 1e-9)).all()
    record = run_record(model)
    weights = years.loc[efficiency.index, "abatement"]
    assert record["allocative_efficiency"] == pytest.approx(
        np.average(efficiency, weights=weights), abs=1e-6)


def test_without_banking_the_equilibrium_is_the_static_one() -> None:
    model = CarbonMarketModel("classroom", seed=1, compliance__banking=False)
    model.run()
    years = model.results()["market_years"].set_index("year").loc[2025:2026]
    assert model.registry.flows["issued_free"][0] == 0  # no initial bank to count
    assert years.loc[2026, "static_equilibrium_price"] > 0
    np.testing.assert_array_equal(years["equilibrium_price"], years["static_equilibrium_price"])


def test_the_fundamental_path_rises_at_the_discount_rate() -> None:
    for rate in (0.0, 0.08):
        model = CarbonMarketModel("classroom", seed=1, trading__discount_rate=rate)
        for _ in range(25):  # into February
            model.step()
        bank = float(model.registry.total().sum())
        years, prices = horizon_path(model, 2025, bank)
        assert years[0] == 2025 and len(years) >= model.scenario.trading.foresight_years
        assert model.fundamental_price > 0
        assert model.expectations.fundamental_growth == pytest.approx(rate)  # banked: Hotelling
        np.testing.assert_allclose(prices[1:] / prices[:-1], 1 + rate)


def test_long_lead_options_anchor_the_fundamental_price_not_the_backstop() -> None:
    # Every option takes 15 years to work: none can close the gap within the foresight
    # horizon, so firms anchor on the long-run price that counts them all from now
    # (the shortfall is carried meanwhile), not on the dearest option's cost.
    model = CarbonMarketModel("classroom", seed=1, overrides={
        "sectors.*.abatement.*.lead_time_years": 15,
        "sectors.*.allocation.tightening": 0.05,
    })
    for _ in range(25):
        model.step()
    options = model.firms.options
    dearest = float(options.cost[options.valid].max())
    _, prices = horizon_path(model, 2025, float(model.registry.total().sum()))
    assert 0 < prices[0] < 0.5 * dearest


# --- the market price against the equilibrium -------------------------------------------------


FRICTIONLESS = {
    "market.price_limit": 1.0,  # no daily price limits
    "mrv.misreporting_share": 0.0,  # honest reports
    "trading.expectations": "fundamental",  # every firm expects the fundamental price
    # full information: from the first year firms look to 2048, past 2042, where the
    # equilibrium bank runs out (see the test); with 11 years the fundamental price
    # of 2024 was 25% below the equilibrium, with 15 years 18%
    "trading.foresight_years": 25,
    # the trading frictions left, kept small: far from the deadline a buyer values quota
    # 5% above its expected price (the premium doubles with urgency by the deadline), a
    # seller 5% below it (seller_discount), and quotes lie within 2% of these values
    "trading.buyer_premium": 0.05,
    "trading.quote_spread": 0.02,
}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_frictionless_price_lies_near_the_equilibrium(seed: int) -> None:
    """In a full scenario with fundamental traders the annual mean price lies within 15%
    of the solver's equilibrium price when frictions are off.

    Measured (china-2024, scale 0.1, budget_constrained traders): the mean close lies
    -3.4% to +4.7% from the equilibrium price in every compliance year (seeds 1-3). It
    lies 1-3% above the fundamental price (the spread), which lies up to 3% above the
    equilibrium in 2024-2026 (options count from when they can take effect, not at
    once). ``fundamental_compliance`` traders (own marginal abatement cost, rising with
    urgency towards the penalty price) trade 4-58% above it: not a frictionless case.
    """
    model = CarbonMarketModel("china-2024", seed=seed, scale=0.1, overrides=FRICTIONLESS)
    model.run()
    sc = model.scenario
    _, path = market_equilibrium(model)
    # full information: the ex post equilibrium (to end_year + foresight_years - 1) is
    # already the one over the horizon firms saw in the first year, and a longer horizon
    # changes nothing (the bank runs out inside it)
    first_horizon = sc.start_year + sc.trading.foresight_years - 1 - sc.end_year
    for tail_years in (first_horizon, 40):
        np.testing.assert_allclose(market_equilibrium(model, tail_years)[1].price, path.price,
                                   rtol=1e-9)
    years = model.results()["market_years"].set_index("year").loc[sc.start_year:sc.end_year]
    np.testing.assert_array_equal(years["equilibrium_price"], path.price)
    gap = years["mean_price"] / years["equilibrium_price"] - 1
    assert (gap.abs() < 0.15).all(), gap.round(3).tolist()


def test_the_equilibrium_runs_on_one_blas_thread_and_restores_the_count() -> None:
    """The solver's dot products run on one OpenBLAS thread (spinning worker threads took
    the shared cores); the process's count is back afterwards, also after an error."""
    from etsim.model import _blas

    controls = _blas._controls()
    if controls is None:
        pytest.skip("numpy is not linked to OpenBLAS here")
    get, set_ = controls
    before = get()
    set_(2)
    try:
        with _blas.single_threaded():
            assert get() == 1
        assert get() == 2
        with pytest.raises(ValueError), _blas.single_threaded():
            raise ValueError("inside")
        assert get() == 2
        seen = []
        original = _blas.single_threaded

        @original()
        def inside() -> None:
            seen.append(get())

        inside()
        assert seen == [1] and get() == 2
    finally:
        set_(before)


def _compiled_prices(gap, costs, tonnes, bank, rate, banking):
    from etsim.model import _kernels

    growth = (1.0 + rate) ** np.arange(len(gap))
    return _kernels.banking_prices(np.asarray(gap, dtype=float), np.asarray(costs, dtype=float),
                                   np.ascontiguousarray(tonnes, dtype=float), growth,
                                   float(bank), banking)


@pytest.mark.parametrize("banking", [True, False])
def test_the_compiled_price_path_is_the_reference_one_bit_for_bit(banking: bool) -> None:
    """The compiled solver the run uses each month gives exactly the prices of
    ``banking_equilibrium`` (the reference), on random markets: slack and tight years,
    an initial bank or a debt, gaps no option closes, steps in every year or only some."""
    rng = np.random.default_rng(7)
    for case in range(300):
        n_years, n_steps = int(rng.integers(1, 9)), int(rng.integers(0, 40))
        costs = np.sort(rng.choice([5.0, 20.0, 50.0, 80.0], n_steps)
                        if case % 3 == 0 else rng.uniform(1, 200, n_steps))
        tonnes = rng.uniform(0, 10, (n_years, n_steps)) * (rng.random((n_years, n_steps)) < 0.8)
        gap = rng.normal(5 * n_steps / 4, 30, n_years)
        bank = float(rng.choice([0.0, 50.0, -20.0]))
        rate = float(rng.choice([0.0, 0.05, 0.08]))
        expected = banking_equilibrium(gap, np.zeros(n_years), costs, tonnes, bank=bank,
                                       rate=rate, banking=banking).price
        got = _compiled_prices(gap, costs, tonnes, bank, rate, banking)
        np.testing.assert_array_equal(got, expected, err_msg=f"case {case}")


@pytest.mark.parametrize("banking", [True, False])
def test_the_horizon_prices_are_those_of_the_tonnes_built_with_numpy(banking: bool) -> None:
    """The monthly call builds each year's tonnes from the options as it sums them
    (``_kernels.horizon_prices``); its prices are those of the tonnes built with numpy
    as the Python engine does (``horizon_path``) and solved by ``banking_prices``, bit
    for bit: options before and after the offsets' step, effective in time or not, an
    infinite cost among the steps."""
    from etsim.model import _kernels

    rng = np.random.default_rng(11)
    for case in range(200):
        n_years, n_firms = int(rng.integers(1, 12)), int(rng.integers(1, 6))
        n_options = int(rng.integers(0, 30))
        costs = np.sort(rng.uniform(1, 200, n_options))
        firm = rng.integers(0, n_firms, n_options).astype(np.int64)
        per_year = rng.uniform(0, 10, n_options)
        weight = rng.uniform(0.5, 1.5, (n_firms, n_years))
        horizon = np.arange(2025, 2025 + n_years, dtype=np.int64)
        effective = rng.integers(2024, 2025 + n_years + 1, n_options).astype(np.int64)
        offset_price = float(rng.choice([0.5, 90.0, 500.0, np.inf if case % 7 == 0 else 60.0]))
        at = int(np.searchsorted(costs, offset_price, side="right"))
        with_offsets = np.insert(costs, at, offset_price)
        offsets = rng.uniform(0, 20, n_years)
        gap = rng.normal(30, 40, n_years)
        growth = 1.05 ** np.arange(n_years)
        bank = float(rng.choice([0.0, 25.0, -10.0]))
        capacity = per_year * np.ascontiguousarray(weight.T)[:, firm]
        for in_time in (True, False):
            tonnes = capacity * (effective[None, :] <= horizon[:, None]) if in_time \
                else capacity
            tonnes = np.ascontiguousarray(np.insert(tonnes, at, offsets, axis=1))
            expected = _kernels.banking_prices(gap, with_offsets, tonnes, growth, bank, banking)
            got = _kernels.horizon_prices(per_year, firm, weight, effective, horizon, at,
                                          offsets, in_time, gap, with_offsets, growth, bank,
                                          banking)
            np.testing.assert_array_equal(got, expected, err_msg=f"case {case}")


def test_the_compiled_price_path_by_hand() -> None:
    """Two years, one step of 10 t at 100 CNY/t a year, no gap then a gap of 15 t, 10% a
    year: year 2's own step cannot close its gap, so 5 t are abated in year 1 at 100 and
    banked, and the price rises at the rate (100 then 110); with no steps at all the
    price is NaN."""
    prices = _compiled_prices([0.0, 15.0], [100.0], [[10.0], [10.0]], 0.0, 0.1, True)
    np.testing.assert_allclose(prices, [100.0, 110.0])
    assert np.isnan(_compiled_prices([5.0], np.zeros(0), np.zeros((1, 0)), 0.0, 0.0,
                                     True)).all()


def test_a_subset_of_the_results_tables_is_the_same_as_in_all(classroom_four_years) -> None:
    """A sweep builds only the tables its figures need: each is the table of the full set;
    an unknown name is refused with the tables there are."""
    from etsim.model.results import TABLES, build_tables

    everything = classroom_four_years.results()
    assert list(everything) == list(TABLES)
    some = build_tables(classroom_four_years, ["market_years", "market_daily"])
    assert list(some) == ["market_daily", "market_years"]  # in the order of TABLES
    for name, frame in some.items():
        pd.testing.assert_frame_equal(frame, everything[name])
    with pytest.raises(ValueError, match="no results table 'prices'.*market_daily"):
        build_tables(classroom_four_years, ["prices"])


@pytest.mark.parametrize(("scenario", "overrides"), [
    ("absolute-cap-2027", {"scale": 0.05}),  # a cap's basis fixed during the run
    ("china-history", {"scale": 0.05}),  # plans announced during the run
    ("classroom", {"sectors.steel.accounting_change": {"2026": 0.1}}),
])
def test_a_kept_projection_is_the_projection_made_afresh(scenario: str, overrides: dict
                                                         ) -> None:
    """The fundamental price's projection of the years ahead, kept while its inputs stay
    the same, is at every month of a run what a projection made afresh gives: when caps
    are fixed, plans announced, accounting changed and output responses revised too;
    and most months it is kept."""
    from etsim.model import equilibrium

    made = equilibrium._projection
    calls = {"kept": 0, "all": 0}

    def checked(model, horizon, allocation):
        before = model.firms.options.projection
        unabated, weight, quotas = made(model, horizon, allocation)
        calls["all"] += 1
        calls["kept"] += model.firms.options.projection is before
        model.firms.options.projection = None  # afresh
        fresh = made(model, horizon, allocation)
        assert np.array_equal(unabated, fresh[0]) and np.array_equal(weight, fresh[1])
        assert [(j, rows.tolist(), quota) for j, rows, quota in quotas] == [
            (j, rows.tolist(), quota) for j, rows, quota in fresh[2]]
        return unabated, weight, quotas

    equilibrium._projection = checked
    try:
        CarbonMarketModel(scenario, seed=4, overrides=overrides).run()
    finally:
        equilibrium._projection = made
    assert calls["all"] >= 20 and calls["kept"] > calls["all"] / 2
