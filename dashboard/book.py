"""Replay of a recorded trading day's order book from the ``book_events`` table.

``book_events`` holds, for each recorded day and session, every order, cancel and trade
in the order they happened (``seq``). A trade row names its buyer and seller but not the
orders, so the replay follows the exchange's rules (``model.exchange``): the last order
to arrive is the aggressor; it trades against the resting order of its counterparty at
the trade price, earliest first (price-time priority); a limit order's remainder rests,
a market order's remainder is dropped. Replaying the first k events rebuilds the ladder
(resting quantity per price level) as it stood after event k.

With good-till-cancelled orders (``market.order_expiry = "gtc"``) a listed session
starts with the orders carried from the day before: ``carry`` rows rest at once, without
matching, and ``expire`` rows (carried orders that expire at the open) are taken out
like cancels.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

LADDER_COLUMNS = ["price", "quantity", "orders"]
TAPE_COLUMNS = ["step", "buyer_id", "seller_id", "price", "quantity"]


@dataclass
class BookState:
    """The book after ``step`` events of a session.

    Attributes:
        step: Events applied (0 = the empty book before the first order).
        n_events: Events in the session.
        bids: Resting buy quantity per price level, best (highest) first.
        asks: Resting sell quantity per price level, best (lowest) first.
        tape: Trades so far, in execution order (step, buyer_id, seller_id, price,
            quantity).
        incoming: The order being matched (order_id, trader_id, side, price, quantity,
            remaining) while its trades are still coming, else None.
        last_event: The event applied last, as a dict, or None at step 0.
        limit_down: The session's lowest admissible price.
        limit_up: The session's highest admissible price.
    """

    step: int
    n_events: int
    bids: pd.DataFrame
    asks: pd.DataFrame
    tape: pd.DataFrame
    incoming: dict[str, Any] | None
    last_event: dict[str, Any] | None
    limit_down: float
    limit_up: float
    orders_seen: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def best_bid(self) -> float | None:
        """Highest resting bid, or None."""
        return float(self.bids["price"].iloc[0]) if len(self.bids) else None

    @property
    def best_ask(self) -> float | None:
        """Lowest resting ask, or None."""
        return float(self.asks["price"].iloc[0]) if len(self.asks) else None


def recorded_sessions(book_events: pd.DataFrame) -> pd.DataFrame:
    """The recorded days and sessions with their numbers of events, orders and trades.

    Returns:
        Columns date, session, events, orders, trades, limit_down, limit_up; sorted by
        date, block session first (as on the exchange).
    """
    cols = ["date", "session", "events", "orders", "trades", "limit_down", "limit_up"]
    if book_events is None or book_events.empty:
        return pd.DataFrame(columns=cols)
    ev = book_events.assign(is_order=book_events["event"] == "order",
                            is_trade=book_events["event"] == "trade")
    out = ev.groupby(["date", "session"], as_index=False).agg(
        events=("event", "size"), orders=("is_order", "sum"), trades=("is_trade", "sum"),
        limit_down=("limit_down", "first"), limit_up=("limit_up", "first"),
        first_seq=("seq", "min"))
    return out.sort_values(["date", "first_seq"], ignore_index=True)[cols]


def session_events(book_events: pd.DataFrame, date: Any, session: str) -> pd.DataFrame:
    """One session's events in the order they happened."""
    day = pd.Timestamp(date)
    mask = (pd.to_datetime(book_events["date"]) == day) & (book_events["session"] == session)
    return book_events[mask].sort_values("seq", ignore_index=True)


def _value(row: dict[str, Any], key: str) -> Any:
    value = row.get(key)
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def replay(events: pd.DataFrame, step: int) -> BookState:
    """Rebuild one session's book after its first ``step`` events.

    Args:
        events: One session's rows of ``book_events`` (see :func:`session_events`).
        step: How many events to apply (clipped to 0..len(events)).

    Returns:
        The :class:`BookState` after those events.
    """
    n = len(events)
    step = max(0, min(int(step), n))
    rows = events.to_dict("records")
    limit_down = float(events["limit_down"].iloc[0]) if n else float("nan")
    limit_up = float(events["limit_up"].iloc[0]) if n else float("nan")
    # resting orders: id -> [side, price, remaining, trader]; queues per (side, price)
    resting: dict[int, list[Any]] = {}
    queues: dict[tuple[int, float], list[int]] = defaultdict(list)
    incoming: dict[str, Any] | None = None
    tape: list[tuple[int, int, int, float, int]] = []
    notes: list[str] = []
    orders_seen = 0

    def settle() -> None:
        # the aggressor's sweep is over: a limit order's remainder rests
        nonlocal incoming
        if incoming and incoming["remaining"] > 0 and incoming["price"] is not None:
            oid = incoming["order_id"]
            resting[oid] = [incoming["side"], incoming["price"], incoming["remaining"],
                            incoming["trader_id"]]
            queues[(incoming["side"], incoming["price"])].append(oid)
        incoming = None

    def take(side: int, price: float, trader: int | None, quantity: int) -> None:
        queue = queues.get((side, price), [])
        pick = None
        for oid in queue:
            if oid in resting and (trader is None or resting[oid][3] == trader):
                pick = oid
                break
        if pick is None:
            if trader is not None:  # fall back to the level's earliest order
                take(side, price, None, quantity)
            else:
                notes.append(f"no resting order at {price} for a trade of {quantity} t")
            return
        resting[pick][2] -= quantity
        if resting[pick][2] <= 0:
            del resting[pick]
            queue.remove(pick)

    for index in range(step):
        row = rows[index]
        kind = row["event"]
        if kind == "carry":  # rests at the open, in its old time priority, unmatched
            settle()
            oid, side = int(row["order_id"]), int(row["side"])
            price = round(float(row["price"]), 2)
            resting[oid] = [side, price, int(row["quantity"]), int(row["trader_id"])]
            queues[(side, price)].append(oid)
        elif kind == "order":
            settle()
            orders_seen += 1
            price = _value(row, "price")
            incoming = {"order_id": int(row["order_id"]), "trader_id": int(row["trader_id"]),
                        "side": int(row["side"]), "price": None if price is None else
                        round(float(price), 2), "quantity": int(row["quantity"]),
                        "remaining": int(row["quantity"])}
        elif kind == "trade":
            quantity, price = int(row["quantity"]), round(float(row["price"]), 2)
            buyer, seller = int(row["buyer_id"]), int(row["seller_id"])
            tape.append((index + 1, buyer, seller, price, quantity))
            if incoming is None:
                notes.append(f"trade at step {index + 1} without an incoming order")
                continue
            if incoming["side"] > 0:
                take(-1, price, seller, quantity)
            else:
                take(1, price, buyer, quantity)
            incoming["remaining"] -= quantity
        elif kind in ("cancel", "expire"):
            oid = _value(row, "order_id")
            if oid is not None and int(oid) in resting:
                side, price, _, _ = resting.pop(int(oid))
                queues[(side, price)].remove(int(oid))
            elif incoming is not None and oid is not None and int(oid) == incoming["order_id"]:
                incoming["remaining"] = 0
    # The incoming order is still matching only if its trades (or the self-trade
    # cancels of its sweep) come next; otherwise it has come to rest.
    next_kind = rows[step]["event"] if step < n else None
    if next_kind not in ("trade", "cancel"):
        settle()
    levels: dict[int, dict[float, list[int]]] = {1: {}, -1: {}}
    for side, price, remaining, _ in resting.values():
        level = levels[side].setdefault(price, [0, 0])
        level[0] += remaining
        level[1] += 1

    def ladder(side: int) -> pd.DataFrame:
        items = sorted(levels[side].items(), reverse=side > 0)
        return pd.DataFrame([(p, q, k) for p, (q, k) in items], columns=LADDER_COLUMNS)

    last = None
    if step:
        last = {k: _value(rows[step - 1], k) for k in (
            "event", "order_id", "trader_id", "side", "quantity", "price", "buyer_id",
            "seller_id", "trader_label", "buyer_label", "seller_label")}
    return BookState(step=step, n_events=n, bids=ladder(1), asks=ladder(-1),
                     tape=pd.DataFrame(tape, columns=TAPE_COLUMNS), incoming=incoming,
                     last_event=last, limit_down=limit_down, limit_up=limit_up,
                     orders_seen=orders_seen, notes=notes)


def describe_event(event: dict[str, Any] | None) -> str:
    """One sentence for students on what the last event did (naming who acted when the
    event carries labels: a recorded lesson's ``trader_label``, ``buyer_label`` and
    ``seller_label``)."""
    if not event:
        return "The session opens with an empty book."
    kind = event.get("event")
    if kind == "order":
        side = "buy" if (event.get("side") or 0) > 0 else "sell"
        price = event.get("price")
        how = "at the market (any price inside the limits)" if price is None else \
            f"at {price:.2f} CNY/t or {'less' if side == 'buy' else 'more'}"
        who = event.get("trader_label")
        who = who[0].upper() + who[1:] if who else f"Firm {event.get('trader_id')}"
        return f"{who} sends an order to {side} {int(event.get('quantity') or 0):,} t {how}."
    if kind == "trade":
        buyer = event.get("buyer_label") or f"firm {event.get('buyer_id')}"
        seller = event.get("seller_label") or f"firm {event.get('seller_id')}"
        return (f"Trade: {buyer} buys {int(event.get('quantity') or 0):,} t from {seller} "
                f"at {event.get('price'):.2f} CNY/t, the resting order's price.")
    if kind == "cancel":
        return (f"Order {event.get('order_id')} is cancelled (an order may not trade with "
                f"another order of the same firm, or a carried offer is larger than what "
                f"the firm still holds).")
    if kind == "carry":
        side = "buy" if (event.get("side") or 0) > 0 else "sell"
        return (f"Trader {event.get('trader_id')}'s order to {side} "
                f"{int(event.get('quantity') or 0):,} t at {event.get('price'):.2f} CNY/t "
                f"is carried over from an earlier day (good-till-cancelled) and rests at "
                f"the open.")
    if kind == "expire":
        return (f"Carried order {event.get('order_id')} expires at the open (its price is "
                f"outside today's limits, or it is too old).")
    return str(kind)


def next_order_step(events: pd.DataFrame, step: int) -> int:
    """The step just after the next order arrives and finishes matching."""
    kinds = events["event"].tolist()
    n = len(kinds)
    k = step
    while k < n and kinds[k] != "order":  # finish the current sweep
        k += 1
    if k >= n:
        return n
    k += 1  # the order itself
    while k < n and kinds[k] in ("trade", "cancel"):
        k += 1
    return k


def next_trade_step(events: pd.DataFrame, step: int) -> int:
    """The step just after the order that makes the next trade has finished matching
    (the end of the day if no trade follows): "skip to the next trade"."""
    kinds = events["event"].tolist()
    n = len(kinds)
    k = step
    while k < n and kinds[k] != "trade":
        k += 1
    if k >= n:
        return n
    while k < n and kinds[k] in ("trade", "cancel"):  # the rest of that order's sweep
        k += 1
    return k
