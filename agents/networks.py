"""The trade network: who sold to whom, how concentrated the market is, who is central.

Pure functions of the ``trades`` and ``firms`` results tables (networkx). Only trades
between firms on the exchange count (listed and block sessions); auctions and
reserve-pool sales have the state on one side (ids -1 and -2) and are left out. The
results table ``trade_network`` and the dashboard's Network page both use them.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

LISTED = ("continuous", "block")  # trades between firms on the exchange

CENTRAL_COLUMNS = ["firm_id", "sector", "counterparties", "bought_t", "sold_t", "volume_t",
                   "degree_centrality", "betweenness"]


def firm_trades_of_year(trades: pd.DataFrame, year: int | None = None) -> pd.DataFrame:
    """Trades between two firms on the exchange, in one calendar year (None: all)."""
    if trades.empty:
        return trades
    mask = trades["kind"].astype(str).isin(LISTED) & (trades["buyer_id"] >= 0) & (
        trades["seller_id"] >= 0)
    if year is not None:
        mask &= pd.to_datetime(trades["date"]).dt.year == year
    return trades[mask]


def trade_graph(trades: pd.DataFrame, year: int | None = None) -> nx.DiGraph:
    """The directed trade network: an edge from seller to buyer per trading pair.

    Args:
        trades: The ``trades`` table.
        year: Calendar year of the trades (None: all years).

    Returns:
        A DiGraph whose edges carry ``quantity`` (t) and ``trades`` (count); nodes are
        firm ids.
    """
    graph = nx.DiGraph()
    data = firm_trades_of_year(trades, year)
    if data.empty:
        return graph
    pairs = data.groupby(["seller_id", "buyer_id"], as_index=False).agg(
        quantity=("quantity", "sum"), trades=("quantity", "size"))
    graph.add_edges_from(
        (int(s), int(b), {"quantity": int(q), "trades": int(n)})
        for s, b, q, n in pairs.itertuples(index=False, name=None))
    return graph


def hhi(volumes: pd.Series | np.ndarray) -> float:
    """Herfindahl-Hirschman index of market shares in percent (0-10,000).

    Above 2,500 counts as highly concentrated, below 1,500 as unconcentrated (the
    US merger guidelines' bands).
    """
    values = np.asarray(volumes, dtype=float)
    total = values.sum()
    if total <= 0:
        return float("nan")
    shares = values / total * 100
    return float((shares**2).sum())


def network_metrics(graph: nx.DiGraph) -> dict[str, float]:
    """Size, density and concentration of a trade network.

    Returns:
        traders, links (trading pairs), density, volume_t, hhi_sellers, hhi_buyers
        (on sellers' and buyers' volumes), top4_seller_share (%).
    """
    if graph.number_of_nodes() == 0:
        return {"traders": 0, "links": 0, "density": float("nan"), "volume_t": 0.0,
                "hhi_sellers": float("nan"), "hhi_buyers": float("nan"),
                "top4_seller_share": float("nan")}
    sold = pd.Series(dict(graph.out_degree(weight="quantity")), dtype=float)
    bought = pd.Series(dict(graph.in_degree(weight="quantity")), dtype=float)
    total = float(sold.sum())
    top4 = float(sold.sort_values(ascending=False).head(4).sum() / total * 100) if total \
        else float("nan")
    return {
        "traders": graph.number_of_nodes(),
        "links": graph.number_of_edges(),
        "density": nx.density(graph),
        "volume_t": total,
        "hhi_sellers": hhi(sold[sold > 0]),
        "hhi_buyers": hhi(bought[bought > 0]),
        "top4_seller_share": top4,
    }


def central_traders(graph: nx.DiGraph, firms: pd.DataFrame, top: int = 10,
                    sample: int = 50, seed: int = 1) -> pd.DataFrame:
    """The most central traders: most counterparties, with volume and betweenness.

    Betweenness (how often a trader lies on the shortest path between two others: a
    broker) is computed on the undirected network, from ``sample`` random sources when
    the network is larger than that, so it stays fast for a thousand traders.

    Returns:
        ``top`` rows of CENTRAL_COLUMNS, most counterparties first.
    """
    if graph.number_of_nodes() == 0:
        return pd.DataFrame(columns=CENTRAL_COLUMNS)
    undirected = graph.to_undirected()  # a copy: much faster to walk than a view
    n = undirected.number_of_nodes()
    k = None if n <= sample else sample
    between = nx.betweenness_centrality(undirected, k=k, seed=seed, normalized=True)
    degree = nx.degree_centrality(undirected)
    sector = firms.set_index("firm_id")["sector"].astype(str) if len(firms) else pd.Series(
        dtype=str)
    bought = dict(graph.in_degree(weight="quantity"))
    sold = dict(graph.out_degree(weight="quantity"))
    frame = pd.DataFrame({"firm_id": list(undirected.nodes)})
    frame["sector"] = frame["firm_id"].map(sector).fillna("")
    frame["counterparties"] = frame["firm_id"].map(dict(undirected.degree))
    frame["bought_t"] = frame["firm_id"].map(bought).astype(float)
    frame["sold_t"] = frame["firm_id"].map(sold).astype(float)
    frame["volume_t"] = frame["bought_t"] + frame["sold_t"]
    frame["degree_centrality"] = frame["firm_id"].map(degree)
    frame["betweenness"] = frame["firm_id"].map(between)
    frame = frame.sort_values(["counterparties", "volume_t"], ascending=False)
    return frame.head(top).reset_index(drop=True)[CENTRAL_COLUMNS]


def yearly_networks(trades: pd.DataFrame, years: list[int], top: int = 5) -> pd.DataFrame:
    """One row per calendar year: the network's size, density and concentration (as
    :func:`network_metrics` gives them), and the ``top`` traders with the most
    counterparties (``most_connected``, firm ids).

    Computed with pandas on the trade pairs rather than a networkx graph, so that it
    adds little to a national-scale run.
    """
    rows = []
    firm_trades = firm_trades_of_year(trades)
    trade_years = pd.to_datetime(firm_trades["date"]).dt.year if len(firm_trades) else None
    for year in years:
        data = firm_trades[trade_years == year] if trade_years is not None else firm_trades
        if data.empty:
            rows.append({"year": year, **network_metrics(nx.DiGraph()), "most_connected": ""})
            continue
        pairs = data.groupby(["seller_id", "buyer_id"])["quantity"].sum().reset_index()
        sold = pairs.groupby("seller_id")["quantity"].sum().astype(float)
        bought = pairs.groupby("buyer_id")["quantity"].sum().astype(float)
        n = len(np.union1d(pairs["seller_id"].to_numpy(), pairs["buyer_id"].to_numpy()))
        total = float(sold.sum())
        # counterparties: distinct partners either way round
        ends = np.sort(pairs[["seller_id", "buyer_id"]].to_numpy(), axis=1)
        links = pd.DataFrame(ends, columns=["a", "b"]).drop_duplicates()
        partners = pd.concat([links["a"], links["b"]]).value_counts()
        ranked = partners.reset_index()
        ranked.columns = ["firm_id", "partners"]
        ranked = ranked.sort_values(["partners", "firm_id"], ascending=[False, True])
        rows.append({
            "year": year,
            "traders": n,
            "links": len(pairs),
            "density": len(pairs) / (n * (n - 1)) if n > 1 else 0.0,
            "volume_t": total,
            "hhi_sellers": hhi(sold[sold > 0]),
            "hhi_buyers": hhi(bought[bought > 0]),
            "top4_seller_share": float(sold.nlargest(4).sum() / total * 100),
            "most_connected": ",".join(str(int(f)) for f in ranked["firm_id"].head(top)),
        })
    return pd.DataFrame(rows)
