"""The quota registry: accounts with holdings by vintage, and the ledger that proves
no quota is created or destroyed outside the rules.

Holdings are whole tonnes (int64), so the ledger balances exactly. For every vintage:

    issued free + auctioned + reserve releases
        = holdings + surrendered + cancelled + reserve intake

Holdings are those of every account: firms, and after them any financial accounts.

Quota set aside into the reserve pool is never issued, so it is not on the left until
the pool releases it; quota the pool buys back from firms is reserve intake.
"""

from __future__ import annotations

import numpy as np

from etsim.model import _kernels

LEDGER_FLOWS = (
    "issued_free",
    "auctioned",
    "reserve_out",
    "surrendered",
    "cancelled",
    "reserve_in",
)


class Registry:
    """Accounts of all firms, one column per vintage, and after them any accounts that
    are not compliance firms (financial traders).

    Args:
        n_accounts: Number of accounts (rows of :attr:`holdings`).
        first_vintage: The oldest vintage (the bank carried into the first year).
        last_vintage: The newest vintage that can be issued.
        n_firms: How many of the accounts, the first rows, are firms; all of them if
            None. :meth:`total` and :meth:`usable` return the firms' rows only (market
            code combines them with per-firm arrays); :meth:`ledger` and
            :attr:`holdings` cover every account.
    """

    def __init__(self, n_accounts: int, first_vintage: int, last_vintage: int,
                 n_firms: int | None = None) -> None:
        self.first_vintage = first_vintage
        self.vintages = np.arange(first_vintage, last_vintage + 1)
        n_vintages = len(self.vintages)
        self.n_firms = n_accounts if n_firms is None else int(n_firms)
        if not 0 <= self.n_firms <= n_accounts:
            raise ValueError(f"n_firms must be 0..{n_accounts}, got {n_firms!r}")
        # column-major: each vintage's holdings lie together, so the daily per-firm sums
        # over the 1-3 vintages held read only those (at 50,000 firms 5 times as fast as
        # over rows of every vintage); the compiled kernels are built for this layout
        self.holdings = np.zeros((n_accounts, n_vintages), dtype=np.int64, order="F")
        self.flows = {name: np.zeros(n_vintages, dtype=np.int64) for name in LEDGER_FLOWS}
        # The vintages [first, stop) outside which no account holds anything, by the
        # ledger (``held_by_ledger``), updated by issue() and take(), the only changes to
        # it (a transfer moves quota between accounts, not between vintages): the
        # per-firm sums read only those (a run holds 1-3 vintages at a time of its
        # 10-20). Changing holdings other than by these methods breaks the ledger, which
        # the end-of-run check reports.
        self._held_columns = (0, 0)

    def column(self, vintage: int) -> int:
        """Column index of a vintage."""
        return vintage - self.first_vintage

    def _usable_columns(self, up_to_vintage: int) -> int:
        """How many columns, from the oldest, hold vintages up to ``up_to_vintage``
        (as the slice ``[:, :column + 1]`` takes them)."""
        return len(range(self.holdings.shape[1])[: self.column(up_to_vintage) + 1])

    def usable(self, up_to_vintage: int) -> np.ndarray:
        """Each firm's holdings of vintages up to and including ``up_to_vintage``."""
        return self.totals(up_to_vintage)[1]

    def total(self) -> np.ndarray:
        """Each firm's holdings of all vintages."""
        return self.totals(self.first_vintage)[0]

    def totals(self, up_to_vintage: int) -> tuple[np.ndarray, np.ndarray]:
        """Each firm's holdings of all vintages, and of vintages up to and including
        ``up_to_vintage`` (:meth:`total`, :meth:`usable`), summed in one compiled pass
        over the vintages anyone holds."""
        rows = min(self.n_firms, len(self.holdings))
        return _kernels.holdings_sums(self.holdings, rows, *self._held_columns,
                                      self._usable_columns(up_to_vintage))

    def firm_total(self) -> int:
        """Quota held by all firms (t), financial accounts left out, summed over the
        vintages anyone holds."""
        return int(_kernels.rows_total(self.holdings, self.n_firms, *self._held_columns))

    def held_by_ledger(self) -> np.ndarray:
        """Per vintage, what all accounts hold by the ledger: issued free, auctioned and
        released from the reserve, less surrendered, cancelled and taken into the
        reserve."""
        f = self.flows
        return (f["issued_free"] + f["auctioned"] + f["reserve_out"]
                - f["surrendered"] - f["cancelled"] - f["reserve_in"])

    def _find_held_columns(self) -> None:
        held = np.flatnonzero(self.held_by_ledger())
        self._held_columns = (int(held[0]), int(held[-1]) + 1) if len(held) else (0, 0)

    def issue(self, firms: np.ndarray, amounts: np.ndarray, vintage: int, flow: str) -> None:
        """Credit newly issued quota (``issued_free``, ``auctioned`` or ``reserve_out``)."""
        amounts = np.asarray(amounts, dtype=np.int64)
        if np.any(amounts < 0):
            raise ValueError("issued amounts must not be negative")
        np.add.at(self.holdings[:, self.column(vintage)], firms, amounts)
        self.flows[flow][self.column(vintage)] += int(amounts.sum())
        self._find_held_columns()

    def take(
        self,
        firms: np.ndarray,
        amounts: np.ndarray,
        up_to_vintage: int,
        flow: str | None,
        from_vintage: int | None = None,
    ) -> np.ndarray:
        """Debit up to ``amounts`` from each firm, oldest vintage first.

        Args:
            firms: Account indices (distinct).
            amounts: Tonnes wanted from each.
            up_to_vintage: Newest vintage that may be used.
            from_vintage: Oldest vintage that may be used (default: the oldest held).
            flow: Ledger flow the taken quota goes to (``surrendered``, ``cancelled``,
                ``reserve_in``), or None when it moves to another account.

        Returns:
            Per firm, an array (firms x vintages) of the tonnes taken from each vintage.
        """
        remaining = np.asarray(amounts, dtype=np.int64).copy()
        taken = np.zeros((len(firms), len(self.vintages)), dtype=np.int64)
        first = 0 if from_vintage is None else self.column(from_vintage)
        for col in range(first, self.column(up_to_vintage) + 1):
            held = self.holdings[firms, col]
            use = np.minimum(held, remaining)
            if not use.any():
                continue
            self.holdings[firms, col] = held - use
            taken[:, col] = use
            remaining -= use
            if flow is not None:
                self.flows[flow][col] += int(use.sum())
        self._find_held_columns()
        return taken

    def transfer(self, seller: int, buyer: int, quantity: int) -> None:
        """Move ``quantity`` tonnes from seller to buyer, seller's oldest vintages first.

        Raises:
            ValueError: The seller holds less; nothing is moved.
        """
        row = self.holdings[seller]
        if int(row.sum()) < quantity:
            raise ValueError(f"account {seller} cannot deliver {quantity} t")
        remaining = quantity
        for col in range(len(row)):
            if remaining == 0:
                break
            use = min(int(row[col]), remaining)
            if use:
                row[col] -= use
                self.holdings[buyer, col] += use
                remaining -= use

    def transfer_many(self, sellers: np.ndarray, buyers: np.ndarray,
                      quantities: np.ndarray) -> None:
        """Deliver a session's trades in their order, each as :meth:`transfer` does (a
        seller may sell on what it bought earlier the same day). With the compiled
        engine (``model.matching``) in one compiled loop.

        Raises:
            ValueError: A seller holds less than it sold; the trades before it are
                delivered, that one and the later ones are not.
        """
        from etsim.model import matching  # the engine choice lives there

        kernels = matching.kernels() if matching.engine() == "compiled" else None
        if kernels is None:
            for seller, buyer, quantity in zip(np.asarray(sellers).tolist(),
                                               np.asarray(buyers).tolist(),
                                               np.asarray(quantities).tolist(), strict=True):
                self.transfer(seller, buyer, quantity)
            return
        sellers = np.ascontiguousarray(sellers, dtype=np.int64)
        buyers = np.ascontiguousarray(buyers, dtype=np.int64)
        quantities = np.ascontiguousarray(quantities, dtype=np.int64)
        if not (len(sellers) == len(buyers) == len(quantities)):
            raise ValueError("sellers, buyers and quantities must have the same length")
        self.raise_undelivered(kernels.transfer_many(self.holdings, sellers, buyers,
                                                     quantities), sellers, quantities)

    @staticmethod
    def raise_undelivered(failed: int, sellers: np.ndarray, quantities: np.ndarray) -> None:
        """Raise for a compiled delivery that failed (``failed``: the code the kernel
        returned, ``model._kernels.transfer_many``); nothing when it is -1.

        Raises:
            IndexError: An account was out of range (-2).
            ValueError: The seller of trade ``failed`` held less than it sold.
        """
        if failed == -2:
            raise IndexError("account out of range")
        if failed >= 0:
            raise ValueError(f"account {int(sellers[failed])} cannot deliver "
                             f"{int(quantities[failed])} t")

    def ledger(self) -> list[dict[str, int]]:
        """Per vintage: the flows, the holdings of every account (firms and financial
        accounts) and the balance (0 when the ledger holds)."""
        rows = []
        held = self.holdings.sum(axis=0)
        by_ledger = self.held_by_ledger()
        for col, vintage in enumerate(self.vintages):
            row = {"vintage": int(vintage)}
            row.update({name: int(values[col]) for name, values in self.flows.items()})
            row["holdings"] = int(held[col])
            row["balance"] = int(by_ledger[col]) - row["holdings"]
            rows.append(row)
        return rows
