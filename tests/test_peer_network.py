"""The peer network (``agents/networks.py``): who a firm learns from, and adoption
spreading through it (``investment.peer_discount``)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from etsim import CarbonMarketModel
from etsim.agents.networks import PeerNetwork, draw_provinces, peer_network

SMALL = {"scale": 0.1}  # china-2024 at a tenth: 364 firms


def _groups(model: CarbonMarketModel) -> np.ndarray:
    return model.firms.sector * len(model.province_names) + model.province


def _edges(peers: PeerNetwork) -> np.ndarray:
    rows = np.repeat(np.arange(len(peers.indptr) - 1), peers.degree)
    return np.column_stack([rows, peers.indices])


@pytest.fixture(scope="module")
def model() -> CarbonMarketModel:
    return CarbonMarketModel("china-2024", seed=1, overrides=SMALL)


# --- structure --------------------------------------------------------------------------


def test_peers_share_sector_and_province_only(model: CarbonMarketModel) -> None:
    edges = _edges(model.peers)
    assert len(edges) > 0
    sector, province = model.firms.sector, model.province
    assert (sector[edges[:, 0]] == sector[edges[:, 1]]).all()
    assert (province[edges[:, 0]] == province[edges[:, 1]]).all()
    assert (edges[:, 0] != edges[:, 1]).all()
    # undirected, without duplicates
    pairs = {tuple(e) for e in edges.tolist()}
    assert len(pairs) == len(edges)
    assert all((b, a) in pairs for a, b in pairs)


def test_provinces_follow_the_sector_shares(model: CarbonMarketModel) -> None:
    steel = model.sector_names.index("steel")
    names = np.array(model.province_names)[model.province[model.firms.sector == steel]]
    assert set(names) <= set(model.scenario.sectors["steel"].provinces)
    # Hebei, a fifth of the steel firms, is the largest named province
    counts = {name: int((names == name).sum()) for name in set(names) - {"other"}}
    assert max(counts, key=counts.get) == "Hebei"


@pytest.mark.parametrize("degree", [2, 4, 6])
def test_degree_is_k_in_groups_large_enough(degree: int) -> None:
    model = CarbonMarketModel("china-2024", seed=2, overrides={
        **SMALL, "investment.peer_degree": degree})
    groups = _groups(model)
    sizes = np.bincount(groups)[groups]
    degrees = model.peers.degree
    # Watts-Strogatz keeps the number of links: the group's mean degree is k exactly
    for label in np.unique(groups[sizes > degree + 1]):
        assert degrees[groups == label].mean() == pytest.approx(degree)
    # a small group is fully linked, a firm alone has no peers
    small = sizes <= degree + 1
    assert (degrees[small] == sizes[small] - 1).all()


def test_the_network_is_deterministic_under_the_seed() -> None:
    one, same, other = (CarbonMarketModel("china-2024", seed=seed, overrides=SMALL).peers
                        for seed in (5, 5, 6))
    assert np.array_equal(one.indptr, same.indptr)
    assert np.array_equal(one.indices, same.indices)
    assert not (np.array_equal(one.indptr, other.indptr)
                and np.array_equal(one.indices, other.indices))


def test_network_parameters_leave_other_draws_alone() -> None:
    ring = CarbonMarketModel("china-2024", seed=3, overrides={
        **SMALL, "investment.peer_degree": 2, "investment.peer_rewiring": 0.0})
    world = CarbonMarketModel("china-2024", seed=3, overrides={
        **SMALL, "investment.peer_degree": 8, "investment.peer_rewiring": 0.5})
    assert np.array_equal(ring.firms.base_output, world.firms.base_output)
    assert np.array_equal(ring.province, world.province)
    assert np.array_equal(ring.firms.discount_rate, world.firms.discount_rate)


def test_without_rewiring_a_group_is_a_ring_lattice() -> None:
    group = np.array([0] * 10 + [1] * 3 + [2])
    peers = peer_network(group, 4, 0.0, np.random.default_rng(0))
    expected = nx.watts_strogatz_graph(10, 4, 0.0)  # nodes 0-9, 2 each side
    assert peers.graph().subgraph(range(10)).edges == expected.edges
    assert sorted(peers.peers(10).tolist()) == [11, 12]  # three firms: fully linked
    assert len(peers.peers(13)) == 0  # alone
    assert peer_network(group, 0, 0.1, np.random.default_rng(0)).degree.sum() == 0


def test_share_of_peers() -> None:
    # 0 - 1 - 2 in a line, 3 alone
    peers = PeerNetwork(np.array([0, 1, 3, 4, 4]), np.array([1, 0, 2, 1]))
    flags = np.array([[1, 0], [0, 0], [1, 1], [1, 1]], dtype=bool)
    assert np.allclose(peers.share(flags), [[0, 0], [1, 0.5], [0, 0], [0, 0]])


def test_a_sector_without_provinces_is_one_group() -> None:
    province, names = draw_provinces([{}, {"a": 0.5, "b": 0.5}], np.array([0, 0, 1, 1, 1]),
                                     np.random.default_rng(0))
    assert names[province[0]] == names[province[1]] == "all"
    assert {names[p] for p in province[2:]} <= {"a", "b"}


# --- adoption spreads -----------------------------------------------------------------------

# steel alone, one option whose capital is most of its cost and differs across firms
SPREAD = {
    "sectors.power.enabled": False, "sectors.cement.enabled": False,
    "sectors.aluminium.enabled": False, "sectors.steel.firms": 200, "scale": 1.0,
    "start_year": 2025, "sectors.steel.allocation.rule": "intensity",
    "investment.capital_budget_share": 5.0, "investment.peer_degree": 6,
    "sectors.steel.abatement": [{
        "name": "retrofit", "intensity_reduction": 0.1, "capital_cost": 1000.0,
        "capital_cost_range": [500.0, 1500.0], "operating_cost": 20.0,
        "lifetime_years": 15, "lead_time_years": 1}],
}


def _adopters_next_to_adopters(seed: int, discount: float) -> tuple[int, int]:
    """Seed a third of the firms as adopters of last year; in January the others review
    at a price where the option does not pay on average. Returns how many of the firms
    with an adopting peer adopt, and how many of those without one."""
    model = CarbonMarketModel("china-2024", seed=seed, overrides={
        **SPREAD, "investment.peer_discount": discount})
    options = model.firms.options
    rng = np.random.default_rng(seed)
    seeded = rng.random(model.n_firms) < 1 / 3
    options.adopted_year[seeded, 0] = 2024
    model.firms.expected_price[:] = 140.0  # below the levelised cost at the mode (165)
    model.firms.expected_growth[:] = 0.0
    model.agents.shuffle_do("review_abatement", 2025)
    adopted = (options.adopted_year[:, 0] == 2025) & ~seeded
    near = model.peers.share(seeded) > 0
    return int((adopted & near).sum()), int((adopted & ~near).sum())


def test_adoption_spreads_through_peers() -> None:
    seeds = (1, 2, 3)
    with_peers = np.mean([_adopters_next_to_adopters(s, 0.5) for s in seeds], axis=0)
    without = np.mean([_adopters_next_to_adopters(s, 0.0) for s in seeds], axis=0)
    # firms next to adopters adopt more when their peers lower the perceived cost ...
    assert with_peers[0] > 1.5 * without[0], (with_peers, without)
    # ... and firms without adopting peers are not affected
    assert with_peers[1] == without[1]


def test_peers_spread_adoption_in_a_run() -> None:
    """Over a run, where the price is the market's, firms adopt earlier with the peer
    effect: more firm-years with the option adopted by the end (mean of three seeds)."""
    def adopted_firm_years(discount: float) -> float:
        totals = []
        for seed in (1, 2, 3):
            model = CarbonMarketModel("china-2024", seed=seed, overrides={
                **SPREAD, "sectors.steel.firms": 100, "end_year": 2029,
                "investment.peer_discount": discount}).run()
            year = model.firms.options.adopted_year[:, 0]
            totals.append(int(np.where(year >= 0, 2030 - year, 0).sum()))
        return float(np.mean(totals))

    assert adopted_firm_years(0.5) > adopted_firm_years(0.0)
