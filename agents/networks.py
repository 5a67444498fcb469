"""Firms' networks: the trade network (who sold to whom) and the peer network (who
learns from whom about abatement technologies).

Trade network: pure functions of the ``trades`` and ``firms`` results tables
(networkx). Only trades between firms on the exchange count (listed and block
sessions); auctions and reserve-pool sales have the state on one side (ids -1 and -2)
and are left out. The results table ``trade_network`` and the dashboard's Network page
both use them.

Peer network: built when the model is set up (``draw_provinces``, ``peer_network``).
Firms of the same sector and province are linked as a Watts-Strogatz small world; a
firm's perceived capital cost of an option falls with the share of its peers that
adopted it (``Firm.review_abatement``).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    counterparties (``most_connected``, firm ids; ties: smaller id first).

    Computed with numpy on the trade pairs rather than a networkx graph, so that it
    adds little to a national-scale run (millions of trades).
    """
    rows = []
    firm_trades = firm_trades_of_year(trades)
    seller = firm_trades["seller_id"].to_numpy(dtype=np.int64)
    buyer = firm_trades["buyer_id"].to_numpy(dtype=np.int64)
    quantity = firm_trades["quantity"].to_numpy(dtype=np.int64)
    trade_year = (pd.to_datetime(firm_trades["date"]).dt.year.to_numpy()
                  if len(firm_trades) else np.zeros(0, dtype=np.int64))
    base = int(max(seller.max(initial=0), buyer.max(initial=0))) + 1  # pair key s * base + b
    for year in years:
        in_year = trade_year == year
        if not in_year.any():
            rows.append({"year": year, **network_metrics(nx.DiGraph()), "most_connected": ""})
            continue
        # trading pairs (seller, buyer), by seller then buyer, and the tonnes of each
        keys, tonnes = _sums_by(seller[in_year] * base + buyer[in_year], quantity[in_year])
        pair_seller, pair_buyer = keys // base, keys % base
        # per firm id (ids are below base): tonnes sold and bought, as floats (exact:
        # integer sums), over the firms that sold or bought, ascending
        sold, bought = (np.bincount(ids, weights=tonnes, minlength=base)
                        for ids in (pair_seller, pair_buyer))
        n = int(np.count_nonzero((sold > 0) | (bought > 0)))
        sold, bought = sold[sold > 0], bought[bought > 0]
        total = float(sold.sum())
        # counterparties: distinct partners either way round
        low, high = np.minimum(pair_seller, pair_buyer), np.maximum(pair_seller, pair_buyer)
        links = _distinct(low * base + high)
        partners = np.bincount(np.concatenate([links // base, links % base]), minlength=base)
        firm = np.flatnonzero(partners)
        ranked = firm[np.lexsort((firm, -partners[firm]))]
        rows.append({
            "year": year,
            "traders": n,
            "links": len(keys),
            "density": len(keys) / (n * (n - 1)) if n > 1 else 0.0,
            "volume_t": total,
            "hhi_sellers": hhi(sold),
            "hhi_buyers": hhi(bought),
            "top4_seller_share": float(np.sort(sold)[::-1][:4].sum() / total * 100),
            "most_connected": ",".join(str(int(f)) for f in ranked[:top]),
        })
    return pd.DataFrame(rows)


def _first_of_runs(ordered: np.ndarray) -> np.ndarray:
    """Mask of the entries of sorted ``ordered`` that differ from the one before."""
    return np.concatenate([np.ones(min(len(ordered), 1), dtype=bool),
                           ordered[1:] != ordered[:-1]])


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct ``values``, ascending (``np.unique``, which hashes first and is the
    slower of the two on these integer keys)."""
    ordered = np.sort(values)
    return ordered[_first_of_runs(ordered)]


def _sums_by(group: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``group``, ascending, and the sum of ``values`` (integers:
    exact in any order) over each."""
    order = np.argsort(group)  # any order of equal keys: the sums are exact
    ordered = group[order]
    starts = np.flatnonzero(_first_of_runs(ordered))
    return ordered[starts], np.add.reduceat(values[order], starts)


# --- the peer network ----------------------------------------------------------------

NO_PROVINCE = "all"  # the province of a sector's firms when the sector lists none


@dataclass
class PeerNetwork:
    """Undirected peer links between firms, as compressed sparse rows: the peers of the
    firm in row i are ``indices[indptr[i]:indptr[i + 1]]`` (rows, sorted)."""

    indptr: np.ndarray
    indices: np.ndarray

    @property
    def degree(self) -> np.ndarray:
        """Number of peers of each firm."""
        return np.diff(self.indptr)

    def peers(self, row: int) -> np.ndarray:
        """Rows of a firm's peers."""
        return self.indices[self.indptr[row]: self.indptr[row + 1]]

    def share(self, flags: np.ndarray) -> np.ndarray:
        """Per firm, the share of its peers for which ``flags`` holds (0 without peers).

        Args:
            flags: One row per firm, shape (firms,) or (firms, columns).

        Returns:
            The mean of the peers' rows, the same shape as ``flags``.
        """
        values = np.asarray(flags, dtype=float)
        flat = values.reshape(len(values), -1)
        # sums over each firm's slice of indices: differences of a running sum
        running = np.concatenate([np.zeros((1, flat.shape[1])),
                                  np.cumsum(flat[self.indices], axis=0)])
        sums = running[self.indptr[1:]] - running[self.indptr[:-1]]
        mean = sums / np.maximum(self.degree, 1)[:, None]
        return mean.reshape(values.shape)

    def graph(self) -> nx.Graph:
        """The network as a networkx Graph whose nodes are firm rows."""
        graph = nx.Graph()
        graph.add_nodes_from(range(len(self.indptr) - 1))
        rows = np.repeat(np.arange(len(self.indptr) - 1), self.degree)
        graph.add_edges_from(zip(rows.tolist(), self.indices.tolist(), strict=True))
        return graph


def draw_provinces(shares: list[dict[str, float]], sector_of_firm: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Each firm's province, drawn by its sector's shares.

    Args:
        shares: Per sector (indexed like ``sector_of_firm``), the shares of its firms
            in each province; an empty table puts them all in ``NO_PROVINCE``.
        sector_of_firm: Sector index of each firm.
        rng: The model's random generator.

    Returns:
        The province index of each firm and the province names.
    """
    names: list[str] = []
    province = np.zeros(len(sector_of_firm), dtype=np.int64)
    for index, table in enumerate(shares):
        rows = np.flatnonzero(sector_of_firm == index)
        listed = list(table) or [NO_PROVINCE]
        for name in listed:
            if name not in names:
                names.append(name)
        codes = np.array([names.index(name) for name in listed])
        if not len(rows):
            continue
        if table:
            weights = np.array(list(table.values()), dtype=float)
            picks = rng.choice(len(codes), size=len(rows), p=weights / weights.sum())
            province[rows] = codes[picks]
        else:
            province[rows] = codes[0]
    return province, names


def peer_network(group: np.ndarray, degree: int, rewiring: float,
                 rng: np.random.Generator) -> PeerNetwork:
    """A Watts-Strogatz small world within each group of firms (same sector and province).

    In each group the firms, in row order, sit on a ring, each linked to its
    ``degree / 2`` nearest neighbours on either side, and each link is rewired to a
    random firm of the group with probability ``rewiring`` (networkx
    ``watts_strogatz_graph``). A group of ``degree + 1`` firms or fewer is fully
    linked; a firm alone in its group has no peers. No link crosses groups.

    Args:
        group: Group label of each firm (e.g. sector x provinces + province).
        degree: Links per firm, even (0 = no network).
        rewiring: Rewiring probability (0-1).
        rng: The model's random generator: one seed is drawn per group, whatever the
            degree, so that the network's parameters leave other draws alone.
    """
    n = len(group)
    labels = np.unique(group)
    seeds = rng.integers(0, 2**32, size=len(labels))
    ends: list[np.ndarray] = []
    for label, seed in zip(labels.tolist(), seeds.tolist(), strict=True):
        members = np.flatnonzero(group == label)
        size = len(members)
        if size < 2 or degree <= 0:
            continue
        if degree >= size - 1:
            graph = nx.complete_graph(size)
        else:
            graph = nx.watts_strogatz_graph(size, degree, rewiring, seed=seed)
        edges = np.array(list(graph.edges), dtype=np.int64).reshape(-1, 2)
        ends.append(members[edges])
    edges = np.concatenate(ends) if ends else np.zeros((0, 2), dtype=np.int64)
    source = np.concatenate([edges[:, 0], edges[:, 1]])
    target = np.concatenate([edges[:, 1], edges[:, 0]])
    order = np.lexsort((target, source))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(source, minlength=n))])
    return PeerNetwork(indptr.astype(np.int64), target[order].astype(np.int64))
