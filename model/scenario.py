"""Scenario files: schema, loading, overrides and clear errors.

A scenario is a TOML file. Its ``[sectors.NAME]`` tables are merged over the sector
library (``agents.sectors``), every other section over the defaults of this schema, so
a file states only what it changes. ``docs/scenario-reference.md`` documents each key
with its unit and default.

Year schedules: a key documented as a *schedule* takes either one number (every year)
or a table of years, ``{ 2024 = 0.0, 2027 = 0.1 }``, read as a step function: a year
takes the value of the latest year listed at or before it (years before the first
listed year take the first value). Year keys are plain years, 1990 to 2100, in ASCII
digits without a leading zero (not ``02026`` or ``２０２６``).

Every number is finite (no ``inf`` or ``nan``), integers fit in 64 bits (the TOML
rule) and tables and arrays nest at most MAX_DEPTH deep; a file must be UTF-8.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from etsim.agents.sectors import SECTOR_LIBRARY
from etsim.model.messages import shown, shown_name

ALLOCATION_RULE_NAMES = ("verified_emissions", "intensity", "absolute_cap")
RESERVE_POLICY_NAMES = ("none", "price_trigger", "bank_based")
STRATEGY_NAMES = ("budget_constrained", "zero_intelligence", "zip", "fundamental_compliance")
EXPECTATION_NAMES = ("adaptive", "trend_following", "fundamental")

Schedule = float | dict[str, float]
RuleSchedule = str | dict[str, str]


# TOML integers are 64-bit (the TOML specification; tomllib takes any size)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
INT_RULE = "integers must be from -2^63 to 2^63-1 (64 bits)"
# deepest nesting of tables and arrays in a scenario or experiment file (a scenario
# needs 5: sectors.steel.abatement.0.capital_cost_range)
MAX_DEPTH = 32
# a year key: four ASCII digits, no leading zero (int() would also read "02026", "２０２６")
_YEAR_KEY = re.compile(r"[1-9][0-9]{3}")
# longest list of allowed keys an "unknown key" message spells out
_ALLOWED_LIST_LIMIT = 180  # the top level (172 characters) is still spelt out


class ScenarioError(ValueError):
    """A scenario that cannot be used: one message naming the file, the key and the rule."""


class _Section(BaseModel):
    # strict: "5" is not a number and "yes" is not a boolean in a scenario file;
    # allow_inf_nan: every float field (schedules, tables of shares too) is finite
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True,
                              allow_inf_nan=False)


def _check_year_keys(value: Any) -> Any:
    if isinstance(value, dict):
        if not value:
            raise ValueError("a year table needs at least one year")
        for key in value:
            if not (_YEAR_KEY.fullmatch(key) and 1990 <= int(key) <= 2100):
                raise ValueError("year keys must be years from 1990 to 2100 in ASCII digits "
                                 f"without a leading zero, got {shown(key)}")
    return value


def _scheduled(value: Any) -> list[Any]:
    """The values of a schedule: one value, or a table of values by year."""
    return list(value.values()) if isinstance(value, dict) else [value]


def schedule_value(schedule: Schedule | RuleSchedule, year: int) -> Any:
    """The value of a year schedule in ``year`` (step function over the listed years).

    Args:
        schedule: One value, or a table mapping years (as strings) to values.
        year: The calendar year asked for.

    Returns:
        The value of the latest listed year at or before ``year``, else the first one.
    """
    if not isinstance(schedule, dict):
        return schedule
    years = sorted(int(y) for y in schedule)
    chosen = years[0]
    for listed in years:
        if listed <= year:
            chosen = listed
    return schedule[str(chosen)]


class AbatementOption(_Section):
    """One abatement technology a firm may adopt (``[[sectors.NAME.abatement]]``).

    Each firm draws its own intensity reduction, capital cost and operating cost from
    a triangular distribution over the ``*_range`` keys, with the central value as mode
    (no range: every firm gets the central value). The levelised cost per tonne is not
    an input: it is derived from these keys at ``investment.hurdle_rate`` (see
    ``agents.abatement.levelised_cost``).
    """

    name: str = Field(
        min_length=1,
        description="Name of the option, unique within its sector (text).",
    )
    intensity_reduction: float = Field(
        gt=0,
        lt=1,
        description=(
            "Fraction of the firm's direct intensity (tCO2 per unit) the option cuts (share, above "
            "0 and below 1)."
        ),
    )
    intensity_reduction_range: tuple[float, float] | None = Field(
        default=None,
        strict=False,  # TOML gives a list
        description=(
            "[low, high] of the firms' draws of intensity_reduction (share, above 0 and below "
            "1, holding intensity_reduction); unset = no spread."
        ),
    )
    capital_cost: float = Field(
        ge=0,
        description=(
            "Investment per tonne of yearly abatement capacity, spent when the firm decides to "
            "adopt (CNY per tCO2/yr)."
        ),
    )
    capital_cost_range: tuple[float, float] | None = Field(
        default=None,
        strict=False,
        description=(
            "[low, high] of the firms' draws of capital_cost (CNY per tCO2/yr, holding "
            "capital_cost); unset = no spread."
        ),
    )
    operating_cost: float = Field(
        ge=0,
        description=(
            "Running cost per tonne abated, net of fuel or energy savings (CNY/t)."
        ),
    )
    operating_cost_range: tuple[float, float] | None = Field(
        default=None,
        strict=False,
        description=(
            "[low, high] of the firms' draws of operating_cost (CNY/t, holding "
            "operating_cost); unset = no spread."
        ),
    )
    lifetime_years: int = Field(
        ge=1,
        le=60,
        description=(
            "Years the option works once in effect: the period of its net present value and "
            "of its capital recovery (years, 1-60)."
        ),
    )
    lead_time_years: int = Field(
        ge=0,
        le=20,
        description="Years from the decision to adopt until the cut takes effect (years, 0-20).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_levelised_input(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old in ("cost_per_t", "cost_range"):
                if old in data:
                    raise ValueError(
                        f"{old}: the cost per tonne is derived now; give capital_cost, "
                        "operating_cost and lifetime_years (with optional *_range keys) instead"
                    )
        return data

    @model_validator(mode="after")
    def _ranges_hold_values(self) -> AbatementOption:
        for key in ("intensity_reduction", "capital_cost", "operating_cost"):
            band = getattr(self, f"{key}_range")
            if band is None:
                continue
            low, high = band
            if not low <= getattr(self, key) <= high:
                raise ValueError(f"{key}_range: must be [low, high] with low <= {key} <= high")
            floor_ok = low > 0 if key == "intensity_reduction" else low >= 0
            if not floor_ok or (key == "intensity_reduction" and high >= 1):
                bounds = "above 0 and below 1" if key == "intensity_reduction" else "0 or more"
                raise ValueError(f"{key}_range: the bounds must be {bounds}")
        return self


class AllocationConfig(_Section):
    """How a sector's quota is allocated (``[sectors.NAME.allocation]``).

    Keys without a Field description: ``rule`` (schedule of rule names:
    ``verified_emissions`` = quota equals verified emissions; ``intensity`` = output x
    benchmark x adjustment_factor; ``absolute_cap`` = a sector cap shared by historical
    output x benchmark); ``tightening`` (schedule, share per year: the benchmark of year Y
    is benchmark x the product, over the years after benchmark_base_year up to Y, of
    (1 - tightening of that year)); ``adjustment_factor`` (schedule, multiplies intensity
    quotas, above 0 and at most 2); ``paid_share`` (schedule, share of the year's quota
    sold at auction instead of given free, 0 to below 1); ``pre_allocation_basis``
    (``previous_verified``: share x previous year's verified emissions;
    ``previous_output``: share x previous year's output x this year's benchmark).
    """

    rule: RuleSchedule = "intensity"
    tightening: Schedule = 0.02
    adjustment_factor: Schedule = 1.0
    cap_decline: float = Field(
        default=0.02,
        ge=0,
        lt=1,
        description=(
            "Yearly decline of an absolute sector cap (share per year): the cap of year Y is "
            "cap_base_t x (1 - cap_decline)^(years since the first absolute_cap year)."
        ),
    )
    cap_base_t: float | None = Field(
        default=None,
        gt=0,
        description=(
            "The sector cap in its first absolute_cap year (tCO2 at full scale, multiplied by "
            "scale); unset = the sector's verified emissions of the year before."
        ),
    )
    paid_share: Schedule = 0.0
    pre_allocation_share: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description=(
            "Preliminary quota for year Y issued in compliance.pre_allocation_month of Y+1, as a "
            "share of pre_allocation_basis (share 0-1); trued up to verified output later."
        ),
    )
    pre_allocation_basis: Literal["previous_verified", "previous_output"] = "previous_verified"
    deficit_cap: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "A firm surrenders at most free allocation + deficit_cap x verified emissions (share "
            "of verified emissions, 0-1); unset = no cap; 0 = gas units' rule of China's first "
            "cycles."
        ),
    )

    _years = field_validator("rule", "tightening", "adjustment_factor", "paid_share")(
        _check_year_keys
    )

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: RuleSchedule) -> RuleSchedule:
        if any(rule not in ALLOCATION_RULE_NAMES for rule in _scheduled(value)):
            allowed = ", ".join(ALLOCATION_RULE_NAMES)
            raise ValueError(f"allocation rule must be one of {allowed}")
        return value

    @field_validator("tightening", "paid_share")
    @classmethod
    def _share(cls, value: Schedule) -> Schedule:
        if not all(0 <= share < 1 for share in _scheduled(value)):
            raise ValueError("must be at least 0 and below 1")
        return value

    @field_validator("adjustment_factor")
    @classmethod
    def _factor(cls, value: Schedule) -> Schedule:
        if not all(0 < factor <= 2 for factor in _scheduled(value)):
            raise ValueError("must be above 0 and at most 2")
        return value


class SectorConfig(_Section):
    """One covered sector (``[sectors.NAME]``), merged over the library in agents.sectors.

    Keys without a Field description: ``label`` (display name, text), ``enabled``
    (whether the sector is simulated at all, boolean), ``unit`` (unit of output, text).
    A sector not in the library must give every key without a default.
    """

    label: str
    enabled: bool = True
    entry_year: int = Field(
        ge=1990,
        le=2100,
        description=(
            "First compliance year in which the sector is covered; its firms trade from then "
            "(year)."
        ),
    )
    firms: int = Field(
        ge=0,
        le=20000,
        description=(
            "Number of installations at full scale (count; multiplied by the top-level scale)."
        ),
    )
    unit: str
    output_per_firm: float = Field(
        gt=0,
        description="Mean annual output of a firm at start_year (unit per year).",
    )
    output_dispersion: float = Field(
        ge=0,
        le=3,
        description="Lognormal sigma of firm size (dimensionless, 0-3).",
    )
    benchmark: float = Field(
        gt=0,
        description="Intensity benchmark in benchmark_base_year (tCO2 per unit of output).",
    )
    benchmark_base_year: int = Field(
        ge=1990,
        le=2100,
        description=(
            "Year in which benchmark applies; allocation.tightening cuts it in each later year "
            "(year)."
        ),
    )
    intensity_ratio_mean: float = Field(
        gt=0,
        le=3,
        description=(
            "Mean of a firm's baseline direct intensity divided by the benchmark (ratio; normal "
            "draw truncated to 0.5-2)."
        ),
    )
    intensity_ratio_sd: float = Field(
        ge=0,
        le=1,
        description="Standard deviation of that ratio (ratio, 0-1).",
    )
    indirect_intensity: float = Field(
        ge=0,
        description=(
            "Emissions from purchased electricity and heat (tCO2 per unit); counted in obligations "
            "only when scope.include_indirect."
        ),
    )
    product_price: float = Field(
        gt=0,
        description=(
            "Price of the sector's product before carbon costs (CNY per unit of output); "
            "sizes margins, revenue and capital budgets."
        ),
    )
    margin_share: float = Field(
        ge=0,
        lt=1,
        description=(
            "A typical firm's operating margin before carbon costs, as a share of the "
            "product price (share); firms draw their own around it."
        ),
    )
    demand_elasticity: float = Field(
        ge=0,
        le=5,
        description=(
            "Price elasticity of the sector's demand, as a positive number: demand falls "
            "by this share for each share the product price rises when carbon costs are "
            "passed on; 0 keeps output at the plan (dimensionless)."
        ),
    )
    demand_growth: float = Field(
        gt=-0.5,
        lt=0.5,
        description="Growth of the sector's output (share per year).",
    )
    output_shock_sd: float = Field(
        ge=0,
        le=0.5,
        description="Monthly idiosyncratic output shock of a firm (sd of a relative change).",
    )
    sector_shock_sd: float = Field(
        ge=0,
        le=0.5,
        description="Monthly output shock common to the sector (sd of a relative change).",
    )
    initial_bank_share: float = Field(
        ge=0,
        le=2,
        description=(
            "Quota each firm holds at the start, vintage start_year - 1 (share of its annual "
            "emissions, 0-2)."
        ),
    )
    accounting_change: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Changes in how the sector's emissions are measured, e.g. { 2023 = 0.034 }: in "
            "January of each listed year every firm's measured direct intensity falls by that "
            "share (a new default emission factor, not a change of plant), and the benchmark "
            "is set on the new balance value, so firms expect an unpublished plan's benchmark "
            "to fall with it; empty = none (table of years to shares, each 0 to below 1)."
        ),
    )
    provinces: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Shares of the sector's firms in each province, e.g. { Hebei = 0.2, other = 0.8 }; "
            "firms draw their province by these shares, and peers are firms of the same sector "
            "and province; empty = one group for the whole sector (table of shares summing "
            "to 1)."
        ),
    )
    abatement: list[AbatementOption] = Field(
        default_factory=list,
        description=(
            "Abatement options open to the sector's firms (list of tables; a scenario's list "
            "replaces the library's whole)."
        ),
    )
    allocation: AllocationConfig = Field(
        default_factory=AllocationConfig,
        description="How the sector's quota is allocated (table).",
    )

    @field_validator("accounting_change")
    @classmethod
    def _accounting_shares(cls, value: dict[str, float]) -> dict[str, float]:
        if value:  # {} = no change
            _check_year_keys(value)
        if any(not 0 <= share < 1 for share in value.values()):
            raise ValueError("each year's share must be at least 0 and below 1")
        return value

    @field_validator("provinces")
    @classmethod
    def _province_shares(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 <= share <= 1 for share in value.values()):
            raise ValueError("each province's share must be from 0 to 1")
        if value and abs(sum(value.values()) - 1.0) > 1e-6:
            raise ValueError("the shares must add up to 1")
        return value


def _iso_date(value: Any) -> datetime.date:
    """A TOML date or a text YYYY-MM-DD as a date (a date-time is refused)."""
    if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date | str):
        raise ValueError("must be a date, 2021-07-16 or \"2021-07-16\"")
    if isinstance(value, str):
        try:
            if len(value) == 10:
                return datetime.date.fromisoformat(value)
        except ValueError:
            pass
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


class MarketConfig(_Section):
    """Exchange rules (``[market]``): listed and block trading, price limits, calendar."""

    initial_price: float = Field(
        default=95.0,
        gt=0,
        description="Previous close before the first trading day (CNY/t).",
    )
    price_limit: float = Field(
        default=0.10,
        gt=0,
        le=1,
        description=(
            "Daily price limit of listed (continuous) trading, +/- share of the previous close "
            "(share)."
        ),
    )
    block_price_limit: float = Field(
        default=0.30,
        gt=0,
        le=1,
        description="Daily price limit of block trading, +/- share of the previous close (share).",
    )
    block_min_t: int = Field(
        default=100_000,
        ge=1,
        description="Orders of this size or more go to the block session (tCO2).",
    )
    tick: float = Field(default=0.01, gt=0, description="Price tick (CNY/t).")
    trading_days_per_month: int = Field(
        default=20,
        ge=1,
        le=23,
        description="Trading days in each month, 12 months a year (days).",
    )
    order_expiry: Literal["day", "gtc"] = Field(
        default="day",
        description=(
            "Unfilled listed limit orders expire at the close ('day', as on the exchange) or "
            "rest into the next trading days ('gtc', good-till-cancelled)."
        ),
    )
    gtc_max_age_days: int = Field(
        default=20,
        ge=0,
        description=(
            "With order_expiry = 'gtc': an order carried more than this many trading days "
            "expires at the open; 0 = no limit (trading days)."
        ),
    )
    opening_date: datetime.date | None = Field(
        default=None,
        description=(
            "The exchange's first trading day (a TOML date 2021-07-16 or the text "
            "\"2021-07-16\"): no trading before the first trading day on or after it; "
            "unset = trading from the first day of the run (date)."
        ),
    )

    @field_validator("opening_date", mode="before")
    @classmethod
    def _opening_iso_date(cls, value: Any) -> Any:
        return value if value is None else _iso_date(value)


class TradingConfig(_Section):
    """Firms' trading behaviour (``[trading]``).

    Key without a Field description: ``strategy`` (trading strategy of every firm, a
    registry name: ``budget_constrained``, ``zero_intelligence``, ``zip`` or
    ``fundamental_compliance``).
    """

    strategy: str = "budget_constrained"
    strategy_mix: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description=(
            "Per sector, the shares of its firms that use each strategy, e.g. "
            "{ steel = { budget_constrained = 0.7, zip = 0.3 } }; sectors not listed use "
            "strategy (table of shares summing to 1)."
        ),
    )
    expectations: str = Field(
        default="adaptive",
        description=(
            "Price expectation model of every firm (of sectors not in expectation_mix): "
            "adaptive, trend_following or fundamental (registry name)."
        ),
    )
    expectation_mix: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description=(
            "Per sector, the shares of its firms that use each expectation model, e.g. "
            "{ steel = { adaptive = 0.5, trend_following = 0.5 } } (table of shares "
            "summing to 1)."
        ),
    )
    trend_weight: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description=(
            "How much of the last month's price change trend_following firms extrapolate "
            "(share)."
        ),
    )
    zip_learning_rate: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description=(
            "Learning rate of zip traders: the share of the way a quote moves towards its "
            "target after each day it quoted (0-1)."
        ),
    )
    base_activity: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description=(
            "Daily probability that a firm with a position to trade places an order, far from its "
            "deadline (probability)."
        ),
    )
    peak_activity: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="That probability on the deadline day (probability).",
    )
    urgency_exponent: float = Field(
        default=6.0,
        gt=0,
        description=(
            "How late activity rises: urgency = (1 - days to deadline / days in a year)^exponent "
            "(dimensionless)."
        ),
    )
    order_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Share of the remaining target placed in one order (share).",
    )
    seller_discount: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description=(
            "A seller's reservation value lies this share below its expected price (share)."
        ),
    )
    buyer_premium: float = Field(
        default=0.3,
        ge=0,
        description=(
            "Far from the deadline a buyer's reservation value is expected price x (1 + "
            "buyer_premium); the premium doubles with urgency by the deadline day, never "
            "above the penalty price (share)."
        ),
    )
    quote_spread: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description=(
            "Buyers bid up to this share below their reservation value, sellers ask up to "
            "this share above theirs (uniform draw), clipped to the day's limits (share)."
        ),
    )
    patience: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description=(
            "Most likely share of a firm's orders placed patiently, far from its deadline "
            "and for a position small against its annual emissions: a patient buyer bids "
            "below the previous close and a patient seller asks above it (by up to "
            "quote_spread), so the book rests on both sides; the chance is patience x (1 - "
            "urgency) x (1 - |position| / annual emissions) (probability)."
        ),
    )
    block_threshold_t: float = Field(
        default=100_000.0,
        ge=0,
        description=(
            "Position size from which a firm takes part of it to the block session: the "
            "share is 1 - block_threshold_t / |position| (0 at or below it, rising "
            "towards 1), traded in orders of at least market.block_min_t (tCO2)."
        ),
    )
    block_deals: int = Field(
        default=0,
        ge=0,
        le=20,
        description=(
            "Lumpy block trading: a firm whose position is at least market.block_min_t "
            "trades it in block deals, each day it is active one block order of its "
            "remaining position / block_deals (at least block_min_t, within what it may "
            "buy or sell) and no listed order; smaller positions trade on the listed "
            "session. 0 = each order split by block_threshold_t instead (deals)."
        ),
    )
    expectation_smoothing: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description=(
            "Daily weight of the latest close, blended with the fundamental price by "
            "fundamental_weight, in adaptive price expectations (weight, 0-1)."
        ),
    )
    fundamental_weight: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description=(
            "Weight of the fundamental price (the marginal abatement cost that closes the "
            "expected shortage over the years of foresight, net of the bank) in a "
            "firm's expected price; the rest is the adaptive expectation (weight, 0-1)."
        ),
    )
    foresight_years: int = Field(
        default=5,
        ge=1,
        le=30,
        description=(
            "Years ahead (this one included) over which firms weigh abatement against "
            "the shortage for the fundamental price; years after end_year are expected "
            "to follow the last year's rules, so the scenario's end is no cliff (years)."
        ),
    )
    credit_years: float = Field(
        default=1.0,
        ge=0,
        description=(
            "A firm's carbon budget for each year: this many years of its emissions "
            "valued at its expected price, plus its net carbon revenue since 1 January; "
            "purchases stop when it is spent (years)."
        ),
    )

    fundamental_timing: Literal["january", "smooth"] = Field(
        default="january",
        description=(
            "How the fundamental price moves between compliance years: 'january' = this "
            "year's equilibrium price all year, next year's from January; 'smooth' = in "
            "month m, this year's x (next year's / this year's)^((m - 1) / 12), so a "
            "change already known is priced in through the year, not in a January step."
        ),
    )
    unpublished_tightening: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description=(
            "Tightening per year firms expect of a year whose allocation plan is not yet "
            "announced (see [[announcements]]): its benchmark, or cap, is the latest known "
            "plan's x (1 - this)^(years after it) (share per year)."
        ),
    )
    discount_rate: float = Field(
        default=0.08,
        ge=0,
        lt=1,
        description=(
            "Mean yearly rate at which firms discount future money: a firm banks quota "
            "when it expects the price to rise faster than this (Hotelling), and the "
            "intertemporal equilibrium price rises at this rate (share per year)."
        ),
    )
    discount_rate_sd: float = Field(
        default=0.02,
        ge=0,
        lt=1,
        description=(
            "Spread of firms' own discount rates around discount_rate (normal, kept "
            "between 0 and 0.5) (share per year)."
        ),
    )

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGY_NAMES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGY_NAMES)}")
        return value

    @field_validator("expectations")
    @classmethod
    def _known_expectations(cls, value: str) -> str:
        if value not in EXPECTATION_NAMES:
            raise ValueError(f"expectations must be one of {', '.join(EXPECTATION_NAMES)}")
        return value

    @field_validator("strategy_mix", "expectation_mix")
    @classmethod
    def _mix(cls, value: dict[str, dict[str, float]], info: Any) -> dict[str, dict[str, float]]:
        names = STRATEGY_NAMES if info.field_name == "strategy_mix" else EXPECTATION_NAMES
        for sector, shares in value.items():
            for name, share in shares.items():
                if name not in names:
                    raise ValueError(
                        f"{sector}: '{name}' is not one of {', '.join(names)}"
                    )
                if not 0 <= share <= 1:
                    raise ValueError(f"{sector}: the share of {name} must be from 0 to 1")
            if abs(sum(shares.values()) - 1.0) > 1e-6:
                raise ValueError(f"{sector}: the shares must add up to 1")
        return value


class InvestmentConfig(_Section):
    """Abatement investment and the peer network (``[investment]``): each January a firm
    adopts an option when its net present value at the hurdle rate is positive and its
    capital cost fits the year's capital budget (``Firm.review_abatement``)."""

    hurdle_rate: float = Field(
        default=0.10,
        ge=0,
        lt=1,
        description=(
            "Mean yearly rate at which firms discount an investment's cash flows; a firm's own "
            "rate is this plus its own discount_rate minus trading.discount_rate, at least 0 "
            "(share per year)."
        ),
    )
    capital_budget_share: float = Field(
        default=0.1,
        ge=0,
        le=5,
        description=(
            "Most a firm spends on abatement capital in one year, as a share of its revenue "
            "(product_price x its base output); an option's capital is paid in equal parts "
            "over its build years (its lead time, at least one); 0 = no investment (share "
            "per year)."
        ),
    )
    peer_degree: int = Field(
        default=4,
        ge=0,
        le=50,
        description=(
            "Links of each firm in the peer network: the k of a Watts-Strogatz small world "
            "within each group of firms of the same sector and province (a group of k + 1 "
            "firms or fewer is fully linked); 0 = no network (even count)."
        ),
    )
    peer_rewiring: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description=(
            "Probability that a link of the peer ring is rewired to a random firm of the same "
            "group (probability)."
        ),
    )
    peer_discount: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description=(
            "A firm perceives an option's capital cost as capital_cost x (1 - peer_discount x "
            "the share of its peers that adopted the option in earlier years); 0 = no peer "
            "effect (share)."
        ),
    )

    @field_validator("peer_degree")
    @classmethod
    def _even_degree(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be even (each firm links to k / 2 neighbours on either side)")
        return value


_DEADLINE = re.compile(r"([1-9][0-9]{3})-([0-9]{2})")


def parse_deadline(text: str) -> tuple[int, int]:
    """A deadline written ``"YYYY-MM"`` as (year, month): at the end of that month.

    Raises:
        ValueError: Not four ASCII digits, a dash and a month 01 to 12.
    """
    match = _DEADLINE.fullmatch(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"a deadline is written \"YYYY-MM\" (month 01 to 12), got {shown(text)}")
    return int(match.group(1)), int(match.group(2))


class CarryOverRule(_Section):
    """What a firm may carry past a deadline from a compliance year on
    (``[compliance.carry_over.YEAR]``): China's 2023-24 and 2024-25 carry-over rules.

    After the deadline of compliance year Y, each firm keeps at most its basic allowance
    plus ``net_sales_multiple`` x its net sales (sold minus bought, when positive) of
    the quota of vintages up to Y; the rest is cancelled.
    """

    basic_t: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Basic allowance: tonnes any firm may carry past the deadline whatever it sold "
            "(tCO2; not multiplied by scale, it is a per-firm rule)."
        ),
    )
    sector_basic_t: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "The basic allowance of named sectors, e.g. { power = 10000, steel = 100000 }; "
            "sectors not listed take basic_t (table of tCO2)."
        ),
    )
    net_sales_multiple: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Tonnes a firm may carry above its basic allowance per tonne of net sales "
            "(dimensionless; China 2023-24: 1.5)."
        ),
    )
    net_sales_years: int = Field(
        default=0,
        ge=0,
        le=31,
        description=(
            "Calendar years of net sales counted, up to the deadline's year; 0 = every "
            "year since the market opened (years)."
        ),
    )

    @field_validator("sector_basic_t")
    @classmethod
    def _sector_allowances(cls, value: dict[str, float]) -> dict[str, float]:
        for sector, tonnes in value.items():
            if not tonnes >= 0:
                raise ValueError(f"{sector}: the basic allowance must be 0 or more")
        return value


class OpeningCycle(_Section):
    """A compliance cycle that ran before the scenario's first year and is due in it
    (``[compliance.opening_cycle]``): China's first cycle, 2019-20, due by 31 December
    2021.

    Firms of the sectors in ``benchmark`` that entered the market before ``start_year``
    start the run holding the cycle's free quota, ``years`` x their output x the cycle's
    benchmark (vintage ``start_year - 1``), and owing its verified emissions, ``years``
    x their output x their intensity in the cycle, surrendered at ``deadline``. Output is
    each firm's planned output of the first year; a firm's intensity in the cycle stands
    to the cycle's benchmark as its intensity at the start stands to the sector's
    benchmark, divided by ``quota_ratio``: at 1.0 the sector as a whole is neither long
    nor short (each plan's benchmark set at the sector's balance value, as the library
    assumes of every benchmark), so trading comes from the firms' spread around it. No
    offsets and no borrowing in the cycle; a shortfall is fined and deducted as at any
    deadline; the banking rules then apply to vintage ``start_year - 1``.
    """

    years: int = Field(
        default=0,
        ge=0,
        le=5,
        description="Years of emissions in the cycle; 0 = no opening cycle (years).",
    )
    deadline: str = Field(
        default="",
        description=(
            "Its deadline, \"YYYY-MM\" (the end of that month), in the run's calendar and "
            "before the first compliance year's (text)."
        ),
    )
    benchmark: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Per sector in the cycle, its benchmark, e.g. { power = 0.877 } (table of tCO2 "
            "per unit of output)."
        ),
    )
    quota_ratio: float = Field(
        default=1.0,
        gt=0,
        description=(
            "The cycle's benchmark over the sector's balance value (the intensity at which "
            "its quota equals its emissions): above 1 the cycle is long (ratio)."
        ),
    )

    @field_validator("benchmark")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, benchmark in value.items():
            if not benchmark > 0:
                raise ValueError(f"{name}: a benchmark must be above 0, got {benchmark}")
        return value

    @model_validator(mode="after")
    def _complete(self) -> OpeningCycle:
        if self.years:
            try:
                parse_deadline(self.deadline)
            except ValueError as err:
                raise ValueError(f"deadline: {err}") from None
            if not self.benchmark:
                raise ValueError("benchmark: name at least one sector, e.g. { power = 0.877 }")
        return self

    def due(self) -> tuple[int, int] | None:
        """The deadline as (calendar year, month); None without a cycle."""
        return parse_deadline(self.deadline) if self.years else None


class ComplianceConfig(_Section):
    """The compliance cycle (``[compliance]``): deadlines, verification, pre-allocation and
    true-up, banking, borrowing and CCER offsets. Months are months of the year after
    the compliance year (the deadline's of year Y + deadline_year_offset).

    Keys without a Field description: ``banking`` (quota may be carried past a deadline
    into later years, boolean); ``borrowing`` (schedule of booleans by compliance year:
    firms may borrow from the next vintage at that year's deadline, as in China 2021-22,
    e.g. ``{ 2021 = true, 2023 = false }``).

    A compliance period: compliance years listed in ``deadlines`` with the same deadline
    are settled together at it (China's 2021-22 cycle, due at the end of 2023), each
    surrendering quota of vintages up to the period's last year.
    """

    deadline_year_offset: int = Field(
        default=1,
        ge=1,
        le=3,
        description="The deadline of compliance year Y falls in year Y + offset (years, 1-3).",
    )
    deadline_month: int = Field(
        default=12,
        ge=1,
        le=12,
        description=(
            "Month of the deadline year in which the deadline falls, at its end (month 1-12)."
        ),
    )
    verification_month: int = Field(
        default=4,
        ge=1,
        le=12,
        description="Month of year Y+1 in which year Y's emissions are verified (month 1-12).",
    )
    pre_allocation_month: int = Field(
        default=4,
        ge=1,
        le=12,
        description=(
            "Month of year Y+1 in which the preliminary quota for Y is issued (month 1-12)."
        ),
    )
    true_up_month: int = Field(
        default=9,
        ge=1,
        le=12,
        description=(
            "Month of year Y+1 in which Y's quota is trued up to verified output (month 1-12)."
        ),
    )
    deadlines: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Deadlines that differ from deadline_year_offset and deadline_month: compliance "
            "year -> \"YYYY-MM\" (the end of that month), e.g. { 2021 = \"2023-12\", 2022 = "
            "\"2023-12\" }; a deadline falls 1 to 3 years after its compliance year, after "
            "its true-up, and never before an earlier year's (table of year -> text)."
        ),
    )
    banking: bool = True
    carry_over: dict[str, CarryOverRule] = Field(
        default_factory=dict,
        description=(
            "Carry-over rules by compliance year, a step function over the listed years "
            "(each a table: basic_t, sector_basic_t, net_sales_multiple, net_sales_years); "
            "years before the first listed year use banking_limit_t and "
            "banking_net_sales_multiple; empty = those keys for every year (table of "
            "year -> table)."
        ),
    )
    banking_limit_t: float | None = Field(
        default=None,
        ge=0,
        description=(
            "Tonnes a firm may carry past a deadline, plus banking_net_sales_multiple x its net "
            "sales so far (tCO2); unset = unlimited."
        ),
    )
    banking_net_sales_multiple: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Multiple of a firm's net sales so far added to banking_limit_t (dimensionless)."
        ),
    )
    borrowing: bool | dict[str, bool] = False
    borrowing_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of its gap a firm may borrow from the next vintage (share of the gap).",
    )
    borrowing_threshold: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description=(
            "Borrowing is open only to firms whose gap is at least this share of their obligation "
            "(share)."
        ),
    )
    offset_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Maximum share of the obligation met with CCER offsets (share).",
    )
    offset_price: float = Field(default=70.76, ge=0, description="Price of CCER offsets (CNY/t).")
    offset_supply_share: float = Field(
        default=0.0011,
        ge=0,
        le=1,
        description=(
            "CCER supply per year as a share of total verified emissions (share; 8.84 Mt in 2025 "
            "over about 8 Gt)."
        ),
    )

    opening_cycle: OpeningCycle = Field(
        default_factory=OpeningCycle,
        description=(
            "A compliance cycle before start_year, due in the run (China 2019-20, due at "
            "the end of 2021); default none (table)."
        ),
    )

    _years = field_validator("borrowing")(_check_year_keys)

    @field_validator("deadlines", "carry_over")
    @classmethod
    def _year_table(cls, value: dict[str, Any]) -> dict[str, Any]:
        # empty is the default (no exception to the offset, no carry-over rule)
        return _check_year_keys(value) if value else value

    def default_deadline(self, year: int) -> tuple[int, int]:
        """The deadline of compliance year ``year`` by deadline_year_offset and
        deadline_month: (calendar year, month)."""
        return year + self.deadline_year_offset, self.deadline_month

    def deadline_of(self, year: int) -> tuple[int, int]:
        """The deadline of compliance year ``year``: (calendar year, month), at the end
        of that month; ``deadlines`` first, else the offset and month."""
        listed = self.deadlines.get(str(year))
        return self.default_deadline(year) if listed is None else parse_deadline(listed)

    @model_validator(mode="after")
    def _deadlines(self) -> ComplianceConfig:
        for key, text in self.deadlines.items():
            year = int(key)
            try:
                due_year, month = parse_deadline(text)
            except ValueError as err:
                raise ValueError(f"deadlines: {key}: {err}") from None
            if not year + 1 <= due_year <= year + 3:
                raise ValueError(f"deadlines: {key}: the deadline must fall 1 to 3 years after "
                                 f"its compliance year, in {year + 1} to {year + 3}")
            if due_year == year + 1 and month < self.true_up_month:
                raise ValueError(f"deadlines: {key}: a deadline in {year + 1} must not come "
                                 f"before true_up_month ({self.true_up_month})")
            for before, after in ((year - 1, year), (year, year + 1)):
                if self.deadline_of(before) > self.deadline_of(after):
                    raise ValueError(f"deadlines: {key}: compliance year {after} would be due "
                                     f"before compliance year {before}")
        return self

    @model_validator(mode="after")
    def _calendar_order(self) -> ComplianceConfig:
        # All dates below are months of the year after the compliance year.
        if self.deadline_year_offset == 1:
            if not self.verification_month <= self.true_up_month <= self.deadline_month:
                raise ValueError(
                    "true_up_month: with deadline_year_offset = 1 the months must satisfy "
                    "verification_month <= true_up_month <= deadline_month"
                )
        if self.pre_allocation_month > self.true_up_month:
            raise ValueError("pre_allocation_month: must not come after true_up_month")
        return self


class PenaltyConfig(_Section):
    """Penalty for a shortfall at the deadline (``[penalty]``).

    Key without a Field description: ``deduct_shortfall`` (the shortfall is deducted from
    the next year's quota, boolean).
    """

    multiple: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Fine = multiple x mean price of the month before the deadline x shortfall (multiple; "
            "Decree 775 says 5 to 10)."
        ),
    )
    deduct_shortfall: bool = True


class AuctionConfig(_Section):
    """Auctions of the paid share (``[auction]``).

    Key without a Field description: ``unsold`` (``carry``: unsold quota is added to the
    next auction, and cancelled after the last one; ``reserve``: it goes to the reserve
    pool; ``cancel``: it is cancelled).
    """

    months: list[int] = Field(
        default_factory=lambda: [3, 6, 9, 12],
        description=(
            "Months of the compliance year with a paid-share auction; the year's volume is split "
            "evenly (months 1-12)."
        ),
    )
    reserve_price: float = Field(
        default=40.0,
        ge=0,
        description="Lowest price at which auctioned quota is sold (CNY/t).",
    )
    unsold: Literal["carry", "reserve", "cancel"] = "carry"
    max_bid_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Largest share of one auction a single firm may win (share); unset = no limit.",
    )

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[int]) -> list[int]:
        if not value or any(not 1 <= m <= 12 for m in value) or len(set(value)) != len(value):
            raise ValueError("months must be a non-empty list of distinct months 1 to 12")
        return sorted(value)


class ReservePoolConfig(_Section):
    """The national quota reserve pool (``[reserve_pool]``).

    Key without a Field description: ``policy``: ``none``; ``price_trigger`` (each month
    the mean close over window_days is checked: above release_price the pool sells
    release_share of its holdings at auction with reserve price absorb_price; below
    absorb_price it buys back up to absorb_share of the year's total quota in a reverse
    auction with ceiling absorb_price); ``bank_based`` (like the EU Market Stability
    Reserve: at each deadline the quota held by firms (TNAC) divided by last year's
    verified emissions is compared with tnac_upper and tnac_lower: above, intake_rate x
    TNAC is withheld from the next year's issuance into the pool; below, release_share of
    the pool is sold at auction).
    """

    policy: str = "none"
    initial_holdings_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Pool holdings at the start (share of the first year's total quota).",
    )
    set_aside_share: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description=(
            "Share of each year's quota withheld from free allocation into the pool (share)."
        ),
    )
    window_days: int = Field(
        default=20,
        ge=1,
        le=240,
        description="price_trigger: trading days in the mean close checked each month (days).",
    )
    release_price: float = Field(
        default=120.0,
        gt=0,
        description="price_trigger: above this mean close the pool sells quota (CNY/t).",
    )
    release_share: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Share of the pool's holdings sold in one release (share).",
    )
    absorb_price: float = Field(
        default=40.0,
        ge=0,
        description=(
            "price_trigger: below this mean close the pool buys back, with this as the ceiling; "
            "also the reserve price of releases (CNY/t)."
        ),
    )
    absorb_share: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description=(
            "price_trigger: most the pool buys back in one month (share of the year's total quota)."
        ),
    )
    tnac_upper: float = Field(
        default=0.15,
        ge=0,
        description=(
            "bank_based: above this TNAC / last year's verified emissions, quota is withheld into "
            "the pool (ratio)."
        ),
    )
    tnac_lower: float = Field(
        default=0.05,
        ge=0,
        description="bank_based: below this ratio the pool releases quota (ratio).",
    )
    intake_rate: float = Field(
        default=0.24,
        ge=0,
        le=1,
        description="bank_based: share of TNAC withheld from the next year's issuance (share).",
    )

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        if value not in RESERVE_POLICY_NAMES:
            raise ValueError(f"policy must be one of {', '.join(RESERVE_POLICY_NAMES)}")
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> ReservePoolConfig:
        if self.absorb_price >= self.release_price:
            raise ValueError("absorb_price: must be below release_price")
        if self.tnac_lower >= self.tnac_upper:
            raise ValueError("tnac_lower: must be below tnac_upper")
        return self


class MRVConfig(_Section):
    """Monitoring, reporting, verification and inspections (``[mrv]``).

    Keys without a Field description: ``misreporting_mode`` (``share``: a fixed share of
    firms misreports; ``decision``: each January every firm weighs the gain against the
    expected fine), ``inspection_selection`` (``random``, or ``risk_based``: the firms
    whose reported intensity fell most since their last verified year).
    """

    misreporting_mode: Literal["share", "decision"] = "share"
    inspection_selection: Literal["random", "risk_based"] = "random"
    risk_aversion: float = Field(
        default=3.0,
        ge=0,
        description=(
            "Mean of the firms' risk factors (lognormal, sigma 0.5): in decision mode a firm "
            "misreports when 1 > inspection x detection probability x (fine_multiple + 1) x "
            "its risk factor (factor)."
        ),
    )
    misreporting_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of firms under-reporting their emissions (share).",
    )
    misreporting_bias: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="Fraction of its emissions a misreporting firm hides (share).",
    )
    inspection_probability: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description=(
            "Probability that a firm is inspected in a year (probability per firm and year)."
        ),
    )
    detection_probability: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Probability that an inspection finds misreporting (probability).",
    )
    fine_multiple: float = Field(
        default=3.0,
        ge=0,
        description=(
            "Fine = multiple x the year's mean price x hidden tonnes; detected firms' verified "
            "emissions are corrected (multiple)."
        ),
    )


class ScopeConfig(_Section):
    """Emission scope counted in obligations (``[scope]``).

    Key without a Field description: ``include_indirect`` (count emissions from purchased
    electricity and heat, each sector's indirect_intensity, boolean).
    """

    include_indirect: bool = False


class FinancialTradersConfig(_Section):
    """Financial traders on the exchange (``[financial]``): accounts that are not
    compliance firms, none by default (``agents/financial.py`` reads this section);
    every default is an UNCONFIRMED assumption.

    Key without a Field description: ``reference`` (market makers quote around the
    previous ``close``, or the ``mid`` of the best bid and ask at the previous close
    when both existed).
    """

    speculators: int = Field(
        default=0, ge=0, description="Speculator accounts (mean reversion) (accounts)."
    )
    market_makers: int = Field(default=0, ge=0, description="Market-maker accounts (accounts).")
    position_limit_t: int = Field(
        default=50_000,
        ge=1,
        description="Most allowances an account may hold; no account may go short (tCO2).",
    )
    cash: float = Field(
        default=5_000_000.0, ge=0, description="Starting cash of each account (CNY)."
    )
    spread: float = Field(
        default=0.02,
        gt=0,
        lt=1,
        description="Market maker: ask minus bid (share of the reference price).",
    )
    quote_t: int = Field(
        default=1_000,
        ge=1,
        description=(
            "Market maker: tonnes quoted on each side, below market.block_min_t (tCO2)."
        ),
    )
    inventory_skew: float = Field(
        default=0.01,
        ge=0,
        lt=1,
        description=(
            "Market maker: shift of both quotes at a full (down) or empty (up) inventory, at "
            "most spread / 2 (share of the reference price)."
        ),
    )
    reference: Literal["close", "mid"] = "close"
    threshold: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description=(
            "Speculator: mispricing of the previous close against the fundamental price that "
            "makes it trade (share of value)."
        ),
    )
    threshold_dispersion: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description=(
            "Speculator: thresholds are drawn in threshold x (1 +/- dispersion) (share)."
        ),
    )
    order_t: int = Field(
        default=2_000,
        ge=1,
        description="Speculator: tonnes per order, below market.block_min_t (tCO2).",
    )
    activity: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Speculator: chance that it acts on a signal on a given day (probability).",
    )

    @model_validator(mode="after")
    def _skew_within_spread(self) -> FinancialTradersConfig:
        if self.inventory_skew > self.spread / 2 + 1e-12:
            raise ValueError(
                "inventory_skew: must be at most spread / 2, or a full or empty market maker "
                "would quote its bid above (or its ask below) the reference price"
            )
        return self


class Announcement(_Section):
    """A dated publication of allocation plans (``[[announcements]]``): from the first
    trading day on or after ``date``, firms know the plans of ``sectors`` for ``years``.

    A sector's plan of a year is everything its ``[sectors.NAME.allocation]`` table says
    for that year: the rule, the benchmark (its tightening), the adjustment factor, the
    paid share and an absolute cap's decline. A sector named in no announcement has all
    its plans known from the start (what firms assume without this table); a sector
    named in one knows only the plans announced so far and the terms of its first year
    in the run, and expects each later year not yet announced to follow the latest plan
    it knows, tightened by ``trading.unpublished_tightening`` a year.
    """

    date: datetime.date = Field(
        description=(
            "Day of publication (a TOML date 2024-10-15 or the text \"2024-10-15\"); from the "
            "first trading day on or after it (date)."
        ),
    )
    sectors: list[str] = Field(
        min_length=1,
        description="Sectors whose plans are published (list of sector names).",
    )
    years: list[int] = Field(
        min_length=1,
        description="Compliance years whose plans are published (list of years 1990-2100).",
    )
    note: str = Field(
        default="",
        description="What was published and its source (text, for readers only).",
    )

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date | str):
            raise ValueError("must be a date, 2024-10-15 or \"2024-10-15\"")
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value) if len(value) == 10 else None
            except ValueError:
                pass
            raise ValueError("must be a date written YYYY-MM-DD")
        return value

    @field_validator("years")
    @classmethod
    def _years_in_range(cls, value: list[int]) -> list[int]:
        if any(not 1990 <= year <= 2100 for year in value):
            raise ValueError("years must be from 1990 to 2100")
        return value


class Scenario(_Section):
    """A whole scenario: the top-level keys and one table per section.

    Keys without a Field description: ``name`` (scenario name, text), ``description``
    (text), ``sectors`` (table of sector tables, merged over the sector library). The
    calendar runs from January of start_year to the deadline of end_year (end_year +
    compliance.deadline_year_offset, unless compliance.deadlines says otherwise).
    """

    name: str = "custom"
    description: str = ""
    start_year: int = Field(
        default=2024,
        ge=2000,
        le=2090,
        description="First compliance year (year); the calendar starts in its January.",
    )
    end_year: int = Field(
        default=2030,
        ge=2000,
        le=2095,
        description=(
            "Last compliance year (year); the calendar runs to its deadline, the years after it "
            "being a settlement period with trading but no new obligations."
        ),
    )
    seed: int = Field(default=1, ge=0, description="Default random seed (integer).")
    scale: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description=(
            "Multiplies every sector's firm count, rounded, at least 1 for an enabled sector with "
            "firms > 0 (factor)."
        ),
    )
    sectors: dict[str, SectorConfig]
    market: MarketConfig = Field(
        default_factory=MarketConfig,
        description="Exchange rules (table).",
    )
    trading: TradingConfig = Field(
        default_factory=TradingConfig,
        description="Firms' trading behaviour (table).",
    )
    compliance: ComplianceConfig = Field(
        default_factory=ComplianceConfig,
        description="Calendar of the compliance cycle, banking, borrowing and offsets (table).",
    )
    penalty: PenaltyConfig = Field(
        default_factory=PenaltyConfig,
        description="Penalty for a shortfall at the deadline (table).",
    )
    auction: AuctionConfig = Field(
        default_factory=AuctionConfig,
        description="Auctions of the paid share (table).",
    )
    reserve_pool: ReservePoolConfig = Field(
        default_factory=ReservePoolConfig,
        description="National quota reserve pool (table).",
    )
    mrv: MRVConfig = Field(
        default_factory=MRVConfig,
        description="Monitoring, reporting, verification and inspections (table).",
    )
    scope: ScopeConfig = Field(
        default_factory=ScopeConfig,
        description="Emission scope counted in obligations (table).",
    )
    investment: InvestmentConfig = Field(
        default_factory=InvestmentConfig,
        description="Abatement investment decisions and the peer network (table).",
    )
    financial: FinancialTradersConfig = Field(
        default_factory=FinancialTradersConfig,
        description="Financial traders on the exchange: speculators and market makers (table).",
    )
    announcements: list[Announcement] = Field(
        default_factory=list,
        description=(
            "Dated publications of allocation plans that change firms' expected quota "
            "from that day (list of tables); empty = every plan known from the start."
        ),
    )

    @model_validator(mode="after")
    def _horizon(self) -> Scenario:
        if self.end_year < self.start_year:
            raise ValueError("end_year: must not be before start_year")
        if self.end_year - self.start_year > 30:
            raise ValueError("end_year: a scenario covers at most 31 years from start_year")
        for mix in ("strategy_mix", "expectation_mix"):
            unknown = sorted(set(getattr(self.trading, mix)) - set(self.sectors))
            if unknown:
                raise ValueError(
                    f"trading.{mix}: unknown sector '{unknown[0]}'; sectors: "
                    f"{', '.join(self.sectors)}"
                )
        for year, rule in self.compliance.carry_over.items():
            unknown = sorted(set(rule.sector_basic_t) - set(self.sectors))
            if unknown:
                raise ValueError(
                    f"compliance.carry_over: {year}: sector_basic_t names unknown sector "
                    f"'{unknown[0]}'; sectors: {', '.join(self.sectors)}"
                )
        for index, announcement in enumerate(self.announcements):
            unknown = sorted(set(announcement.sectors) - set(self.sectors))
            if unknown:
                raise ValueError(
                    f"announcements: entry {index}: unknown sector '{unknown[0]}'; sectors: "
                    f"{', '.join(self.sectors)}"
                )
        if not self.simulated_sectors():
            raise ValueError(
                "sectors: at least one sector must be enabled, with firms > 0 and an "
                "entry_year no later than end_year"
            )
        block, financial = self.market.block_min_t, self.financial
        for key, accounts in (("quote_t", financial.market_makers),
                              ("order_t", financial.speculators)):
            if accounts and getattr(financial, key) >= block:
                raise ValueError(
                    f"financial.{key}: must be below market.block_min_t ({block} t): "
                    "financial traders trade on the listed session only"
                )
        return self

    @model_validator(mode="after")
    def _opening_cycle_fits(self) -> Scenario:
        cycle = self.compliance.opening_cycle
        if cycle.years:
            unknown = sorted(set(cycle.benchmark) - set(self.sectors))
            if unknown:
                raise ValueError(
                    f"compliance.opening_cycle: benchmark names unknown sector "
                    f"'{unknown[0]}'; sectors: {', '.join(self.sectors)}")
            due = cycle.due()
            first = self.compliance.deadline_of(self.start_year)
            if not (self.start_year, 1) <= due < first:
                raise ValueError(
                    f"compliance.opening_cycle: deadline {cycle.deadline} must fall in or "
                    f"after {self.start_year} and before the first compliance year's "
                    f"deadline ({first[0]}-{first[1]:02d})")
        return self

    def simulated_sectors(self) -> list[str]:
        """Sectors that have firms in a run: enabled, with firms, entering by end_year."""
        return [name for name, s in self.sectors.items()
                if s.enabled and s.firms > 0 and s.entry_year <= self.end_year]

    def firm_counts(self) -> dict[str, int]:
        """Firms of each simulated sector at the scenario's ``scale`` (at least one each)."""
        return {name: max(1, round(self.sectors[name].firms * self.scale))
                for name in self.simulated_sectors()}

    @property
    def last_calendar_year(self) -> int:
        """The last simulated calendar year: the deadline of the last compliance year."""
        return self.compliance.deadline_of(self.end_year)[0]

    def digest(self) -> str:
        """A stable hash of the resolved scenario (for caches and run records)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- loading -------------------------------------------------------------------------


def shipped_scenarios() -> list[str]:
    """Names of the scenarios shipped in the ``scenarios`` package."""
    folder = resources.files("etsim.scenarios")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def read_toml_file(path: str | Path, kind: str = "scenario",
                   error: type[ScenarioError] = ScenarioError) -> tuple[dict[str, Any], str]:
    """Read a TOML file; any way it can fail is one line naming the file.

    Shared by scenario and experiment files.

    Args:
        path: The file.
        kind: What the file is, for messages ("scenario", "experiment").
        error: The exception raised (a ScenarioError subclass).

    Returns:
        The table (checked by :func:`check_raw_table`) and the file's name for messages.

    Raises:
        ScenarioError: Missing, a folder, unreadable, not UTF-8, not TOML, an integer
            past 64 bits or nesting deeper than MAX_DEPTH.
    """
    source = shown_name(path)
    if not os.path.isfile(path):  # also False for names the system refuses (too long, NUL)
        if os.path.isdir(path):
            raise error(f"{source}: is a folder; give the {kind} file (.toml)")
        raise error(f"{source}: no such {kind} file")
    try:
        data = Path(path).read_bytes()
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise error(f"{source}: cannot read the {kind} file ({shown_name(reason)})") from None
    return parse_toml(data, source, error), source


def parse_toml(data: bytes, source: str,
               error: type[ScenarioError] = ScenarioError) -> dict[str, Any]:
    """Parse the bytes of a TOML file into a checked table (see :func:`read_toml_file`)."""
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Notepad) is not TOML
    except UnicodeDecodeError as err:
        found = "UTF-16 text" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else (
            f"byte 0x{data[err.start]:02x} at offset {err.start}")
        raise error(f"{source}: not UTF-8 text ({found}); save the file as UTF-8") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise error(f"{source}: not valid TOML: {shown_name(err)}") from None
    except ValueError:  # an integer past Python's int-to-str limit (thousands of digits)
        found = re.search(r"[0-9][0-9_]{200,}", text)
        where = _line_of(text, found.start()) if found else ""
        raise error(f"{source}: {where}{INT_RULE}, got an integer of thousands of "
                    "digits") from None
    except RecursionError:
        deepest = max(text.splitlines() or [""], key=lambda line: line.count("[")
                      + line.count("{"))
        where = _line_of(text, text.index(deepest)) if deepest else ""
        raise error(f"{source}: {where}tables and arrays may nest at most {MAX_DEPTH} "
                    "deep") from None
    check_raw_table(table, source, error=error)
    return table


def _line_of(text: str, index: int) -> str:
    """'line N, key 'K': ' for the line of ``text`` holding ``index`` (K if it sets one)."""
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    line = text[start:end if end >= 0 else len(text)]
    number = text.count("\n", 0, start) + 1
    key = re.match(r"\s*([A-Za-z0-9_.\"' -]+?)\s*=", line)
    named = f", key '{shown(key.group(1), quote=False)}'" if key else ""
    return f"line {number}{named}: "


def check_raw_table(value: Any, source: str, path: tuple[Any, ...] = (),
                    error: type[ScenarioError] = ScenarioError) -> None:
    """Refuse what no schema should see: integers past 64 bits, nesting past MAX_DEPTH.

    Args:
        value: A table (or value) as read from TOML, or an override's value.
        source: File or argument for messages.
        path: The key path of ``value`` (for messages).
        error: The exception raised.

    Raises:
        ScenarioError: One line naming the source and the key.
    """
    stack = [(path, value)]  # a loop, not recursion: the nesting may be deep
    while stack:
        at, item = stack.pop()
        if len(at) - len(path) > MAX_DEPTH:
            raise error(f"{source}: key '{_dotted(at)}': tables and arrays may nest at most "
                        f"{MAX_DEPTH} deep")
        if isinstance(item, int) and not isinstance(item, bool) and not (
                INT_MIN <= item <= INT_MAX):
            raise error(f"{source}: key '{_dotted(at)}': {INT_RULE}, got {shown(item)}")
        if isinstance(item, dict):
            stack.extend(((*at, k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(((*at, i), v) for i, v in reversed(list(enumerate(item))))


def _dotted(path: tuple[Any, ...]) -> str:
    return shown(".".join(map(str, path)) or "(top level)", quote=False)


def _read_toml(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    path = str(name_or_path)
    if path.endswith(".toml") or os.path.lexists(path) or os.sep in path:
        return read_toml_file(name_or_path)
    shipped = resources.files("etsim.scenarios") / f"{path}.toml"
    try:
        found = shipped.is_file()
    except (OSError, ValueError):  # a name the system refuses (too long, NUL)
        found = False
    if not found:
        raise ScenarioError(
            f"scenario '{shown(path, quote=False)}' not found: give a shipped scenario "
            f"({', '.join(shipped_scenarios())}) or a path to a .toml file"
        )
    source = f"{path}.toml"
    return parse_toml(shipped.read_bytes(), source), source


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        # year tables (schedules) replace each other whole; other tables merge
        is_year_table = isinstance(value, dict) and all(str(k).isdigit() for k in value)
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not is_year_table:
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override_value(text: str, source: str = "--set") -> Any:
    """Read a ``--set`` value as TOML (numbers, booleans, tables), else as a string.

    Args:
        text: The value as typed.
        source: The argument, for messages.

    Raises:
        ScenarioError: An integer of thousands of digits, or nesting too deep to parse
            (a value past 64 bits or MAX_DEPTH is refused with its key when applied).
    """
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text
    except ValueError:  # an integer past Python's int-to-str limit
        raise ScenarioError(f"{source}: {INT_RULE}, got an integer of thousands of "
                            "digits") from None
    except RecursionError:
        raise ScenarioError(f"{source}: tables and arrays may nest at most {MAX_DEPTH} "
                            "deep") from None
    return value


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any],
                    labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Set dotted keys in a raw scenario table; ``*`` stands for every existing entry.

    Args:
        raw: The scenario table (sectors already merged with the library).
        overrides: Dotted paths to values, e.g. ``{"penalty.multiple": 7,
            "sectors.*.allocation.tightening": 0.03,
            "sectors.steel.abatement.0.capital_cost": 250}`` (a number picks an entry of
            a list, such as an abatement option). A ``__`` in a key is read as a dot,
            so keyword arguments (``penalty__multiple=7``) work too.
        labels: How messages name each override (default ``override 'KEY'``).

    Returns:
        A new table with the overrides applied.

    Raises:
        ScenarioError: The path runs through a value that is not a table or a list,
            or a list index is out of range.
    """
    result = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        name = _override_name(dotted, labels)
        parts = dotted.replace("__", ".").split(".")
        if not all(parts):
            raise ScenarioError(f"{name}: a key path like penalty.multiple is needed")
        targets: list[Any] = [result]
        for part in parts[:-1]:
            targets = [child for parent in targets for child in _children(parent, part, name)]
        for parent in targets:
            if isinstance(parent, list):
                parent[_list_index(parent, parts[-1], name)] = copy.deepcopy(value)
            else:
                parent[parts[-1]] = copy.deepcopy(value)
    return result


def _override_name(dotted: str, labels: Mapping[str, str] | None) -> str:
    """How a message names an override: its label (``--set ...``), else its key."""
    if labels and dotted in labels:
        return labels[dotted]
    return f"override '{shown_name(dotted)}'"


def _list_index(entries: list[Any], part: str, name: str) -> int:
    if not part.isdigit() or not part.isascii() or int(part) >= len(entries):
        raise ScenarioError(
            f"{name}: '{shown(part, quote=False)}' must be an index from 0 to {len(entries) - 1}"
        )
    return int(part)


def _children(parent: Any, part: str, name: str) -> list[Any]:
    """The tables (or lists) one step down an override path."""
    if isinstance(parent, list):
        if part == "*":
            return [entry for entry in parent if isinstance(entry, dict | list)]
        return [parent[_list_index(parent, part, name)]]
    if part == "*":
        return [child for child in parent.values() if isinstance(child, dict | list)]
    child = parent.setdefault(part, {})
    if not isinstance(child, dict | list):
        raise ScenarioError(f"{name}: '{shown(part, quote=False)}' is not a table")
    return [child]


def _allowed_keys(loc: tuple[Any, ...]) -> list[str] | None:
    """The keys allowed in the table at ``loc`` (for 'unknown key' messages)."""
    model: Any = Scenario
    for index, part in enumerate(loc):
        if index > 0 and loc[index - 1] == "sectors" and model is None:
            model = SectorConfig
            continue
        field = model.model_fields.get(str(part)) if model is not None else None
        if field is None:
            return None
        # sectors is a table of SectorConfig, the next key being the sector name
        model = None if part == "sectors" else field.annotation
        if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return None


# pydantic names the branch of a union (float, dict[str, float], ...) in the location
_UNION_BRANCHES = ("float", "str", "int", "bool", "list[any]", "dict[str,float]",
                   "dict[str,str]", "dict[str,bool]")


def _first_error(err: ValidationError) -> dict[str, Any]:
    """The error to report: the first, but for a union (a schedule: one number or a
    year table) the error of the branch the input took, not 'not a number'."""
    errors = err.errors()
    first = errors[0]
    branch = next((i for i, p in enumerate(first["loc"]) if p in _UNION_BRANCHES), None)
    if branch is not None and first["type"].endswith("_type"):
        field = first["loc"][:branch]
        for other in errors[1:]:
            if other["loc"][:branch] == field and not other["type"].endswith("_type"):
                return other
    return first


def _error_path(
    first: dict[str, Any], is_key: Callable[[str], bool] | None = None
) -> tuple[tuple[Any, ...], str | None, str, Any]:
    """Where an error is: its location, the key a check across keys blames, its
    message and the value it got.

    A check across keys names the key it blames, relative to the location, as "key:
    message" (and no value is shown).
    """
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and (
        p.startswith("function-") or p in _UNION_BRANCHES)))
    message = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    blamed, sep, rest = message.partition(": ")
    names_key = all(part.isidentifier() for part in blamed.split(".")) or (
        is_key is not None and is_key(blamed))
    if first["type"] not in ("extra_forbidden", "missing") and sep and names_key and (
            blamed not in loc):
        return loc, blamed, rest, None
    return loc, None, message, got


def _allowed_hint(part: Any, allowed: list[str] | None) -> str:
    """'; allowed keys here: ...', or the nearest ones when the list is long."""
    if not allowed:
        return ""
    listing = ", ".join(allowed)
    if len(listing) <= _ALLOWED_LIST_LIMIT:
        return f"; allowed keys here: {listing}"
    near = difflib.get_close_matches(str(part), allowed, n=3)
    guess = f"did you mean {' or '.join(near)}? " if near else ""
    return f"; {guess}({len(allowed)} keys allowed here, e.g. {', '.join(allowed[:4])})"


def format_validation_error(
    source: str,
    err: ValidationError,
    allowed_keys: Callable[[tuple[Any, ...]], list[str] | None],
    quote: Callable[[Any], str] = str,
    is_key: Callable[[str], bool] | None = None,
) -> str:
    """One line for the first error of a validation: the file, the key, what is allowed.

    Shared by scenario and experiment files.

    Args:
        source: File or name for the message.
        err: The pydantic error.
        allowed_keys: The keys allowed in the table at a location (for unknown keys).
        quote: How a key part is written in the dotted key.
        is_key: Whether the prefix of a cross-key message ("key: message") names a key;
            by default a dotted run of identifiers.
    """
    first = _first_error(err)
    loc, blamed, message, got = _error_path(first, is_key)
    key = _dotted(tuple(map(quote, loc)) + ((blamed,) if blamed else ()))
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{key}'{_allowed_hint(loc[-1], allowed_keys(loc[:-1]))}"
    if kind == "missing":
        return f"{source}: key '{key}' is required"
    got_text = "" if isinstance(got, dict) or got is None else f" (got {shown(got)})"
    return f"{source}: key '{key}': {message}{got_text}"


def _blamed_override(err: ValidationError, overrides: Mapping[str, Any]) -> str | None:
    """The override (the last one) whose key path meets the error's, if any."""
    loc, blamed, _, _ = _error_path(_first_error(err))
    path = [*map(str, loc), *(blamed.split(".") if blamed else [])]
    if not path:
        return None
    blamed = None
    for dotted in overrides:
        parts = dotted.replace("__", ".").split(".")
        if all(o in ("*", p) for o, p in zip(parts, path, strict=False)):
            blamed = dotted
    return blamed


def _with_sectors(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """The raw table with its sectors merged over the sector library."""
    if not isinstance(raw.get("sectors", {}), dict):
        raise ScenarioError(f"{source}: key 'sectors' must be a table of sector tables")
    table = dict(raw)
    sectors: dict[str, Any] = {}
    for name, library in SECTOR_LIBRARY.items():
        sectors[name] = copy.deepcopy(library)
    for name, override in raw.get("sectors", {}).items():
        if not isinstance(override, dict):
            raise ScenarioError(f"{source}: key 'sectors.{shown(name, quote=False)}' must be a "
                                "table")
        sectors[name] = _deep_merge(sectors.get(name, {}), override)
    table["sectors"] = sectors
    return table


def build_scenario(
    raw: dict[str, Any], source: str = "scenario", overrides: dict[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Scenario:
    """Validate a raw scenario table (sectors merged over the library) into a Scenario.

    Args:
        raw: The table as read from TOML.
        source: File or name used in error messages.
        overrides: Dotted-key overrides applied after the merge.
        labels: How messages name each override (e.g. ``--set penalty.multiple=abc``).
            Given, an error an override causes names the override, not ``source``.

    Raises:
        ScenarioError: One message naming the source (or override), the key and what is
            allowed.
    """
    check_raw_table(raw, source)
    for dotted, value in (overrides or {}).items():
        check_raw_table(value, _override_name(dotted, labels), tuple(dotted.split(".")))
    table = _with_sectors(raw, source)
    if overrides:
        table = apply_overrides(table, overrides, labels)
    try:
        return Scenario.model_validate(table)
    except ValidationError as err:
        named = source
        if overrides and labels:
            blamed = _blamed_override(err, overrides)
            if blamed is not None:
                named = _override_name(blamed, labels)
            else:  # the file's own error, unless it is valid without the overrides
                build_scenario(raw, source)
                named = ", ".join(_override_name(dotted, labels) for dotted in overrides)
        raise ScenarioError(format_validation_error(named, err, _allowed_keys)) from None


def load_scenario(
    scenario: str | Path | Scenario = "china-2024", overrides: dict[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Scenario:
    """Load a shipped scenario by name, or a TOML file by path, with optional overrides.

    Args:
        scenario: A shipped name (see ``etsim scenarios``), a path, or a Scenario.
        overrides: Dotted-key overrides, e.g. ``{"penalty.multiple": 7}``.
        labels: How messages name each override (``etsim run`` gives its ``--set``
            arguments); by default an error names the scenario.

    Raises:
        ScenarioError: The file is missing, not TOML, or breaks the schema.
    """
    if isinstance(scenario, Scenario):
        if not overrides:
            return scenario
        return build_scenario(scenario.model_dump(mode="json"), shown_name(scenario.name),
                              overrides, labels)
    raw, source = _read_toml(scenario)
    return build_scenario(raw, source, overrides, labels)
