"""The trade network for the Network page: the analysis (graph, concentration,
centrality) lives in ``agents.networks``; this module adds the drawing layout."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from etsim.agents.networks import (  # noqa: F401  (the analysis lives with the agents)
    CENTRAL_COLUMNS,
    central_traders,
    firm_trades_of_year,
    hhi,
    network_metrics,
    trade_graph,
)


def layout_frames(graph: nx.DiGraph, firms: pd.DataFrame, max_nodes: int = 150,
                  seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Positions of the busiest traders and their links, for drawing.

    A thousand nodes and tens of thousands of links make an unreadable hairball, so the
    drawing keeps the ``max_nodes`` traders with the largest volume (the metrics use the
    whole network).

    Returns:
        (nodes: firm_id, x, y, sector, volume, counterparties;
        edges: x0, y0, x1, y1, quantity).
    """
    node_cols = ["firm_id", "x", "y", "sector", "volume", "counterparties"]
    edge_cols = ["x0", "y0", "x1", "y1", "quantity"]
    if graph.number_of_nodes() == 0:
        return pd.DataFrame(columns=node_cols), pd.DataFrame(columns=edge_cols)
    volume = pd.Series(dict(graph.degree(weight="quantity")), dtype=float)
    keep = volume.sort_values(ascending=False).head(max_nodes).index
    sub = graph.subgraph(keep).to_undirected()
    # spring layout pulls heavy trading pairs together (weight = log of tonnes)
    for _, _, data in sub.edges(data=True):
        data["w"] = float(np.log1p(data["quantity"]))
    pos: dict[Any, Any] = nx.spring_layout(sub, weight="w", seed=seed, iterations=60)
    sector = firms.set_index("firm_id")["sector"].astype(str) if len(firms) else pd.Series(
        dtype=str)
    partners = dict(graph.to_undirected(as_view=True).degree)
    nodes = pd.DataFrame([{"firm_id": int(node), "x": float(pos[node][0]),
                           "y": float(pos[node][1]), "sector": sector.get(node, ""),
                           "volume": float(volume[node]), "counterparties": int(partners[node])}
                          for node in sub.nodes], columns=node_cols)
    edges = pd.DataFrame([{"x0": pos[a][0], "y0": pos[a][1], "x1": pos[b][0], "y1": pos[b][1],
                           "quantity": float(d["quantity"])}
                          for a, b, d in sub.edges(data=True)], columns=edge_cols)
    return nodes, edges
