"""Primary-market uniform-price sealed-bid auctions of carbon allowances.

Allowance auctions (as run by Guangdong, Hubei or Shanghai, and planned for the national
market) are single-round, sealed-bid and uniform-price:

* Bids below the reserve price are ignored.
* The remaining bids are ranked by price, highest first, and filled until supply runs out.
* Every winner pays the clearing price, the price of the lowest accepted bid (never below the
  reserve).
* Bids at exactly the marginal price share what is left pro rata to their quantity. Shares are
  integers by the largest-remainder method; equal remainders are broken by input order, so the
  result is deterministic.
* Optionally each bidder's total allocation is capped (``max_per_bidder``): bids are walked in
  price-time order and a bidder's demand beyond the cap is ignored.

:func:`clear_reverse_auction` is the mirror image for a buyer, e.g. a market stability reserve
buying allowances back: offers above a ceiling are ignored, the cheapest are accepted first and
all accepted sellers receive the highest accepted offer price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AuctionResult:
    """Outcome of one sealed-bid auction.

    Attributes:
        price: Uniform clearing price (yuan/t); NaN if nothing was sold.
        filled: Tonnes allocated to each bid (int64), in input order.
        sold: Total tonnes allocated; equals ``filled.sum()``.
        unsold: Supply left over (forward auction) or demand not met (reverse auction).
    """

    price: float
    filled: np.ndarray
    sold: int
    unsold: int


def _as_quantities(values: object, name: str) -> np.ndarray:
    """Validate a quantity array: 1-D, finite, integral, non-negative; returned as int64."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative")
    if np.any(arr != np.floor(arr)):
        raise ValueError(f"{name} must be whole tonnes (integers)")
    return arr.astype(np.int64)


def _as_prices(values: object, name: str, n: int, qty_name: str) -> np.ndarray:
    """Validate a price array of length ``n``: 1-D and finite; returned as float64."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size != n:
        raise ValueError(f"{name} has length {arr.size} but {qty_name} has length {n}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _as_amount(value: object, name: str) -> int:
    """Validate a scalar tonnage (supply or demand): integer >= 0."""
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}") from None
    if not np.isfinite(as_float) or as_float < 0 or as_float != int(as_float):
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(as_float)


def _as_limit(value: object, name: str) -> float:
    """Validate a scalar price limit (reserve or ceiling): finite."""
    try:
        as_float = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if not np.isfinite(as_float):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return as_float


def _clear(
    quantities: np.ndarray,
    prices: np.ndarray,
    valid: np.ndarray,
    capacity: int,
    descending: bool,
    caps: tuple[np.ndarray, int] | None = None,
) -> AuctionResult:
    """Uniform-price clearing shared by the forward and the reverse auction.

    Args:
        quantities: Validated int64 quantities.
        prices: Validated float64 prices.
        valid: Bids/offers that pass the reserve/ceiling.
        capacity: Supply (forward) or demand (reverse) in tonnes.
        descending: True ranks highest price first (forward), False lowest first (reverse).
        caps: Optional ``(bidder ids, max tonnes per bidder)``.
    """
    n = quantities.size
    filled = np.zeros(n, dtype=np.int64)
    # Priority key: better price first; a stable sort keeps input order within a price.
    key = -prices if descending else prices
    order = [int(i) for i in np.argsort(key, kind="stable") if valid[i] and quantities[i] > 0]
    qty = {i: int(quantities[i]) for i in order}

    if caps is not None:
        # Walk in priority order, trimming each bidder's demand beyond the cap.
        bidders, cap = caps
        used: dict[object, int] = {}
        for i in order:
            who = bidders[i].item()
            take = min(qty[i], max(cap - used.get(who, 0), 0))
            qty[i] = take
            used[who] = used.get(who, 0) + take
        order = [i for i in order if qty[i] > 0]

    left = capacity
    marginal: float | None = None  # price of the lowest-ranked accepted bid
    pos = 0
    while pos < len(order) and left > 0:
        level_price = prices[order[pos]]
        end = pos
        while end < len(order) and prices[order[end]] == level_price:
            end += 1
        level = order[pos:end]  # input order within the level (stable sort)
        level_qty = sum(qty[i] for i in level)
        if level_qty <= left:
            for i in level:
                filled[i] = qty[i]
            left -= level_qty
        else:
            # Marginal level: pro rata, integers by largest remainder, ties by input order.
            base = {i: left * qty[i] // level_qty for i in level}
            frac = {i: left * qty[i] % level_qty for i in level}
            extra = left - sum(base.values())
            for i in sorted(level, key=lambda j: (-frac[j], j))[:extra]:
                base[i] += 1
            for i in level:
                filled[i] = base[i]
            left = 0
        marginal = float(level_price)
        pos = end

    sold = int(filled.sum())
    price = marginal if sold > 0 and marginal is not None else float("nan")
    return AuctionResult(price=price, filled=filled, sold=sold, unsold=capacity - sold)


def clear_uniform_price(
    bid_quantities: np.ndarray,
    bid_prices: np.ndarray,
    supply: int,
    reserve_price: float,
    max_per_bidder: int | None = None,
    bidders: np.ndarray | None = None,
) -> AuctionResult:
    """Clear a uniform-price sealed-bid allowance auction.

    Args:
        bid_quantities: Tonnes per bid (integers >= 0).
        bid_prices: Bid prices (yuan/t), same length.
        supply: Allowances on offer (tonnes).
        reserve_price: Bids strictly below it are ignored; the price never falls below it.
        max_per_bidder: Optional cap on the total allocation of one bidder (needs ``bidders``).
        bidders: Bidder id per bid, same length; only used with ``max_per_bidder``.

    Returns:
        :class:`AuctionResult` with the clearing price (lowest accepted bid), per-bid fills in
        input order, tonnes sold and tonnes left unsold.

    Raises:
        ValueError: On negative or non-integer quantities, mismatched lengths, non-finite
            prices, a negative supply, or ``max_per_bidder`` without ``bidders``.
    """
    qty = _as_quantities(bid_quantities, "bid_quantities")
    prices = _as_prices(bid_prices, "bid_prices", qty.size, "bid_quantities")
    supply = _as_amount(supply, "supply")
    reserve = _as_limit(reserve_price, "reserve_price")
    caps = None
    if max_per_bidder is not None:
        cap = _as_amount(max_per_bidder, "max_per_bidder")
        if bidders is None:
            raise ValueError("bidders is required when max_per_bidder is set")
        who = np.asarray(bidders)
        if who.ndim != 1 or who.size != qty.size:
            raise ValueError(
                f"bidders has shape {who.shape} but bid_quantities has length {qty.size}"
            )
        caps = (who, cap)
    elif bidders is not None:
        who = np.asarray(bidders)
        if who.ndim != 1 or who.size != qty.size:
            raise ValueError(
                f"bidders has shape {who.shape} but bid_quantities has length {qty.size}"
            )
    return _clear(qty, prices, prices >= reserve, supply, descending=True, caps=caps)


def clear_reverse_auction(
    offer_quantities: np.ndarray,
    offer_prices: np.ndarray,
    demand: int,
    ceiling_price: float,
) -> AuctionResult:
    """Clear a uniform-price reverse auction (a buyer, e.g. a reserve pool, buying quota back).

    Args:
        offer_quantities: Tonnes per offer (integers >= 0).
        offer_prices: Offer prices (yuan/t), same length.
        demand: Tonnes the buyer wants.
        ceiling_price: Offers strictly above it are ignored; the price never exceeds it.

    Returns:
        :class:`AuctionResult` with the clearing price (highest accepted offer), per-offer fills
        in input order, tonnes bought (``sold``) and demand not met (``unsold``).

    Raises:
        ValueError: On negative or non-integer quantities, mismatched lengths, non-finite
            prices or a negative demand.
    """
    qty = _as_quantities(offer_quantities, "offer_quantities")
    prices = _as_prices(offer_prices, "offer_prices", qty.size, "offer_quantities")
    demand = _as_amount(demand, "demand")
    ceiling = _as_limit(ceiling_price, "ceiling_price")
    return _clear(qty, prices, prices <= ceiling, demand, descending=False)
