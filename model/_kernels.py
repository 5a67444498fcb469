"""Compiled kernels of the hot path (numba): the order book's matching, the registry's
transfers of a day's trades.

Each kernel does exactly what its pure-Python reference does, in the same order, on
flat int64 arrays (``model.exchange.OrderBook._submit``, ``model.registry.Registry.
transfer``); ``model.matching`` and ``model.registry`` call them, and tests compare
both paths fill by fill.

The order book's two sides are binary min-heaps of one int64 key per resting order:
``price_key << 32 | order id``, where the price key is the price in ticks for asks and
``BID_BASE - ticks`` for bids (the highest bid first). Keys are unique, so the heap
order is the price-time priority of the reference's ``(price_key, seq)`` tuples.
Filled and cancelled orders stay in the heap with ``remaining == 0`` and are popped when
they reach the top (lazy deletion), as in the reference.
"""

from __future__ import annotations

import numpy as np

from etsim.model._numba import njit

SEQ_BITS = 32
SEQ_MASK = (1 << SEQ_BITS) - 1
BID_BASE = (1 << 31) - 1  # highest price in ticks a book can hold, plus one
EPS = 1e-7  # model.exchange._EPS: tolerance in ticks against float noise

# event codes of the compiled book's event rows (code, a, b, c, d, e)
EV_LIMIT = 0  # limit order: seq, trader, side, quantity, price tick
EV_CANCEL = 1  # self-trade prevention cancel: seq
EV_TRADE = 2  # trade: buyer, seller, price tick, quantity
EV_MARKET = 3  # market order: seq, trader, side, quantity, (its sweep limit)

# counters of a compiled book, in its ``counts`` array
N_IDS, N_BIDS, N_ASKS, N_TRADES, VOLUME = 0, 1, 2, 3, 4
# rows of a compiled book's ``store``: per order id its trader and tonnes resting, the
# bid and ask heaps, and per trade its buyer, seller, price tick and tonnes
S_TRADER, S_REMAINING, S_BIDS, S_ASKS, S_BUYER, S_SELLER, S_TICK, S_QTY = range(8)
STORE_ROWS = 8


@njit(cache=True)
def heap_push(heap, n, key):  # pragma: no cover (compiled)
    """Push ``key`` onto the min-heap ``heap[:n]``; returns the new size."""
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= key:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = key
    return n + 1


@njit(cache=True)
def heap_pop(heap, n):  # pragma: no cover (compiled)
    """Remove the top of the min-heap ``heap[:n]``; returns the new size."""
    n -= 1
    if n <= 0:
        return 0
    last = heap[n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= last:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = last
    return n


@njit(cache=True)
def clean_top(heap, n, remaining):  # pragma: no cover (compiled)
    """Pop filled and cancelled orders off the top; returns the new size."""
    while n > 0 and remaining[heap[0] & SEQ_MASK] == 0:
        n = heap_pop(heap, n)
    return n


@njit(cache=True)
def match_batch(traders, sides, quantities, ticks, market, store, counts, events, record,
                ids):  # pragma: no cover (compiled)
    """Match validated orders one after the other, as ``OrderBook._submit`` does.

    Args:
        traders, sides, quantities, ticks, market: The orders (int64; ``ticks`` inside
            the band; a market order's tick is the band's far end; ``market`` bool).
        store: The book's state, one row each (``STORE_ROWS``): per order id its trader
            and tonnes resting (capacity for the batch's ids); the bid and ask heaps
            (capacity for every order of the batch to rest); the trades' buyer, seller,
            tick and tonnes, appended at ``counts[N_TRADES]`` (capacity for the batch's
            worst case).
        counts: ``[n_ids, n_bids, n_asks, n_trades, volume]``, updated.
        events: Event rows written from row 0 when ``record`` (else may be empty).
        record: Whether to write events.
        ids: Output: each order's id.

    Returns:
        The number of event rows written.
    """
    owner, remaining, bids, asks = store[S_TRADER], store[S_REMAINING], store[S_BIDS], store[S_ASKS]
    trade_buyer, trade_seller = store[S_BUYER], store[S_SELLER]
    trade_tick, trade_qty = store[S_TICK], store[S_QTY]
    seq = counts[N_IDS]
    nb = counts[N_BIDS]
    na = counts[N_ASKS]
    nt = counts[N_TRADES]
    volume = counts[VOLUME]
    ne = 0
    for k in range(len(traders)):
        trader = traders[k]
        side = sides[k]
        qty = quantities[k]
        pt = ticks[k]
        is_market = market[k]
        owner[seq] = trader
        remaining[seq] = 0
        ids[k] = seq
        if record:
            events[ne, 0] = EV_MARKET if is_market else EV_LIMIT
            events[ne, 1] = seq
            events[ne, 2] = trader
            events[ne, 3] = side
            events[ne, 4] = qty
            events[ne, 5] = pt
            ne += 1
        # One rule, written out for each side (the reference, OrderBook._submit, has it
        # once): a single loop over "the other side's heap" measured 17% slower on busy
        # days. A buy takes asks priced at or below its limit, a sell bids at or above.
        if side > 0:
            while qty > 0 and na > 0:
                key = asks[0]
                ask_t = key >> SEQ_BITS
                if ask_t > pt:
                    break
                s = key & SEQ_MASK
                r = remaining[s]
                if r == 0:  # lazily deleted
                    na = heap_pop(asks, na)
                    continue
                seller = owner[s]
                if seller == trader:  # self-trade prevention: cancel the resting order
                    remaining[s] = 0
                    na = heap_pop(asks, na)
                    if record:
                        events[ne, 0] = EV_CANCEL
                        events[ne, 1] = s
                        ne += 1
                    continue
                if r > qty:
                    fill = qty
                    remaining[s] = r - qty
                else:
                    fill = r
                    remaining[s] = 0
                    na = heap_pop(asks, na)
                qty -= fill
                volume += fill
                trade_buyer[nt] = trader
                trade_seller[nt] = seller
                trade_tick[nt] = ask_t
                trade_qty[nt] = fill
                nt += 1
                if record:
                    events[ne, 0] = EV_TRADE
                    events[ne, 1] = trader
                    events[ne, 2] = seller
                    events[ne, 3] = ask_t
                    events[ne, 4] = fill
                    ne += 1
            if qty > 0 and not is_market:
                remaining[seq] = qty
                nb = heap_push(bids, nb, ((BID_BASE - pt) << SEQ_BITS) | seq)
        else:
            while qty > 0 and nb > 0:
                key = bids[0]
                bid_t = BID_BASE - (key >> SEQ_BITS)
                if bid_t < pt:
                    break
                s = key & SEQ_MASK
                r = remaining[s]
                if r == 0:
                    nb = heap_pop(bids, nb)
                    continue
                buyer = owner[s]
                if buyer == trader:
                    remaining[s] = 0
                    nb = heap_pop(bids, nb)
                    if record:
                        events[ne, 0] = EV_CANCEL
                        events[ne, 1] = s
                        ne += 1
                    continue
                if r > qty:
                    fill = qty
                    remaining[s] = r - qty
                else:
                    fill = r
                    remaining[s] = 0
                    nb = heap_pop(bids, nb)
                qty -= fill
                volume += fill
                trade_buyer[nt] = buyer
                trade_seller[nt] = trader
                trade_tick[nt] = bid_t
                trade_qty[nt] = fill
                nt += 1
                if record:
                    events[ne, 0] = EV_TRADE
                    events[ne, 1] = buyer
                    events[ne, 2] = trader
                    events[ne, 3] = bid_t
                    events[ne, 4] = fill
                    ne += 1
            if qty > 0 and not is_market:
                remaining[seq] = qty
                na = heap_push(asks, na, (pt << SEQ_BITS) | seq)
        seq += 1
    counts[N_IDS] = seq
    counts[N_BIDS] = nb
    counts[N_ASKS] = na
    counts[N_TRADES] = nt
    counts[VOLUME] = volume
    return ne


@njit(cache=True)
def submit_batch(traders, sides, quantities, prices, tick, lo, hi, store, counts, events,
                 record, ids):  # pragma: no cover (compiled)
    """Check, price and match a batch as ``OrderBook.submit_many`` does (day orders).

    Sides must be +/-1 and quantities >= 1 (else nothing happens); a limit price goes to
    the less aggressive tick (buys down, sells up) and is rejected (id -1) outside the
    band ``lo..hi`` (ticks); NaN is a market order, priced at the band's far end.

    Returns:
        ``(events written, orders rejected)``, or ``(-1, 0)`` for a bad side and
        ``(-2, 0)`` for a bad quantity.
    """
    n = len(traders)
    for k in range(n):
        if sides[k] != 1 and sides[k] != -1:
            return -1, 0
    for k in range(n):
        if quantities[k] < 1:
            return -2, 0
    accepted = np.empty(n, dtype=np.int64)
    ticks = np.empty(n, dtype=np.int64)
    market = np.zeros(n, dtype=np.bool_)
    m = 0
    for k in range(n):
        price = prices[k]
        ids[k] = -1
        if np.isnan(price):
            market[m] = True
            ticks[m] = hi if sides[k] > 0 else lo
        else:
            scaled = price / tick
            if sides[k] > 0:
                t = np.floor(scaled + EPS)
            else:
                t = np.ceil(scaled - EPS)
            if not (t >= lo and t <= hi):  # +/-inf too
                continue
            ticks[m] = np.int64(t)
        accepted[m] = k
        m += 1
    picked = accepted[:m]
    got = np.empty(m, dtype=np.int64)
    written = match_batch(traders[picked], sides[picked], quantities[picked], ticks[:m],
                          market[:m], store, counts, events, record, got)
    for j in range(m):
        ids[picked[j]] = got[j]
    return written, n - m


@njit(cache=True)
def submit_day(traders, sides, quantities, prices, tick, block_min, block_lo, block_hi,
               block_store, block_counts, lo, hi, store, counts
               ):  # pragma: no cover (compiled)
    """A day's orders on its two sessions, as ``TradingSession.trade`` sends them (the
    reference): each order of ``block_min`` t or more goes to the block book first
    (band ``block_lo..block_hi``); what it leaves unfilled (all of it when rejected),
    cut below block size, goes on to the listed book (``lo..hi``) in arrival order with
    the other orders; orders left with less than a tonne go no further. Day orders,
    no events; the books' stores have room for every order.

    Returns:
        ``(code, block orders, block rejected, listed orders, listed rejected)``;
        code 0, or as :func:`submit_batch`, -1 for a bad side and -2 for a bad quantity
        among the orders a session was sent (that session took none of them).
    """
    no_events = np.zeros((0, 6), dtype=np.int64)
    large = np.flatnonzero(quantities >= block_min)
    listed_quantity = quantities.copy()
    block_rejected = 0
    if len(large):
        block_ids = np.empty(len(large), dtype=np.int64)
        code, block_rejected = submit_batch(
            traders[large], sides[large], quantities[large], prices[large], tick, block_lo,
            block_hi, block_store, block_counts, no_events, False, block_ids)
        if code < 0:
            return code, 0, 0, 0, 0
        for j in range(len(large)):
            left = (block_store[S_REMAINING, block_ids[j]] if block_ids[j] >= 0
                    else quantities[large[j]])
            listed_quantity[large[j]] = min(left, block_min - 1)
    send = np.flatnonzero(listed_quantity >= 1)
    listed_ids = np.empty(len(send), dtype=np.int64)
    code, listed_rejected = submit_batch(
        traders[send], sides[send], listed_quantity[send], prices[send], tick, lo, hi,
        store, counts, no_events, False, listed_ids)
    if code < 0:
        return code, len(large), block_rejected, 0, 0
    return 0, len(large), block_rejected, len(send), listed_rejected


@njit(cache=True)
def transfer_many(holdings, sellers, buyers, quantities):  # pragma: no cover (compiled)
    """Deliver trades one after the other, as ``Registry.transfer`` does: each moves
    its tonnes from the seller's oldest vintages first. Accounts may count from the end
    (-1 is the last), as numpy's indices do.

    Returns:
        -1; -2 when an account is out of range (checked before any delivery); or the
        index of the first trade whose seller holds too little (that trade and the ones
        after it are not delivered).
    """
    n_accounts, n_vintages = holdings.shape
    for rows in (sellers, buyers):
        for k in range(len(rows)):
            if rows[k] < -n_accounts or rows[k] >= n_accounts:
                return -2
    for k in range(len(quantities)):
        seller = sellers[k] % n_accounts
        buyer = buyers[k] % n_accounts
        left = quantities[k]
        held = 0
        for col in range(n_vintages):
            held += holdings[seller, col]
        if held < left:
            return k
        for col in range(n_vintages):
            if left == 0:
                break
            have = holdings[seller, col]
            use = have if have < left else left
            if use != 0:
                holdings[seller, col] = have - use
                holdings[buyer, col] += use
                left -= use
    return -1


@njit(cache=True)
def holdings_sums(holdings, rows, first, stop, usable_stop):  # pragma: no cover (compiled)
    """Per row of ``holdings[:rows]``: the sum of its columns ``first..stop - 1`` and of
    its columns ``first..usable_stop - 1`` (``Registry.total``, ``Registry.usable``:
    the columns outside ``first..stop - 1`` hold nothing; exact: integers). Column by
    column: the registry's holdings are column-major, and one to three columns are
    held."""
    middle = min(max(usable_stop, first), stop)
    usable = np.zeros(rows, dtype=holdings.dtype)
    for col in range(first, middle):
        for row in range(rows):
            usable[row] += holdings[row, col]
    total = usable.copy()
    for col in range(middle, stop):
        for row in range(rows):
            total[row] += holdings[row, col]
    return total, usable


@njit(cache=True)
def rows_total(holdings, rows, first, stop):  # pragma: no cover (compiled)
    """The sum of ``holdings[:rows]``, whose columns outside ``first..stop - 1`` hold
    nothing (``Registry.firm_total``; exact: integers), column by column."""
    total = 0
    for col in range(first, stop):
        for row in range(min(rows, holdings.shape[0])):
            total += holdings[row, col]
    return total


@njit(cache=True)
def pay_firms(buyers, sellers, quantities, prices, n_firms, cash, net_sales, bought,
              sold):  # pragma: no cover (compiled)
    """Book a session's trades for the firms among buyers and sellers, in the order of
    the reference's ``np.add.at`` calls (the same float sums): cash paid, then cash
    received, tonnes bought, tonnes sold; then the firm-year ``bought`` and ``sold``."""
    n = len(quantities)
    for k in range(n):
        if buyers[k] < n_firms:
            cash[buyers[k]] += -(prices[k] * quantities[k])
    for k in range(n):
        if sellers[k] < n_firms:
            cash[sellers[k]] += prices[k] * quantities[k]
    for k in range(n):
        if buyers[k] < n_firms:
            net_sales[buyers[k]] += -quantities[k]
    for k in range(n):
        if sellers[k] < n_firms:
            net_sales[sellers[k]] += quantities[k]
    for k in range(n):
        if buyers[k] < n_firms:
            bought[buyers[k]] += quantities[k]
    for k in range(n):
        if sellers[k] < n_firms:
            sold[sellers[k]] += quantities[k]


@njit(cache=True)
def settle_session(holdings, sellers, buyers, quantities, prices, n_firms, cash, net_sales,
                   bought, sold):  # pragma: no cover (compiled)
    """Settle a session's trades in one call: deliver them (:func:`transfer_many`), then,
    when all are delivered, book them for the firms (:func:`pay_firms`).

    Returns:
        As :func:`transfer_many`: -1 when settled, else its failure code (nothing paid).
    """
    failed = transfer_many(holdings, sellers, buyers, quantities)
    if failed == -1:
        pay_firms(buyers, sellers, quantities, prices, n_firms, cash, net_sales, bought, sold)
    return failed


@njit(cache=True)
def trade_prices(store, n_trades, tick):  # pragma: no cover (compiled)
    """The prices of a book's first ``n_trades`` trades (CNY/t), as
    ``CompiledOrderBook.trades`` has numpy compute them: ticks x tick, to the fen
    (times 100, rounded half to even, over 100)."""
    ticks = store[S_TICK]
    prices = np.empty(n_trades)
    for k in range(n_trades):
        prices[k] = np.rint(np.float64(ticks[k]) * tick * 100.0) / 100.0
    return prices


@njit(cache=True)
def _block_sum(values, start, n):  # pragma: no cover (compiled)
    """numpy's pairwise sum of at most 128 values (:func:`pairwise_sum`)."""
    if n < 8:
        total = 0.0
        for i in range(start, start + n):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    i = 8
    whole = n - n % 8
    while i < whole:
        j = start + i
        r0 += values[j]
        r1 += values[j + 1]
        r2 += values[j + 2]
        r3 += values[j + 3]
        r4 += values[j + 4]
        r5 += values[j + 5]
        r6 += values[j + 6]
        r7 += values[j + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += values[start + i]
        i += 1
    return total


@njit(cache=True)
def pairwise_sum(values, start, n):  # pragma: no cover (compiled)
    """The sum of ``values[start:start + n]`` as numpy's ``sum()`` of a contiguous float64
    array adds it, so the result is numpy's to the last bit: pairwise summation, eight
    running sums over blocks of up to 128 values (:func:`_block_sum`), and above that
    the sum of the two halves (the first a multiple of 8 long). numpy recurses; this
    walks the same tree with a stack (a cached numba function must not recurse)."""
    if n <= 128:
        return _block_sum(values, start, n)
    # frames of the walk: a range, and the sum of its first half once that is done
    starts = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    firsts = np.empty(64)
    first_done = np.zeros(64, dtype=np.bool_)
    starts[0], sizes[0], first_done[0] = start, n, False
    depth = 0
    while True:  # at a range not yet begun
        size = sizes[depth]
        if size > 128:  # descend into its first half
            half = size // 2
            half -= half % 8
            starts[depth + 1], sizes[depth + 1] = starts[depth], half
            first_done[depth + 1] = False
            depth += 1
            continue
        total = _block_sum(values, starts[depth], size)  # a range of at most 128
        # a range is done: add it to its parent's first half, or descend into the second
        while depth > 0:
            depth -= 1
            half = sizes[depth] // 2
            half -= half % 8
            if not first_done[depth]:
                first_done[depth] = True
                firsts[depth] = total
                starts[depth + 1], sizes[depth + 1] = starts[depth] + half, sizes[depth] - half
                first_done[depth + 1] = False
                depth += 1
                break
            total = firsts[depth] + total
        else:
            return total


@njit(cache=True)
def trades_value(prices, quantities):  # pragma: no cover (compiled)
    """``(prices * quantities).sum()`` as numpy computes it: each trade's value, then
    numpy's pairwise sum (:func:`pairwise_sum`); the close's numerator."""
    value = np.empty(len(prices))
    for k in range(len(prices)):
        value[k] = prices[k] * np.float64(quantities[k])
    return pairwise_sum(value, 0, len(value))


@njit(cache=True)
def session_day(traders, sides, quantities, prices, tick, block_min, has_block, block_lo,
                block_hi, block_store, block_counts, lo, hi, store, counts, holdings,
                n_firms, cash, net_sales, bought, sold):  # pragma: no cover (compiled)
    """A trading day's sessions and their settlement in one call, in the order of
    ``TradingSession.trade``'s reference steps: the orders on both books
    (:func:`submit_day`; without a block session ``block_*`` are the listed book's and
    ``block_min`` is never reached), the trades' prices, the listed book's best quotes
    cleaned to the top (``best_bid``, ``best_ask``), then the listed session's trades
    settled and, if all were delivered, the block session's (:func:`settle_session`).

    Returns:
        ``(code, block orders, block rejected, listed orders, listed rejected, listed
        failed, block failed, listed prices, block prices, listed value, listed high,
        listed low)``: the first five as :func:`submit_day` (nothing else done when code
        < 0), the failure codes of :func:`settle_session` (-1 when settled or not
        attempted), the trades' prices, the listed trades' value (:func:`trades_value`,
        for the close) and their highest and lowest price (NaN without trades).
    """
    code, n_block, block_rejected, n_listed, listed_rejected = submit_day(
        traders, sides, quantities, prices, tick, block_min, block_lo, block_hi,
        block_store, block_counts, lo, hi, store, counts)
    listed_prices = np.empty(0)
    block_prices = np.empty(0)
    listed_failed = -1
    block_failed = -1
    listed_value = 0.0
    high = low = np.nan
    if code == 0:
        nt = counts[N_TRADES]
        listed_prices = trade_prices(store, nt, tick)
        listed_value = trades_value(listed_prices, store[S_QTY, :nt])
        if nt:
            high = low = listed_prices[0]
            for k in range(1, nt):
                high = max(high, listed_prices[k])
                low = min(low, listed_prices[k])
        counts[N_BIDS] = clean_top(store[S_BIDS], counts[N_BIDS], store[S_REMAINING])
        counts[N_ASKS] = clean_top(store[S_ASKS], counts[N_ASKS], store[S_REMAINING])
        listed_failed = settle_session(holdings, store[S_SELLER, :nt], store[S_BUYER, :nt],
                                       store[S_QTY, :nt], listed_prices, n_firms, cash,
                                       net_sales, bought, sold)
        if has_block:
            bt = block_counts[N_TRADES]
            block_prices = trade_prices(block_store, bt, tick)
            if listed_failed == -1:
                block_failed = settle_session(
                    holdings, block_store[S_SELLER, :bt], block_store[S_BUYER, :bt],
                    block_store[S_QTY, :bt], block_prices, n_firms, cash, net_sales, bought,
                    sold)
    return (code, n_block, block_rejected, n_listed, listed_rejected, listed_failed,
            block_failed, listed_prices, block_prices, listed_value, high, low)


# --- the banking equilibrium's price path (model.equilibrium.banking_equilibrium) -------


@njit(cache=True)
def _count_below(costs, growth, at, inclusive):  # pragma: no cover (compiled)
    """Entries of a year's ascending present values (``costs / growth``, computed where
    the search looks, not stored) below ``at`` (``<=`` if inclusive): numpy's
    searchsorted, side "left" (or "right")."""
    low, high = 0, len(costs)
    while low < high:
        mid = (low + high) // 2
        value = costs[mid] / growth
        if value < at or (inclusive and value == at):
            low = mid + 1
        else:
            high = mid
    return low


@njit(cache=True)
def _supply_upto(costs, growth, supply, start, end, at):  # pragma: no cover (compiled)
    """Tonnes of all steps of years start..end with present value <= ``at``, summed in
    year order (``equilibrium._supply_at``)."""
    total = 0.0
    for year in range(start, end + 1):
        total += supply[year, _count_below(costs, growth[year], at, True)]
    return total


@njit(cache=True)
def _phase_values(costs, growth, supply, start, need):  # pragma: no cover (compiled)
    """Per end year, the least present value among the steps of the phase's years at
    which the steps of start..end close ``need`` (NaN when none does): the least of
    each year's cheapest closing step, as ``equilibrium._phase_values`` finds it; a
    year's steps are searched only below the best value found so far, and above the
    highest value found short of ``need`` (the supply grows with the value, so no step
    at or below it closes the gap: the searches it saves would find the same)."""
    n_ends = len(need)
    present = np.empty(n_ends)
    for e in range(n_ends):
        end, target, best = start + e, need[e], np.inf
        short_of = -np.inf
        # v is found in a year up to end (the supply of start..end steps only at the
        # values of those years' steps); a later year's cheapest closing step is no less
        for year in range(end, start - 1, -1):
            g = growth[year]
            high = _count_below(costs, g, best, False)  # only cheaper steps can improve
            if high == 0 or costs[high - 1] / g <= short_of:
                continue
            total = _supply_upto(costs, growth, supply, start, end, costs[high - 1] / g)
            if not (total >= target):
                if not np.isnan(total):
                    short_of = costs[high - 1] / g
                continue
            low = 0
            high -= 1
            while low < high:
                mid = (low + high) // 2
                value = costs[mid] / g
                if value > short_of:
                    total = _supply_upto(costs, growth, supply, start, end, value)
                    if total >= target:
                        high = mid
                        continue
                    if not np.isnan(total):
                        short_of = value
                low = mid + 1
            best = costs[low] / g
        present[e] = best if np.isfinite(best) else np.nan
    return present


@njit(cache=True)
def _allocate(costs, growth, supply, start, stop, at, need,
              abated):  # pragma: no cover (compiled)
    """Abatement per year of a phase whose steps up to present value ``at`` close
    ``need``: every cheaper step, then the steps at ``at``, earlier years first
    (``equilibrium._allocate`` without the costs)."""
    rest = need
    below = np.empty(stop - start, dtype=np.int64)
    for year in range(start, stop):
        n = _count_below(costs, growth[year], at, False)
        below[year - start] = n
        abated[year] = supply[year, n]
        rest -= abated[year]
    for year in range(start, stop):
        tied = _count_below(costs, growth[year], at, True)
        left = rest if not (0.0 > rest) else 0.0  # Python's max(rest, 0.0)
        room = supply[year, tied] - supply[year, below[year - start]]
        take = room if room < left else left  # Python's min(left, room)
        if take > 0:
            abated[year] += take
            rest -= take


@njit(cache=True)
def _dearest(costs):  # pragma: no cover (compiled)
    """Whether every step cost is finite, and the dearest finite one (-inf if none)."""
    finite = True
    dearest_cost = -np.inf
    for n in range(len(costs)):
        if np.isfinite(costs[n]):
            if costs[n] > dearest_cost:
                dearest_cost = costs[n]
        else:
            finite = False
    return finite, dearest_cost


@njit(cache=True)
def banking_prices(gap, costs, tonnes, growth, bank, banking):  # pragma: no cover (compiled)
    """The price path of ``equilibrium.banking_equilibrium`` for one ascending curve of
    step costs (``costs``) and each year's tonnes of its steps (years x steps), with
    the same floating-point operations in the same order, so the same prices. The run
    calls :func:`horizon_prices`, which builds the same running tonnes from the options;
    this form, with any tonnes, is the one the tests compare with the reference (not
    loaded by :func:`warm_up`).

    Args:
        gap: Unabated emissions minus quota available, per year (t).
        costs: Cost of each step (CNY/t), ascending.
        tonnes: Tonnes each step abates in each year (years x steps).
        growth: (1 + rate) ** year of the horizon.
        bank: Quota held before the first year (t).
        banking: Whether quota is carried from one year to the next.
    """
    n_years, n_steps = tonnes.shape
    finite, dearest_cost = _dearest(costs)
    supply = np.empty((n_years, n_steps + 1))
    for t in range(n_years):
        supply[t, 0] = 0.0
        total = 0.0
        for n in range(n_steps):
            amount = tonnes[t, n] if finite or np.isfinite(costs[n]) else 0.0
            total = amount if n == 0 else total + amount
            supply[t, n + 1] = total
    return _price_path(gap, costs, supply, growth, bank, banking, dearest_cost)


@njit(cache=True)
def horizon_prices(per_year, firm, weight, effective, horizon, at, offsets, in_time, gap,
                   costs, growth, bank, banking):  # pragma: no cover (compiled)
    """``banking_prices`` of the horizon's steps without their (years x steps) matrix of
    tonnes: each year's running total built step by step from the options, as
    ``equilibrium.horizon_path`` builds the tonnes with numpy. A step's tonnes in a
    year are its option's tonnes a year times its firm's output then (``weight``,
    firms x years), times 0 before the year it can take effect when ``in_time``; the
    offsets' step (``offsets``, per year) is step ``at``; ``costs`` are the steps'
    costs, the offsets' included."""
    n_years, n_steps = len(horizon), len(costs)
    finite, dearest_cost = _dearest(costs)
    supply = np.empty((n_years, n_steps + 1))
    running = np.zeros(n_years)
    for t in range(n_years):
        supply[t, 0] = 0.0
    # step by step, each year's total running on: an option's row of weights is read
    # once (the options come in cost order, so year by year would jump across the firms)
    for step in range(n_steps):
        counted = finite or np.isfinite(costs[step])
        n = step if step < at else step - 1  # the option of this step
        for t in range(n_years):
            if step == at:
                amount = offsets[t]
            else:
                amount = per_year[n] * weight[firm[n], t]
                if in_time:
                    amount = amount * (1.0 if effective[n] <= horizon[t] else 0.0)
            if not counted:
                amount = 0.0
            running[t] = amount if step == 0 else running[t] + amount
            supply[t, step + 1] = running[t]
    return _price_path(gap, costs, supply, growth, bank, banking, dearest_cost)


@njit(cache=True)
def _price_path(gap, costs, supply, growth, bank, banking, dearest_cost
                ):  # pragma: no cover (compiled)
    """The price path of :func:`banking_prices` from each year's cumulative tonnes of the
    steps (years x steps + 1, from 0). A step's present value in year t, costs[n] /
    growth[t], is computed where the searches need it (a few per year) rather than for
    every step and year."""
    n_years = len(supply)
    dearest = np.empty(n_years)
    for t in range(n_years):
        dearest[t] = dearest_cost / growth[t]
    price = np.zeros(n_years)
    abated = np.zeros(n_years)
    banked = np.zeros(n_years)
    start, held = 0, bank
    while start < n_years:
        last = n_years if banking else start + 1
        size = last - start
        need = np.empty(size)
        total = 0.0
        for i in range(size):
            total = gap[start] if i == 0 else total + gap[start + i]
            need[i] = total - held
        present = _phase_values(costs, growth, supply, start, need)
        first = np.empty(size)
        backstop = -np.inf
        pick, highest = 0, 0.0
        for i in range(size):
            d = dearest[start + i]
            if i == 0 or np.isnan(d) or d > backstop:
                backstop = d
            if need[i] <= 0:
                f = 0.0
            elif np.isnan(present[i]):
                f = backstop
            else:
                f = present[i]
            f = f * growth[start] if np.isfinite(f) else np.nan
            first[i] = f
            key = np.inf if np.isnan(f) else f
            if i == 0 or key > highest:  # the bank constraint binds at the highest
                pick, highest = i, key
        end = start + pick
        gap_left = need[pick]
        for t in range(start, end + 1):
            price[t] = first[pick] * growth[t] / growth[start]
        if gap_left <= 0:
            pass
        elif np.isnan(present[pick]):
            _allocate(costs, growth, supply, start, end + 1, np.inf, np.inf, abated)
        else:
            _allocate(costs, growth, supply, start, end + 1, present[pick], gap_left, abated)
        total = 0.0
        for t in range(start, end + 1):
            step = abated[t] - gap[t]
            total = step if t == start else total + step
            held_t = held + total
            banked[t] = held_t if (held_t >= 0.0 or np.isnan(held_t)) else 0.0
        if gap_left > 0 and not np.isnan(present[pick]):
            banked[end] = 0.0
        held = banked[end]
        if not banking:
            for t in range(start, end + 1):
                banked[t] = 0.0
            held = 0.0
        start = end + 1
    return price


def warm_up() -> None:
    """Compile (or load from the cache) every kernel a run calls, on tiny inputs (the
    ones only other kernels call, such as ``submit_day``, are compiled inside them)."""
    z = np.zeros(4, dtype=np.int64)
    one = np.ones(1, dtype=np.int64)
    match_batch(one, one, one, one, np.zeros(1, dtype=np.bool_),
                np.zeros((STORE_ROWS, 4), dtype=np.int64), np.zeros(5, dtype=np.int64),
                np.zeros((0, 6), dtype=np.int64), False, z.copy())
    submit_batch(one, one, one, np.ones(1), 0.01, 1, 2,
                 np.zeros((STORE_ROWS, 4), dtype=np.int64), np.zeros(5, dtype=np.int64),
                 np.zeros((0, 6), dtype=np.int64), False, z.copy())
    clean_top(z.copy(), 0, z)
    # laid out as Registry.holdings, by vintage column (numba compiles a function per
    # array layout, and a (3, 2) array is column-major only)
    holdings = np.ones((3, 2), dtype=np.int64, order="F")
    transfer_many(holdings, np.zeros(1, dtype=np.int64), one, one)
    holdings_sums(holdings, 2, 0, 2, 1)
    rows_total(holdings, 1, 0, 2)
    column = np.zeros((2, 2), dtype=np.int64)[:, 0]  # a firm-year column of the records
    settle_session(holdings, np.zeros(1, dtype=np.int64), one, one,
                   np.ones(1), 2, np.zeros(2), np.zeros(2, dtype=np.int64), column, column)
    session_day(one, one, one, np.ones(1), 0.01, 1, True, 1, 2,
                np.zeros((STORE_ROWS, 4), dtype=np.int64), np.zeros(5, dtype=np.int64), 1, 2,
                np.zeros((STORE_ROWS, 4), dtype=np.int64), np.zeros(5, dtype=np.int64),
                holdings, 2, np.zeros(2), np.zeros(2, dtype=np.int64),
                column, column)
    steps = np.array([1.0, 2.0])
    horizon_prices(steps[:1], np.zeros(1, dtype=np.int64), np.ones((1, 2)), z[:1], z[:2], 1,
                   np.ones(2), True, np.ones(2), steps, np.ones(2), 0.0, True)
