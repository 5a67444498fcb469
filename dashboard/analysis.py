"""Pure table transformations behind the dashboard's charts and tables.

Every function takes results tables (pandas DataFrames; see the README's "Results") and
returns a DataFrame or a dict; none touches a model, a file or the network, except
:func:`observed_prices`, which reads the observed CEA closes shipped with the package.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from etsim.experiments import moments
from etsim.experiments.observed import OBSERVED_ATTRIBUTION, observed_daily
from etsim.model.equilibrium import clearing_price, marginal_abatement_curve

__all__ = ["OBSERVED_ATTRIBUTION"]  # re-exported: the attribution plotted with the closes

LISTED = ("continuous", "block")  # trades between firms on the exchange


def observed_prices() -> pd.DataFrame:
    """Observed daily CEA closes 2021-2025 shipped in ``dashboard/data``
    (``experiments.observed``, the file the calibration reads too).

    Returns:
        Columns date (datetime64) and close (CNY/t).
    """
    return observed_daily()[["date", "close"]]


def observed_overlap(observed: pd.DataFrame, market_daily: pd.DataFrame) -> pd.DataFrame:
    """The observed closes in the calendar years the run covers (empty if none)."""
    if observed.empty or market_daily.empty:
        return observed.iloc[0:0]
    years = set(pd.to_datetime(market_daily["date"]).dt.year)
    return observed[observed["date"].dt.year.isin(years)]


def history_years(market_daily: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    """A run's years beside the observed market: annual mean close and volume, observed
    and simulated, and the simulated one's error.

    The moments are those the calibration fits (``experiments.moments``: the mean of the
    days with a close, the volume divided by the scenario's scale, both from the
    market's opening on 16 July 2021), so this table and ``etsim calibrate`` agree.

    Args:
        market_daily: The run's ``market_daily``.
        scale: The run's scenario ``scale`` (a run at a tenth of the market has a tenth
            of its volume).

    Returns:
        One row per calendar year the run trades in: year, observed_price,
        simulated_price (CNY/t), price_error_pct, observed_volume_mt,
        simulated_volume_mt (Mt), volume_error_pct (100 x (simulated - observed) /
        observed; NaN where either is missing), and projection (no observed price that
        year: the run projects it).
    """
    columns = ["year", "observed_price", "simulated_price", "price_error_pct",
               "observed_volume_mt", "simulated_volume_mt", "volume_error_pct", "projection"]
    if market_daily is None or market_daily.empty:
        return pd.DataFrame(columns=columns)
    simulated = moments.yearly_moments(market_daily, scale)
    targets = moments.observed_targets()
    errors = moments.moment_errors(targets[targets["moment"].isin(["mean_price", "volume"])],
                                   simulated)
    years = sorted(int(y) for y in simulated["year"].unique())
    out = pd.DataFrame({"year": years})
    for moment, name in (("mean_price", "price"), ("volume", "volume")):
        sim = simulated[simulated["moment"] == moment].set_index("year")["value"]
        obs = errors[errors["moment"] == moment].set_index("year")
        suffix = "_mt" if moment == "volume" else ""
        out[f"observed_{name}{suffix}"] = out["year"].map(obs["target"]).astype(float)
        out[f"simulated_{name}{suffix}"] = out["year"].map(sim).astype(float)
        out[f"{name}_error_pct"] = out["year"].map(obs["error"] * 100).astype(float)
    out["projection"] = out["observed_price"].isna()
    return out[columns]


def history_errors(years: pd.DataFrame) -> pd.DataFrame:
    """The error table of :func:`history_years`: the years with an observed price.

    Returns:
        Columns year, observed_price, simulated_price, price_error_pct,
        observed_volume_mt, simulated_volume_mt, volume_error_pct.
    """
    return years[~years["projection"].astype(bool)].drop(columns="projection").reset_index(
        drop=True)


def _compliance_years(market_years: pd.DataFrame) -> pd.DataFrame:
    return market_years[market_years["verified_emissions"].notna()]


def headline(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """The headline figures of a run, for the summary cards and the Compare table.

    Args:
        tables: The run's results tables (market_daily, market_years, firm_years).

    Returns:
        Ordered dict of label -> value. Prices in CNY/t, quantities in Mt, money in
        billion CNY, rates in %.
    """
    daily = tables["market_daily"]
    years = tables["market_years"]
    comp = _compliance_years(years)
    last = comp.iloc[-1] if len(comp) else None
    firm_years = tables.get("firm_years")
    out: dict[str, float] = {
        "Mean price (CNY/t)": float(daily["close"].mean()) if len(daily) else np.nan,
        "Final-year mean price (CNY/t)": float(last["mean_price"]) if last is not None
        else np.nan,
        "Mean equilibrium with banking (CNY/t)": float(comp["equilibrium_price"].mean())
        if len(comp) else np.nan,
        "Volume traded (Mt)": float(daily["volume"].sum()) / 1e6 if len(daily) else 0.0,
        "Verified emissions (Mt)": float(comp["verified_emissions"].sum()) / 1e6,
        "Quota issued (Mt)": float((comp["free_allocation"] + comp["auctioned"]).sum()) / 1e6,
        "Abatement (Mt)": float(comp["abatement"].sum()) / 1e6,
        "Abatement cost (bn CNY)": float(comp["abatement_cost"].sum()) / 1e9,
        "Bank at end (Mt)": float(years["bank_total"].iloc[-1]) / 1e6 if len(years) else 0.0,
        "Compliance rate (%)": float(comp["compliance_rate"].mean() * 100) if len(comp)
        else np.nan,
        "Penalties (m CNY)": float(years["penalties"].sum()) / 1e6 if "penalties" in years
        else np.nan,
    }
    if firm_years is not None:
        out["Firms"] = float(firm_years["firm_id"].nunique())
        if "trades" in tables:  # who pays: what compliance cost all firms per tonne
            pays = who_pays(firm_years, tables["trades"])
            out["Cost per tonne emitted (CNY/t)"] = float(
                pays["total_cost_per_t"].iloc[-1]) if len(pays) else np.nan
    return out


def headline_difference(a: dict[str, float], b: dict[str, float],
                        labels: tuple[str, str] = ("A", "B")) -> pd.DataFrame:
    """The Compare table: each headline figure for two runs, their difference and change.

    Returns:
        Columns figure, A, B (named by ``labels``), difference (B - A), change_pct.
    """
    rows = []
    for key in a:
        va, vb = a.get(key, np.nan), b.get(key, np.nan)
        diff = vb - va
        change = diff / abs(va) * 100 if va and np.isfinite(va) else np.nan
        rows.append({"figure": key, labels[0]: va, labels[1]: vb, "difference": diff,
                     "change_pct": change})
    return pd.DataFrame(rows, columns=["figure", labels[0], labels[1], "difference",
                                       "change_pct"])


def scarcity_table(market_years: pd.DataFrame) -> pd.DataFrame:
    """Quota issued against verified emissions per compliance year, and the bank.

    The scarcity ratio is verified emissions / quota issued: above 1, firms emitted more
    than was issued for the year and must draw on the bank, abate or pay penalties.

    Returns:
        Columns year, quota_issued, verified_emissions, scarcity_ratio, bank_total,
        reserve_holdings (t).
    """
    comp = _compliance_years(market_years)
    issued = comp["free_allocation"] + comp["auctioned"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(issued > 0, comp["verified_emissions"] / issued, np.nan)
    return pd.DataFrame({
        "year": comp["year"].to_numpy(),
        "quota_issued": issued.to_numpy(dtype=float),
        "verified_emissions": comp["verified_emissions"].to_numpy(dtype=float),
        "scarcity_ratio": ratio,
        "bank_total": comp["bank_total"].to_numpy(dtype=float),
        "reserve_holdings": comp["reserve_holdings"].to_numpy(dtype=float),
    })


def sector_balance(firm_years: pd.DataFrame) -> pd.DataFrame:
    """Surplus and deficit of quota by sector and year: quota received (free allocation
    plus quota bought at auction) - verified emissions. Without the auction purchases
    every sector under paid allocation would look short.

    Returns:
        Columns sector, year, surplus (sum over firms in surplus, >= 0), deficit (sum
        over firms short, <= 0), net (t).
    """
    if firm_years.empty:
        return pd.DataFrame(columns=["sector", "year", "surplus", "deficit", "net"])
    received = firm_years["free_allocation"] + firm_years.get("auction_purchased", 0)
    gap = received - firm_years["verified_emissions"]
    frame = pd.DataFrame({"sector": firm_years["sector"].astype(str),
                          "year": firm_years["year"],
                          "surplus": gap.clip(lower=0), "deficit": gap.clip(upper=0),
                          "net": gap})
    return frame.groupby(["sector", "year"], as_index=False).sum()


def _option_positions(abatement_options: pd.DataFrame) -> pd.DataFrame:
    options = abatement_options.copy()
    # rows are stored per firm in the model's order (cheapest first): keep that order
    options["position"] = options.groupby("firm_id").cumcount()
    return options


def abatement_by_technology(firm_years: pd.DataFrame, firms: pd.DataFrame,
                            abatement_options: pd.DataFrame) -> pd.DataFrame:
    """Tonnes abated and their cost by technology and year.

    An option adopted in year a with lead time L works from year a + L; options act one
    after another, so option k abates output x baseline x prod(1 - r_j, earlier j in
    effect) x r_k, as in the model.

    Returns:
        Columns year, option, tonnes, cost (CNY), cost_per_t (tonne-weighted mean).
    """
    columns = ["year", "option", "tonnes", "cost", "cost_per_t"]
    if firm_years.empty or abatement_options.empty:
        return pd.DataFrame(columns=columns)
    options = _option_positions(abatement_options)
    adopted = options[options["adopted_year"].notna()]
    if adopted.empty:
        return pd.DataFrame(columns=columns)
    baseline = firms.set_index("firm_id")["baseline_intensity"]
    rows = []
    for year, fy in firm_years.groupby("year"):
        in_effect = options[options["adopted_year"].notna()
                            & (options["adopted_year"].astype("float")
                               + options["lead_time_years"] <= year)]
        if in_effect.empty:
            continue
        in_effect = in_effect.sort_values(["firm_id", "position"])
        left = 1.0 - in_effect["intensity_reduction"]
        # remaining intensity share before each option: product of earlier cuts
        before = left.groupby(in_effect["firm_id"]).cumprod() / left
        output = fy.set_index("firm_id")["output"]
        base = in_effect["firm_id"].map(output).fillna(0.0) * in_effect["firm_id"].map(baseline)
        tonnes = base * before * in_effect["intensity_reduction"]
        part = pd.DataFrame({"option": in_effect["option"].astype(str), "tonnes": tonnes,
                             "cost": tonnes * in_effect["cost_per_t"]})
        summed = part.groupby("option", as_index=False).sum()
        summed["year"] = year
        rows.append(summed)
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.concat(rows, ignore_index=True)
    out = out[out["tonnes"] > 0]
    out["cost_per_t"] = out["cost"] / out["tonnes"]
    return out[columns].sort_values(["year", "option"], ignore_index=True)


def monthly_volume(market_daily: pd.DataFrame) -> pd.DataFrame:
    """Traded volume per calendar month, listed and block.

    Returns:
        Columns month (first day, datetime64), volume, block_volume, listed_volume (t).
    """
    if market_daily.empty:
        return pd.DataFrame(columns=["month", "volume", "block_volume", "listed_volume"])
    cols = ["volume"] + (["block_volume"] if "block_volume" in market_daily else [])
    months = market_daily.groupby(["year", "month"], as_index=False)[cols].sum()
    if "block_volume" not in months:
        months["block_volume"] = 0
    months["listed_volume"] = months["volume"] - months["block_volume"]
    months["month"] = pd.to_datetime({"year": months["year"], "month": months["month"],
                                      "day": 1})
    return months[["month", "volume", "block_volume", "listed_volume"]]


def quota_curves(firm_years: pd.DataFrame, firms: pd.DataFrame,
                 abatement_options: pd.DataFrame, market_years: pd.DataFrame, year: int,
                 exclude_sectors: Iterable[str] = (), include_indirect: bool = False
                 ) -> dict[str, Any]:
    """The year's supply of and demand for quota, built from firms' abatement costs.

    Demand for quota at a price p is what firms would emit if they took every
    abatement option cheaper than p: unabated emissions minus the abatement the price
    pays for (the marginal abatement cost curve read from the right). Supply is the
    quota available for the year (free, auctioned, released by the reserve pool, plus
    offsets used): fixed, whatever the price. They cross at the equilibrium price, the
    cost of the last option needed. Sectors whose quota equals their verified emissions
    that year (``exclude_sectors``) are left out, as in ``model.equilibrium``.

    Returns:
        ``{"curve": DataFrame(price, quota_demanded, tonnes_abated), "unabated",
        "available", "shortage" (t), "price" (crossing, CNY/t, NaN if the options
        cannot close the gap), "model_price" (market_years.static_equilibrium_price, the
        one-year price),
        "mean_price" (market_years.mean_price)}``.
    """
    fy = firm_years[(firm_years["year"] == year)
                    & ~firm_years["sector"].astype(str).isin(list(exclude_sectors))]
    years = market_years.set_index("year")
    model_price = (float(years.loc[year, "static_equilibrium_price"])
                   if year in years.index else np.nan)
    mean_price = float(years.loc[year, "mean_price"]) if year in years.index else np.nan
    empty = {"curve": pd.DataFrame(columns=["price", "quota_demanded", "tonnes_abated"]),
             "unabated": 0.0, "available": 0.0, "shortage": 0.0, "price": np.nan,
             "model_price": model_price, "mean_price": mean_price}
    if fy.empty:
        return empty
    baseline = firms.set_index("firm_id")["baseline_intensity"]
    output = fy["output"].to_numpy(dtype=float)
    base_int = fy["firm_id"].map(baseline).to_numpy(dtype=float)
    unabated = output * base_int
    if include_indirect:
        unabated = unabated + fy["indirect_emissions"].to_numpy(dtype=float)
    auctioned = float(years.loc[year, "auctioned"]) if year in years.index else 0.0
    released = float(years.loc[year, "reserve_out"]) if year in years.index else 0.0
    available = (float(fy["free_allocation"].sum()) + auctioned + released
                 + float(fy["offsets_used"].sum()))
    options = _option_positions(abatement_options)
    options = options[options["firm_id"].isin(fy["firm_id"])]
    width = int(options["position"].max()) + 1 if len(options) else 1
    row_of = {fid: i for i, fid in enumerate(fy["firm_id"].to_numpy())}
    reduction = np.zeros((len(fy), width))
    cost = np.full((len(fy), width), np.inf)
    valid = np.zeros((len(fy), width), dtype=bool)
    if len(options):
        r = options["firm_id"].map(row_of).to_numpy()
        c = options["position"].to_numpy()
        reduction[r, c] = options["intensity_reduction"].to_numpy(dtype=float)
        cost[r, c] = options["cost_per_t"].to_numpy(dtype=float)
        valid[r, c] = True
    costs, tonnes = marginal_abatement_curve(output, base_int, reduction, cost, valid)
    total = float(unabated.sum())
    shortage = total - available
    price, _ = clearing_price(costs, tonnes, shortage)
    abated = np.cumsum(tonnes)
    curve = pd.DataFrame({
        "price": np.concatenate([[0.0], costs]),
        "quota_demanded": total - np.concatenate([[0.0], abated]),
        "tonnes_abated": np.concatenate([[0.0], abated]),
    })
    return {"curve": curve, "unabated": total, "available": available,
            "shortage": shortage, "price": price, "model_price": model_price,
            "mean_price": mean_price}


def firm_summary(firms: pd.DataFrame, firm_years: pd.DataFrame) -> pd.DataFrame:
    """One row per firm for the Firms table: static attributes and totals over the run.

    Returns:
        Columns firm_id, sector, entry_year, capacity, baseline_intensity,
        last_intensity, emissions_mt, free_allocation_mt, bought_mt, sold_mt,
        abatement_mt, abatement_cost_m, penalty_m, mean_surplus_ratio, bank_end_t.
    """
    cols = ["firm_id", "sector", "entry_year", "capacity", "baseline_intensity",
            "last_intensity", "emissions_mt", "free_allocation_mt", "bought_mt", "sold_mt",
            "abatement_mt", "abatement_cost_m", "penalty_m", "mean_surplus_ratio",
            "bank_end_t"]
    if firms.empty:
        return pd.DataFrame(columns=cols)
    fy = firm_years.sort_values(["firm_id", "year"])
    grouped = fy.groupby("firm_id")
    totals = grouped[["verified_emissions", "free_allocation", "bought", "sold", "abatement",
                      "abatement_cost", "penalty"]].sum()
    last = grouped.last()
    out = firms[["firm_id", "sector", "entry_year", "capacity", "baseline_intensity"]].copy()
    out["sector"] = out["sector"].astype(str)
    idx = out["firm_id"]
    out["last_intensity"] = idx.map(last["intensity"])
    out["emissions_mt"] = idx.map(totals["verified_emissions"]) / 1e6
    out["free_allocation_mt"] = idx.map(totals["free_allocation"]) / 1e6
    out["bought_mt"] = idx.map(totals["bought"]) / 1e6
    out["sold_mt"] = idx.map(totals["sold"]) / 1e6
    out["abatement_mt"] = idx.map(totals["abatement"]) / 1e6
    out["abatement_cost_m"] = idx.map(totals["abatement_cost"]) / 1e6
    out["penalty_m"] = idx.map(totals["penalty"]) / 1e6
    out["mean_surplus_ratio"] = idx.map(grouped["surplus_ratio"].mean())
    out["bank_end_t"] = idx.map(last["bank_end"])
    return out[cols].reset_index(drop=True)


def firm_trades(trades: pd.DataFrame, firm_id: int) -> pd.DataFrame:
    """A firm's trades with its side: +quantity bought, -quantity sold.

    Returns:
        Columns date, side ("buy"/"sell"), counterparty, price, quantity, signed_quantity,
        kind.
    """
    mine = trades[(trades["buyer_id"] == firm_id) | (trades["seller_id"] == firm_id)]
    buy = mine["buyer_id"] == firm_id
    return pd.DataFrame({
        "date": mine["date"],
        "side": np.where(buy, "buy", "sell"),
        "counterparty": np.where(buy, mine["seller_id"], mine["buyer_id"]),
        "price": mine["price"],
        "quantity": mine["quantity"],
        "signed_quantity": np.where(buy, mine["quantity"], -mine["quantity"]),
        "kind": mine["kind"].astype(str),
    }).reset_index(drop=True)


def firm_abatement(abatement_options: pd.DataFrame, firm_id: int) -> pd.DataFrame:
    """A firm's abatement options with when they were adopted and take effect."""
    mine = abatement_options[abatement_options["firm_id"] == firm_id].copy()
    mine["effective_year"] = mine["adopted_year"].astype("Float64") + mine["lead_time_years"]
    return mine.reset_index(drop=True)


def compliance_years(market_years: pd.DataFrame) -> list[int]:
    """The compliance years of a run (those with verified emissions)."""
    return [int(y) for y in _compliance_years(market_years)["year"]]


def year_options(years: Sequence[int]) -> list[dict[str, Any]]:
    """Dropdown options for a list of years."""
    return [{"label": str(y), "value": int(y)} for y in years]


# --- who pays, auctions, reserve, bank ------------------------------------------------------

# One name and one definition for each price, used by every chart, table and tooltip.
PRICE_DEFINITIONS: dict[str, tuple[str, str]] = {
    "close": ("market close",
              "Price of the day's last listed trade on the exchange; a day without a listed "
              "trade has no close."),
    "equilibrium_price": ("equilibrium with banking",
                          "Least-cost price path over all compliance years with banking "
                          "and discounting: what a market with perfect foresight pays."),
    "static_equilibrium_price": ("one-year equilibrium",
                                 "Price at which abatement alone closes this year's gap "
                                 "between quota and emissions, without banking."),
    "fundamental_price": ("fundamental price",
                          "Firms' expectation anchor: the price with banking as firms "
                          "estimate it from what they know on that day."),
}

WHO_PAYS_COLUMNS = ("sector", "verified_emissions", "abatement_cost", "quota_bought",
                    "quota_sold", "net_quota_spend", "auction_payments", "reserve_payments",
                    "penalties", "total_cost")


def price_name(column: str) -> str:
    """The shown name of a price column (``equilibrium_price`` -> "equilibrium with
    banking")."""
    return PRICE_DEFINITIONS[column][0]


def price_definition(column: str) -> str:
    """The one-line definition of a price column, for tooltips and legends."""
    return PRICE_DEFINITIONS[column][1]


def _money_by_firm(trades: pd.DataFrame, kinds: Sequence[str], side: str) -> pd.Series:
    part = trades[trades["kind"].astype(str).isin(list(kinds))]
    value = part["price"].to_numpy(dtype=float) * part["quantity"].to_numpy(dtype=float)
    return pd.Series(value, index=part[f"{side}_id"].to_numpy()).groupby(level=0).sum()


def who_pays(firm_years: pd.DataFrame, trades: pd.DataFrame | None) -> pd.DataFrame:
    """What each sector pays for compliance over the run, in CNY and per tonne emitted.

    Trades between firms count at their trade prices (listed and block): buying is a
    cost, selling a revenue, so ``net_quota_spend`` is negative for a net seller.
    Auction payments are what firms paid the auctioneer; reserve payments what they paid
    the reserve pool for releases, less what the pool paid them for buy-backs.

    Args:
        firm_years: ``firm_years`` (firm_id, sector, verified_emissions, abatement_cost,
            penalty).
        trades: ``trades`` (buyer_id, seller_id, price, quantity, kind); None counts no
            trades.

    Returns:
        One row per sector and a last row ``all sectors``: the columns of
        WHO_PAYS_COLUMNS (CNY; verified_emissions in t), and the same money columns per
        tonne of verified emissions with the suffix ``_per_t`` (CNY/t).
    """
    money = list(WHO_PAYS_COLUMNS[2:])
    if firm_years.empty:
        return pd.DataFrame(columns=list(WHO_PAYS_COLUMNS) + [f"{c}_per_t" for c in money])
    sector_of = firm_years.drop_duplicates("firm_id").set_index("firm_id")["sector"].astype(
        str)
    frame = pd.DataFrame({"sector": sector_of.index.map(sector_of)}, index=sector_of.index)
    if trades is not None and len(trades):
        for column, kinds, side in (("quota_bought", LISTED, "buyer"),
                                    ("quota_sold", LISTED, "seller"),
                                    ("auction_payments", ("auction",), "buyer"),
                                    ("reserve_paid", ("reserve",), "buyer"),
                                    ("reserve_received", ("reserve",), "seller")):
            frame[column] = _money_by_firm(trades, kinds, side).reindex(frame.index).fillna(0.0)
    else:
        for column in ("quota_bought", "quota_sold", "auction_payments", "reserve_paid",
                       "reserve_received"):
            frame[column] = 0.0
    frame["reserve_payments"] = frame.pop("reserve_paid") - frame.pop("reserve_received")
    totals = firm_years.groupby("firm_id")[["verified_emissions", "abatement_cost",
                                            "penalty"]].sum()
    frame = frame.join(totals).rename(columns={"penalty": "penalties"})
    frame["net_quota_spend"] = frame["quota_bought"] - frame["quota_sold"]
    frame["total_cost"] = frame[["abatement_cost", "net_quota_spend", "auction_payments",
                                 "reserve_payments", "penalties"]].sum(axis=1)
    out = frame.groupby("sector", as_index=False)[list(WHO_PAYS_COLUMNS[1:])].sum()
    everything = out[list(WHO_PAYS_COLUMNS[1:])].sum().to_frame().T
    everything.insert(0, "sector", "all sectors")
    out = pd.concat([out, everything], ignore_index=True)
    emitted = out["verified_emissions"].to_numpy(dtype=float)
    for column in money:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{column}_per_t"] = np.where(emitted > 0, out[column] / emitted, np.nan)
    return out


def auction_results(trades: pd.DataFrame | None) -> pd.DataFrame:
    """Auctions by year: tonnes sold, revenue and the clearing price.

    Returns:
        Columns year, auctions (auction days), volume (t), revenue (CNY), clearing_price
        (revenue / volume, CNY/t; each auction clears at one price, so this is the
        volume-weighted mean of the year's clearing prices).
    """
    columns = ["year", "auctions", "volume", "revenue", "clearing_price"]
    if trades is None or trades.empty:
        return pd.DataFrame(columns=columns)
    sold = trades[trades["kind"].astype(str) == "auction"]
    if sold.empty:
        return pd.DataFrame(columns=columns)
    date = pd.to_datetime(sold["date"])
    frame = pd.DataFrame({"year": date.dt.year.to_numpy(), "date": date.to_numpy(),
                          "volume": sold["quantity"].to_numpy(dtype=float),
                          "revenue": (sold["price"] * sold["quantity"]).to_numpy(dtype=float)})
    out = frame.groupby("year").agg(auctions=("date", "nunique"), volume=("volume", "sum"),
                                    revenue=("revenue", "sum")).reset_index()
    out["clearing_price"] = out["revenue"] / out["volume"]
    return out[columns]


def reserve_releases(trades: pd.DataFrame | None) -> pd.DataFrame:
    """The reserve pool's releases (sales to firms) by day.

    Returns:
        Columns date, volume (t), price (volume-weighted, CNY/t).
    """
    columns = ["date", "volume", "price"]
    if trades is None or trades.empty:
        return pd.DataFrame(columns=columns)
    part = trades[(trades["kind"].astype(str) == "reserve") & (trades["seller_id"] == -2)]
    if part.empty:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({"date": pd.to_datetime(part["date"]),
                          "volume": part["quantity"].astype(float),
                          "value": part["price"] * part["quantity"]})
    out = frame.groupby("date", as_index=False).sum()
    out["price"] = out.pop("value") / out["volume"]
    return out[columns]


def bank_table(market_years: pd.DataFrame) -> pd.DataFrame:
    """The bank at each year end, two ways.

    ``holdings`` is the quota in firms' accounts (``bank_total``). It includes quota
    issued for an obligation not yet surrendered: quota under an absolute cap is issued
    in its own year and surrendered the next, quota under an intensity benchmark after
    verification, so holdings jump by about a year's cap when sectors move to caps.
    ``surplus_banked`` is what is left over once every compliance year so far is
    covered: the cumulative quota issued (free, auctioned, released by the reserve pool)
    less the cumulative verified emissions.

    Returns:
        Columns year, holdings, surplus_banked, reserve_holdings (t); surplus_banked is
        NaN in a year without verified emissions.
    """
    years = market_years.sort_values("year")
    comp = years["verified_emissions"].notna()
    issued = (years["free_allocation"] + years["auctioned"]
              + years.get("reserve_out", 0)).astype(float)
    yearly = (issued - years["verified_emissions"].fillna(0.0)).where(comp, 0.0)
    surplus = yearly.cumsum().where(comp)
    return pd.DataFrame({"year": years["year"].to_numpy(),
                         "holdings": years["bank_total"].to_numpy(dtype=float),
                         "surplus_banked": surplus.to_numpy(dtype=float),
                         "reserve_holdings": years.get("reserve_holdings", 0 * issued
                                                       ).to_numpy(dtype=float)})


def curve_axes(curves: Sequence[dict[str, Any]]) -> tuple[tuple[float, float] | None,
                                                            float | None]:
    """Axes that fit every year's supply and demand chart (``quota_curves`` results), so
    the charts of different years can be read against each other.

    Returns:
        ((x low, x high) in Mt, y top in CNY/t), or (None, None) when no year has a curve.
    """
    drawn = [c for c in curves if not c["curve"].empty and c["unabated"]]
    if not drawn:
        return None, None
    tops = [v for c in drawn for v in (c["price"], c["mean_price"], c["model_price"])
            if v is not None and np.isfinite(v)]
    y_max = max([100.0] + [v * 1.6 for v in tops])
    low = min(min(float(c["curve"].loc[c["curve"]["price"] <= y_max, "quota_demanded"].min()),
                  c["available"]) for c in drawn) / 1e6
    high = max(c["unabated"] for c in drawn) / 1e6
    span = max(high - low, high * 0.01)
    return (low - span * 0.15, high + span * 0.1), y_max
