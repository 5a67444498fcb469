"""The firms of a run: their static attributes and current state, one row per firm.

The hot numeric state lives in these arrays (see the README's performance notes); each
``Firm`` agent reads and writes its own row. ``draw_firms`` draws a scenario's firms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from etsim.agents.abatement import FirmOptions, draw_options
from etsim.agents.networks import PeerNetwork, draw_provinces, peer_network
from etsim.model.scenario import Scenario, SectorConfig


@dataclass
class FirmState:
    """Static attributes and current state of all firms, one entry per firm."""

    firm_id: np.ndarray
    sector: np.ndarray  # sector index
    entry_year: np.ndarray
    base_output: np.ndarray  # expected annual output at the start year (unit/yr)
    baseline_intensity: np.ndarray  # direct tCO2 per unit before abatement
    intensity: np.ndarray  # direct tCO2 per unit this year, after abatement
    abatement_cost_rate: np.ndarray  # CNY per unit of output this year
    indirect_intensity: np.ndarray
    misreports: np.ndarray  # bool: under-reports its emissions this year
    risk_factor: np.ndarray  # weight on the expected fine (misreporting decisions)
    expected_price: np.ndarray  # CNY/t, adaptive towards closes and the fundamental price
    cash: np.ndarray  # CNY, from trades, auctions, penalties, fines, offsets
    annual_emissions: np.ndarray  # t, expected at the start (sizes the carbon budget)
    cash_year_start: np.ndarray  # CNY, cash on 1 January (the year's spending is the change)
    net_sales: np.ndarray  # t sold minus t bought so far (for banking limits)
    pending_deduction: np.ndarray  # t to deduct from the next issuance (penalty rule)
    discount_rate: np.ndarray  # the firm's own yearly discount rate (banking, investment)
    expected_growth: np.ndarray  # expected yearly rate of change of the price
    options: FirmOptions
    margin: np.ndarray | None = None  # operating margin before carbon (CNY/unit)
    output_factor: np.ndarray | None = None  # this year's output as a multiple of plan

    @property
    def n(self) -> int:
        """Number of firms."""
        return len(self.sector)

    def covered(self, year: int) -> np.ndarray:
        """Mask of firms whose sector is covered in compliance ``year``."""
        return self.entry_year <= year

    def sector_rows(self, sector: int, year: int) -> np.ndarray:
        """Rows of a sector's firms covered in ``year``."""
        return np.flatnonzero((self.sector == sector) & self.covered(year))

    def refresh_intensity(self, year: int) -> None:
        """This year's intensity and abatement cost per unit from the options in effect."""
        factor, cost_share = self.options.intensity_factor_and_cost(year)
        self.intensity = self.baseline_intensity * factor
        self.abatement_cost_rate = self.baseline_intensity * cost_share


@dataclass
class Population:
    """A run's firms with their provinces and peer network."""

    firms: FirmState
    province: np.ndarray  # index into province_names, per firm
    province_names: list[str]
    peers: PeerNetwork


def draw_firms(scenario: Scenario, configs: list[SectorConfig],
               rng: np.random.Generator) -> Population:
    """Draw the firms of the scenario's simulated sectors (``Scenario.firm_counts``).

    Output is lognormal around the sector's ``output_per_firm``; the baseline intensity
    is the benchmark times a normal ratio (clipped to 0.5-2); each firm gets its
    abatement options, a province, peers in its sector and province, its own discount
    rate and an operating margin (the sector's margin share of the product price, spread
    lognormally across firms, sigma 0.5, mean kept). Firm ids are filled in by the model
    when it creates the agents.

    Args:
        scenario: The resolved scenario.
        configs: The simulated sectors' configurations, in the model's sector order.
        rng: The model's random generator (the draws' order is part of reproducibility).
    """
    counts = list(scenario.firm_counts().values())
    sector = np.repeat(np.arange(len(counts)), counts)
    n = len(sector)
    base_output = np.empty(n)
    baseline = np.empty(n)
    for index, config in enumerate(configs):
        rows = sector == index
        k = int(rows.sum())
        sigma = config.output_dispersion
        base_output[rows] = config.output_per_firm * np.exp(
            sigma * rng.standard_normal(k) - sigma**2 / 2
        )
        ratio = rng.normal(config.intensity_ratio_mean, config.intensity_ratio_sd, k)
        baseline[rows] = config.benchmark * np.clip(ratio, 0.5, 2.0)
    entry = np.array([configs[s].entry_year for s in sector])
    indirect = np.array([configs[s].indirect_intensity for s in sector])
    mrv = scenario.mrv
    misreports = rng.random(n) < mrv.misreporting_share
    risk_factor = np.ones(n)
    if mrv.misreporting_mode == "decision":
        risk_factor = mrv.risk_aversion * np.exp(0.5 * rng.standard_normal(n) - 0.125)
    options = draw_options(configs, sector, rng, scenario.investment.hurdle_rate)
    # peers: firms of the same sector and province (agents/networks.py)
    province, province_names = draw_provinces([c.provinces for c in configs], sector, rng)
    investment = scenario.investment
    peers = peer_network(sector * len(province_names) + province,
                         investment.peer_degree, investment.peer_rewiring, rng)
    trading = scenario.trading
    discount_rate = np.clip(
        rng.normal(trading.discount_rate, trading.discount_rate_sd, n), 0.0, 0.5)
    firms = FirmState(
        firm_id=np.zeros(n, dtype=np.int64),
        sector=sector,
        entry_year=entry,
        base_output=base_output,
        baseline_intensity=baseline,
        intensity=baseline.copy(),
        abatement_cost_rate=np.zeros(n),
        indirect_intensity=indirect,
        misreports=misreports,
        risk_factor=risk_factor,
        expected_price=np.full(n, scenario.market.initial_price),
        cash=np.zeros(n),
        annual_emissions=base_output * baseline,
        cash_year_start=np.zeros(n),
        net_sales=np.zeros(n, dtype=np.int64),
        pending_deduction=np.zeros(n, dtype=np.int64),
        discount_rate=discount_rate,
        expected_growth=np.zeros(n),
        options=options,
    )
    typical = np.array([c.product_price * c.margin_share for c in configs])[sector]
    firms.margin = typical * np.exp(0.5 * rng.standard_normal(n) - 0.125)
    firms.output_factor = np.ones(n)
    return Population(firms, province, province_names, peers)


def draw_mix(default: str, mix: dict[str, dict[str, float]], sector_names: list[str],
             firm_sector: np.ndarray, rng: np.random.Generator
             ) -> tuple[list[str], np.ndarray]:
    """Behaviours (trading strategies, expectation models) drawn per firm by sector.

    Args:
        default: The behaviour of firms of sectors without a mix.
        mix: Per sector name, behaviour names and their shares (summing to 1).
        sector_names: Sector name per sector index.
        firm_sector: Each firm's sector index.
        rng: The model's random generator.

    Returns:
        The names in use (``default`` first) and, per firm, the index of its own.
    """
    names = [default]
    chosen = np.zeros(len(firm_sector), dtype=np.int64)
    for sector, shares in mix.items():
        if sector not in sector_names:
            continue
        for name in shares:
            if name not in names:
                names.append(name)
        rows = np.flatnonzero(firm_sector == sector_names.index(sector))
        picks = rng.choice(list(shares), size=len(rows), p=list(shares.values()))
        chosen[rows] = [names.index(name) for name in picks]
    return names, chosen
