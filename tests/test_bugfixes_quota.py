"""Fixed quota bugs, on hand-built state (``tests/institutions.py``): withholding for the
reserve pool in whole tonnes with nothing gained or lost by rounding, reserve-pool trades
in the firms' net sales, the repayment of borrowing under an absolute cap, and (no bug)
withdrawals taking the oldest vintages first."""

from __future__ import annotations

import numpy as np
import pytest
from institutions import hand_built_market, make_firms

from etsim.model.reserve import Intervention


@pytest.mark.parametrize(("pending", "amounts", "withheld"), [
    # 1 t of 3 x 1 t (0.6 rounds to 1): 1 t withheld, not 3 (each 1/3 t rounded down to 0
    # and the "kept" 0.4 t each rounded down to 0 made 3)
    (1, [0.6, 0.6, 0.6], [1, 0, 0]),
    # 2 t of 10 x 1 t: 2 t withheld, not 0 (each kept 1.2 t rounded back to 1)
    (2, [1.4] * 10, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
    # 30 t of 100 + 200 t: 10 + 20 exactly
    (30, [100.0, 200.0], [10, 20]),
    # 10 t of 3 x 7 t: 10/3 each, 3 + 3 + 3 and the 10th tonne to the first row
    (10, [7.0, 7.0, 7.0], [4, 3, 3]),
    # 7 t of 1 + 2 + 4 t: all 7
    (7, [1.0, 2.0, 4.0], [1, 2, 4]),
])
def test_withholding_takes_exactly_the_pending_tonnes_pro_rata(
        pending: int, amounts: list[float], withheld: list[int]) -> None:
    """The pool's pending intake (up to all of the issuance) is withheld in whole tonnes,
    pro rata by largest remainder: the pool gets exactly that, the firms the rest of the
    issuance in whole tonnes, and no tonne is created or lost by rounding."""
    market = hand_built_market(make_firms(len(amounts)))
    pool = market.reserve
    pool.withhold_pending = pending
    issued = np.floor(np.array(amounts) + 0.5).astype(np.int64)  # whole tonnes, half up
    kept = market.issuance().withhold_for_reserve(np.array(amounts), 2026)
    np.testing.assert_array_equal(kept, issued - np.array(withheld))
    assert np.all(kept == np.round(kept)) and np.all(kept >= 0)
    assert pool.intake[2026] == pool.holdings == sum(withheld) == min(pending, issued.sum())
    assert pool.withhold_pending == pending - sum(withheld)
    assert int(kept.sum()) + pool.holdings == int(issued.sum())


@pytest.mark.parametrize("flow", ["endow", "add", "add_bought_back", "release"])
def test_pool_flows_are_whole_tonnes(flow: str) -> None:
    """A fraction of a tonne into or out of the pool is refused and changes nothing; a
    whole number given as a float is booked as an int."""
    pool = hand_built_market(make_firms(1)).reserve
    pool.endow(100)
    move = getattr(pool, flow)
    with pytest.raises(ValueError, match="whole number, not 2.5"):
        move(2.5) if flow == "endow" else move(2025, 2.5)
    assert pool.holdings == 100 and pool.balance() == 0
    move(3.0) if flow == "endow" else move(2025, 3.0)
    assert type(pool.holdings) is int and pool.balance() == 0


@pytest.mark.parametrize("flow", ["release", "buy_back", "withhold"])
def test_a_policy_decides_in_whole_tonnes(flow: str) -> None:
    """An intervention of a fraction of a tonne (a plugin policy's) is refused at once,
    naming the flow; whole numbers pass as ints."""
    with pytest.raises(ValueError, match=f"{flow} must be 0 or more tonnes"):
        Intervention(**{flow: 12.5})
    assert type(getattr(Intervention(**{flow: np.float64(12.0)}), flow)) is int
