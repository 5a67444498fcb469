"""One BLAS thread for the model's small dot products.

numpy hands ``a @ b`` to OpenBLAS, which splits a long dot product over its worker
threads; after each call those threads spin (busy-wait) for a while before sleeping.
The model's products are small and frequent (the monthly banking equilibrium), so on a
machine whose cores are shared (other processes, a sweep's other workers) the spinning
threads take the cores the model runs on: a china-2024 run to 2040 took twice the CPU
time, and a sweep on 2 workers got little more than one core. ``single_threaded`` runs
a block with one OpenBLAS thread and restores the count after (the process's numpy work
outside the model keeps its threads). The results are the same: the tables of every
shipped scenario are identical with one thread and with the default.

OpenBLAS is found among the libraries the process has loaded (numpy's bundled
``scipy_openblas`` or a system one); with another BLAS, or none found, the block runs
unchanged.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

_Controls = tuple[Callable[[], int], Callable[[int], None]]
_found: list[_Controls | None] = []


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries this process has loaded (on Linux, from its
    memory map, so that no second copy is loaded); elsewhere numpy's bundled one."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/maps") as maps:
                paths = [line.split()[-1] for line in maps
                         if "openblas" in line.lower() and "/" in line]
            return list(dict.fromkeys(paths))
        except OSError:
            pass
    return sorted(str(p) for p in (Path(np.__file__).parent.parent / "numpy.libs").glob(
        "*openblas*"))


def _controls() -> _Controls | None:
    """OpenBLAS's get/set of its thread count, or None (found once per process)."""
    if _found:
        return _found[0]
    controls = None
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""),
                               ("openblas", "64_"), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                controls = (get, set_)
                break
        if controls is not None:
            break
    _found.append(controls)
    return controls


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with one OpenBLAS thread; the thread count is restored after."""
    controls = _controls()
    if controls is None:
        yield
        return
    get, set_ = controls
    before = get()
    if before == 1:
        yield
        return
    set_(1)
    try:
        yield
    finally:
        set_(before)
