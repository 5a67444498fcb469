"""The lever panel of Explore and Compare: per-sector allocation levers, the reserve pool,
banking, penalty and market levers, with their ranges and units on the page.

A panel is built for an id prefix (``explore``, ``compare-a``). Each sector of the
library has its own block of allocation levers; a sector selector shows one block at a
time so the panel stays short. The levers dict (``dashboard.runs``) is flat: global keys
and ``SECTOR.FIELD`` keys, which are also the keys of the page's URL query string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from etsim import ScenarioError, load_scenario, shipped_scenarios
from etsim.agents.sectors import SECTOR_LIBRARY
from etsim.dashboard import runs

SECTORS = tuple(SECTOR_LIBRARY)
RESERVE_POLICIES = (
    ("none", "none"),
    ("price trigger", "price_trigger"),
    ("bank based (like the EU MSR)", "bank_based"),
)
GLOBAL_KEYS = ("scenario", "sectors", "reserve_policy", "release_price", "absorb_price",
               "set_aside_pct", "initial_reserve_pct", "banking", "banking_limit_t",
               "penalty_multiple", "price_limit_pct", "n_firms", "seed")
CHECKBOX_LEVERS = frozenset({"banking"})  # booleans shown as one-item checklists
NUMBER_LEVERS = frozenset({"release_price", "absorb_price", "set_aside_pct",
                           "initial_reserve_pct", "banking_limit_t", "penalty_multiple",
                           "price_limit_pct", "n_firms", "seed", "cap_year", "cap_mt",
                           "cap_decline_pct", "pre_allocation_pct"})
# Every lever key, in the order of the callbacks' arguments.
LEVER_KEYS: tuple[str, ...] = GLOBAL_KEYS + tuple(
    f"{sector}.{field}" for sector in SECTORS for field in runs.SECTOR_FIELDS)


# Ids the global levers had before the per-sector panel (bench and tests use them).
ID_SUFFIX = {"set_aside_pct": "set-aside", "initial_reserve_pct": "initial-reserve",
             "banking_limit_t": "banking-limit", "penalty_multiple": "penalty",
             "price_limit_pct": "price-limit", "n_firms": "firms"}


def lever_id(prefix: str, key: str) -> str:
    """Component id of a lever on a page (``explore-steel-tightening-pct``,
    ``explore-firms``)."""
    return f"{prefix}-" + ID_SUFFIX.get(key, key.replace(".", "-").replace("_", "-"))


def lever_states(prefix: str) -> list[State]:
    """The States of every lever control of a panel, in LEVER_KEYS order."""
    return [State(lever_id(prefix, key), "value") for key in LEVER_KEYS]


def lever_inputs(prefix: str) -> list[Input]:
    """The Inputs of every lever control of a panel, in LEVER_KEYS order."""
    return [Input(lever_id(prefix, key), "value") for key in LEVER_KEYS]


def lever_outputs(prefix: str) -> list[Output]:
    """The Outputs of every lever control of a panel, in LEVER_KEYS order."""
    return [Output(lever_id(prefix, key), "value") for key in LEVER_KEYS]


def levers_from_values(values: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    """The levers dict from the controls' values (LEVER_KEYS order)."""
    levers = {}
    for key, value in zip(LEVER_KEYS, values, strict=True):
        levers[key] = bool(value) if key in CHECKBOX_LEVERS else value
    return levers


def values_from_levers(levers: dict[str, Any]) -> list[Any]:
    """The controls' values for a levers dict (LEVER_KEYS order)."""
    values = []
    for key in LEVER_KEYS:
        value = levers.get(key)
        if key in CHECKBOX_LEVERS:
            value = ["on"] if value else []
        values.append(value)
    return values


# --- URL ---------------------------------------------------------------------------------


def levers_query(levers: dict[str, Any]) -> str:
    """The URL query string of a levers dict: the scenario, the sectors and every lever
    that differs from the scenario's own value (``?scenario=china-2024&steel.cap_year=2027``).
    """
    try:
        own = runs.scenario_levers(levers.get("scenario") or runs.DEFAULT_SCENARIO,
                                   levers.get("sectors") or [])
    except ScenarioError:
        own = {}
    pairs: list[tuple[str, str]] = [("scenario", str(levers.get("scenario") or "")),
                                    ("sectors", ",".join(levers.get("sectors") or []))]
    chosen = set(levers.get("sectors") or [])
    for key in LEVER_KEYS:
        if key in ("scenario", "sectors") or key not in levers:
            continue
        sector = key.split(".")[0] if "." in key else None
        if sector is not None and sector not in chosen:
            continue
        value, before = levers[key], own.get(key)
        if runs._same(value, before) or (value in (None, "") and before in (None, "")):
            continue
        if isinstance(value, bool):
            value = "on" if value else "off"
        pairs.append((key, "" if value is None else str(value)))
    return "?" + urlencode(pairs)


def levers_from_query(query: dict[str, Any], fallback: dict[str, Any]) -> dict[str, Any]:
    """Levers from a URL's query parameters over ``fallback`` (the page's default).

    A scenario in the URL starts from that scenario's levers; unknown keys are ignored;
    values are kept as written (the lever check gives out-of-range values their message).
    """
    scenario = query.get("scenario")
    levers = dict(fallback)
    if scenario and scenario != fallback.get("scenario"):
        try:
            levers = runs.scenario_levers(scenario)
        except ScenarioError:
            levers = dict(fallback, scenario=scenario)
    if "sectors" in query:
        levers["sectors"] = [s for s in str(query["sectors"]).split(",") if s in SECTORS]
        try:
            levers["n_firms"] = runs.natural_firm_count(load_scenario(levers["scenario"]),
                                                        levers["sectors"])
        except ScenarioError:
            pass
    for key in LEVER_KEYS:
        if key in ("scenario", "sectors") or key not in query:
            continue
        value: Any = query[key]
        if key in CHECKBOX_LEVERS:
            value = str(value).lower() in ("on", "true", "1", "yes")
        elif value == "":
            value = None
        elif key.split(".")[-1] in NUMBER_LEVERS:
            try:
                number = float(value)
                value = int(number) if number == int(number) else number
            except ValueError:
                pass  # kept as text: the lever check names the lever and its range
        levers[key] = value
    return levers


# --- layout ------------------------------------------------------------------------------


def _number(input_id: str, value: Any, placeholder: str = "") -> dcc.Input:
    # No min/max/step: the browser would turn an out-of-range value into None (a negative
    # banking limit read as "unlimited"); the lever check gives the range instead.
    return dcc.Input(id=input_id, type="number", value=value, step="any",
                     placeholder=placeholder, debounce=True, className="et-num")


def _text(input_id: str, value: Any, placeholder: str = "") -> dcc.Input:
    return dcc.Input(id=input_id, type="text", value=value, debounce=True,
                     placeholder=placeholder, className="et-num")


def _field(label: str, control: Any, limits: runs.Range | None = None,
           hint: str = "") -> html.Div:
    shown = [html.Label(label, title=hint), control]
    if limits is not None:
        shown.append(html.Div(limits.text(), className="et-range"))
    return html.Div(shown, className="et-field", title=hint)


def _sector_block(prefix: str, sector: str, values: dict[str, Any], rule: str,
                  shown: bool) -> html.Div:
    def lid(field: str) -> str:
        return lever_id(prefix, f"{sector}.{field}")

    def rng(field: str) -> runs.Range:
        return runs.sector_range(sector, field)

    return html.Div([
        html.Div(["Rule in the scenario: ", html.Span(rule, id=lid("rule"))],
                 className="et-range"),
        _field("Benchmark tightening (% a year)",
               _text(lid("tightening_pct"), values.get(f"{sector}.tightening_pct"),
                     "e.g. 3, or 2026: 2, 2028: 3"),
               runs.Range("", "% a year", 0, 50),
               "Yearly cut of the intensity benchmark; one percentage or years and "
               "percentages (each from that year on)"),
        _field("Absolute cap from year", _number(lid("cap_year"),
                                                 values.get(f"{sector}.cap_year"),
                                                 "no absolute cap"),
               None, "The sector moves to an absolute cap from this year; empty: no cap"),
        html.Div("A year of the scenario, or empty for no absolute cap",
                 className="et-range"),
        _field("Cap in its first year (Mt CO2)", _number(
            lid("cap_mt"), values.get(f"{sector}.cap_mt"), "verified emissions before"),
            None, "At full scale; empty: the sector's verified emissions of the year before"),
        html.Div("Above 0 Mt, at full scale; empty: the year before's verified emissions",
                 className="et-range"),
        _field("Cap decline (% a year)", _number(lid("cap_decline_pct"),
                                                 values.get(f"{sector}.cap_decline_pct")),
               rng("cap_decline_pct")),
        _field("Paid share, sold at auction (%)",
               _text(lid("paid_share"), values.get(f"{sector}.paid_share"),
                     "e.g. 10, or 2028: 20"),
               runs.Range("", "% of quota", 0, 100, high_open=True),
               "One percentage, or years and percentages: 2028: 20 is 20% from 2028 and "
               "0% before"),
        _field("Pre-allocation (% of basis)", _number(
            lid("pre_allocation_pct"), values.get(f"{sector}.pre_allocation_pct")),
            rng("pre_allocation_pct"),
            "Preliminary quota issued before the true-up, as a share of last year's "
            "verified emissions"),
    ], id=f"{prefix}-sector-box-{sector}", className="et-sector-box",
        style={} if shown else {"display": "none"})


def _rules(levers: dict[str, Any]) -> dict[str, str]:
    try:
        sc = load_scenario(levers.get("scenario") or runs.DEFAULT_SCENARIO)
    except ScenarioError:
        return {}
    return {name: runs.rule_text(config.allocation.rule) for name, config in sc.sectors.items()}


def coverage_text(levers: dict[str, Any]) -> str:
    """What the scenario includes and what the run will: sectors and firms."""
    try:
        sc = load_scenario(levers.get("scenario") or runs.DEFAULT_SCENARIO)
        own = sc.simulated_sectors()
        natural = runs.natural_firm_count(sc, own)
    except ScenarioError:
        return ""
    chosen = levers.get("sectors") or []
    text = (f"{sc.name} includes {', '.join(own)} ({natural:,} firms), "
            f"{sc.start_year}-{sc.end_year}.")
    if sorted(chosen) != sorted(own):
        firms = levers.get("n_firms")
        shown = f"{int(firms):,}" if isinstance(firms, int | float) else "?"
        text += f" This run: {', '.join(chosen) or 'no sector'} ({shown} firms)."
    return text


def lever_panel(prefix: str, levers: dict[str, Any] | None = None,
                title: str = "Scenario and levers", from_url: bool = False) -> html.Div:
    """The controls of every lever, with ids ``{prefix}-...``.

    Args:
        prefix: Id prefix (``explore``, ``compare-a``).
        levers: Initial values (None: the default Explore run).
        title: Heading of the panel.
        from_url: The levers come from the page's URL (they win over the session's run
            when the page opens).
    """
    lv = levers or runs.default_levers()
    values = dict(zip(LEVER_KEYS, values_from_levers(lv), strict=True))
    rules = _rules(lv)
    chosen = [s for s in (lv.get("sectors") or []) if s in SECTORS]
    first = chosen[0] if chosen else SECTORS[0]

    def lid(key: str) -> str:
        return lever_id(prefix, key)

    g = runs.GLOBAL_RANGES
    return html.Div([
        dcc.Store(id=f"{prefix}-query"),  # the levers as a URL query string
        dcc.Store(id=f"{prefix}-from-url", data=from_url),
        html.H3(title),
        _field("Scenario", dcc.Dropdown(
            id=lid("scenario"), options=shipped_scenarios(), value=values["scenario"],
            clearable=False), None, "A shipped scenario; the levers below start from its values"),
        html.Div(coverage_text(lv), id=f"{prefix}-includes", className="et-includes"),
        _field("Sectors", dcc.Checklist(id=lid("sectors"),
                                        options=[{"label": s, "value": s} for s in SECTORS],
                                        value=values["sectors"], inline=True,
                                        className="et-checks")),
        html.Details([
            html.Summary("Allocation by sector"),
            html.Div([html.Label("Sector "), dcc.RadioItems(
                id=f"{prefix}-sector-pick", options=[{"label": s, "value": s} for s in chosen],
                value=first, inline=True, className="et-checks")], className="et-field"),
            *[_sector_block(prefix, sector, values, rules.get(sector, ""), sector == first)
              for sector in SECTORS],
        ], open=True),
        html.Details([
            html.Summary("Reserve pool, banking, penalty"),
            _field("Reserve pool", dcc.Dropdown(id=lid("reserve_policy"),
                                                options=[{"label": label, "value": value}
                                                         for label, value in RESERVE_POLICIES],
                                                value=values["reserve_policy"],
                                                clearable=False)),
            _field("Release above (CNY/t)", _number(lid("release_price"),
                                                    values["release_price"]),
                   g["release_price"]),
            _field("Buy back below (CNY/t)", _number(lid("absorb_price"),
                                                     values["absorb_price"]),
                   g["absorb_price"]),
            _field("Set aside each year (%)", _number(lid("set_aside_pct"),
                                                      values["set_aside_pct"]),
                   g["set_aside_pct"]),
            _field("Initial holdings (%)", _number(lid("initial_reserve_pct"),
                                                   values["initial_reserve_pct"]),
                   g["initial_reserve_pct"]),
            _field("Banking", dcc.Checklist(id=lid("banking"),
                                            options=[{"label": " allowed", "value": "on"}],
                                            value=values["banking"])),
            _field("Banking limit (t per firm)", _number(
                lid("banking_limit_t"), values["banking_limit_t"], "unlimited"),
                g["banking_limit_t"]),
            _field("Penalty (x mean price)", _number(lid("penalty_multiple"),
                                                      values["penalty_multiple"]),
                   g["penalty_multiple"]),
        ], open=False),
        html.Details([
            html.Summary("Market and run"),
            _field("Daily price limit (%)", _number(lid("price_limit_pct"),
                                                    values["price_limit_pct"]),
                   g["price_limit_pct"]),
            _field("Number of firms", _number(lid("n_firms"), values["n_firms"]), None,
                   "Scales every chosen sector's firm count (up to 10 times)"),
            _field("Seed", _number(lid("seed"), values["seed"]), g["seed"]),
        ], open=False),
    ], className="et-levers", id=f"{prefix}-levers")


# --- callbacks ---------------------------------------------------------------------------


def check_levers(levers: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The levers' problems before a run: (errors that stop the run, warnings).

    Errors carry the lever's allowed range and unit (``dashboard.runs``); warnings say
    what will not act (a reserve pool with nothing to release).
    """
    try:
        runs.resolve(levers)
    except (runs.LeverError, ScenarioError) as err:
        return [str(err)], runs.lever_warnings(levers)
    return [], runs.lever_warnings(levers)


def check_view(levers: dict[str, Any], name: str = "") -> list[html.Div]:
    """The lever check as the message box's children (``name`` prefixes each line)."""
    errors, warnings = check_levers(levers)
    lead = f"{name}: " if name else ""
    return ([html.Div(lead + e, className="et-message-error") for e in errors]
            + [html.Div(lead + w, className="et-message-warning") for w in warnings])


def sync_levers(triggered: str | None, prefix: str, scenario: str | None,
                sectors: list[str] | None, saved: dict[str, Any] | None) -> list[Any]:
    """New values for a panel's controls after a change.

    Args:
        triggered: Id of the control that changed; None on a restore from the store.
        prefix: The panel's id prefix.
        scenario: The scenario control's value.
        sectors: The sectors control's value.
        saved: Levers of the session's run for this panel, if any.

    Returns:
        One value per LEVER_KEYS entry (``no_update`` where nothing changes): a new
        scenario resets every lever to its values (its own sectors); new sectors reset
        the firm count to the scenario's count for them; a restore sets the saved levers.
    """
    keep = [no_update] * len(LEVER_KEYS)
    if triggered == lever_id(prefix, "scenario"):
        try:
            values = values_from_levers(runs.scenario_levers(scenario or runs.DEFAULT_SCENARIO))
        except ScenarioError:
            return keep
        values[0] = no_update  # the scenario control itself keeps the user's choice
        return values
    if triggered == lever_id(prefix, "sectors"):
        out = list(keep)
        out[LEVER_KEYS.index("n_firms")] = firm_count_for(scenario or runs.DEFAULT_SCENARIO,
                                                          sectors)
        return out
    if saved:
        return values_from_levers(saved)
    return keep


def firm_count_for(name: str, sectors: list[str] | None) -> Any:
    """The scenario's firm count for the chosen sectors (no change if it cannot load)."""
    try:
        return runs.natural_firm_count(load_scenario(name), sectors or [])
    except ScenarioError:
        return no_update


def register_lever_callbacks(prefix: str, store_id: str | None = None,
                             pick: Callable[[Any], dict[str, Any] | None] | None = None,
                             message_id: str | None = None, name: str = "") -> None:
    """Register the callbacks that keep a lever panel consistent and checked.

    Args:
        prefix: The panel's id prefix.
        store_id: A store whose new data (the panel's last run, e.g. from the run
            history) sets the panel's levers; None: no such store.
        pick: Gets the panel's levers out of that store's data.
        message_id: Where the lever check (range errors, warnings) goes.
        name: Prefix of the check's messages ("Scenario A") when a page has two panels.
    """
    inputs = [Input(lever_id(prefix, "scenario"), "value"),
              Input(lever_id(prefix, "sectors"), "value")]
    if store_id:
        inputs.append(Input(store_id, "data"))

    # Also called when the page opens: the session's run's levers come back, unless the
    # levers came from the URL.
    # On the first call the current values are sent back rather than no_update: a
    # callback that sends nothing keeps the lever check (which reads these values) from
    # making its first call, and the page would open without its message and URL.
    @callback(*lever_outputs(prefix), *inputs, State(f"{prefix}-from-url", "data"),
              *lever_states(prefix))
    def on_levers(scenario: str, sectors: list[str], *rest: Any) -> list[Any]:
        data = rest[0] if store_id else None
        rest = rest[1:] if store_id else rest
        from_url, current = rest[0], list(rest[1:])
        trigger = ctx.triggered_id
        if trigger is None or (store_id and trigger == store_id):
            saved = pick(data) if (data and pick and not (trigger is None and from_url)) \
                else None
            if saved:
                return sync_levers(None, prefix, scenario, sectors, saved)
            return current if trigger is None else [no_update] * len(LEVER_KEYS)
        return sync_levers(trigger, prefix, scenario, sectors, None)

    @callback(Output(f"{prefix}-sector-pick", "options"), Output(f"{prefix}-sector-pick",
                                                                 "value"),
              Input(lever_id(prefix, "sectors"), "value"),
              State(f"{prefix}-sector-pick", "value"))
    def on_sectors(sectors: list[str] | None, picked: str | None) -> tuple[Any, Any]:
        chosen = [s for s in SECTORS if s in (sectors or [])]
        value = picked if picked in chosen else (chosen[0] if chosen else None)
        return [{"label": s, "value": s} for s in chosen], value

    @callback(*[Output(f"{prefix}-sector-box-{s}", "style") for s in SECTORS],
              Input(f"{prefix}-sector-pick", "value"))
    def on_pick(picked: str | None) -> list[dict[str, str]]:
        return [{} if s == picked else {"display": "none"} for s in SECTORS]

    @callback(*[Output(lever_id(prefix, f"{s}.rule"), "children") for s in SECTORS],
              Input(lever_id(prefix, "scenario"), "value"))
    def on_rules(scenario: str | None) -> list[str]:
        rules = _rules({"scenario": scenario})
        return [rules.get(s, "") for s in SECTORS]

    if message_id:
        @callback(Output(message_id, "children"), Output(f"{prefix}-includes", "children"),
                  Output(f"{prefix}-query", "data"), *lever_inputs(prefix))
        def on_check(*values: Any) -> tuple[Any, str, str]:
            levers = levers_from_values(values)
            return check_view(levers, name), coverage_text(levers), levers_query(levers)
