"""The trade network table: the same figures as the networkx graph, on hand-built trades."""

from __future__ import annotations

import pandas as pd
import pytest

from etsim.agents.networks import network_metrics, trade_graph, yearly_networks

TRADES = pd.DataFrame({
    "date": pd.to_datetime(["2026-03-02", "2026-03-02", "2026-05-04", "2026-06-01",
                            "2027-01-05", "2026-07-01"]),
    "buyer_id": [1, 1, 2, 3, 1, 4],
    "seller_id": [10, 10, 10, 11, 10, -1],  # the last one is an auction: left out
    "price": [90.0] * 6,
    "quantity": [100, 50, 30, 20, 5, 999],
    "kind": ["continuous", "continuous", "block", "continuous", "continuous", "auction"],
})


def test_yearly_network_by_hand() -> None:
    net = yearly_networks(TRADES, [2026, 2027, 2028]).set_index("year")
    # 2026: pairs 10->1 (150 t), 10->2 (30 t), 11->3 (20 t); traders 1, 2, 3, 10, 11
    assert net.loc[2026, "traders"] == 5 and net.loc[2026, "links"] == 3
    assert net.loc[2026, "density"] == pytest.approx(3 / (5 * 4))
    assert net.loc[2026, "volume_t"] == 200
    # sellers' shares 90% and 10%: HHI = 8,100 + 100
    assert net.loc[2026, "hhi_sellers"] == pytest.approx(8200)
    # buyers' shares 75%, 15%, 10%: 5,625 + 225 + 100
    assert net.loc[2026, "hhi_buyers"] == pytest.approx(5950)
    assert net.loc[2026, "most_connected"].split(",")[0] == "10"  # two counterparties
    assert net.loc[2028, "traders"] == 0 and net.loc[2028, "most_connected"] == ""


def test_yearly_network_matches_the_graph_metrics() -> None:
    row = yearly_networks(TRADES, [2026]).iloc[0]
    graph = network_metrics(trade_graph(TRADES, 2026))
    for key, value in graph.items():
        assert row[key] == pytest.approx(value)
