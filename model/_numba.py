"""numba for etsim's compiled kernels, with an on-disk cache that works anywhere.

Kernels are compiled with ``cache=True``, so a second process loads the machine code
from disk instead of compiling again (the first run on a machine compiles them, in about
15-30 seconds; see the README's performance section). numba keeps its cache beside the
source (``__pycache__``) when that folder is writable. When it is not (a read-only
install, a shared site-packages), and ``NUMBA_CACHE_DIR`` is not set, the cache goes to
the user's cache folder: ``$XDG_CACHE_HOME/etsim/numba`` (``~/.cache/etsim/numba``).
This is decided here, before numba is imported, so it holds for every kernel.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def user_cache_dir() -> Path:
    """Where compiled kernels are cached when the package folder is read-only."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "etsim" / "numba"


def _package_dir_writable() -> bool:
    cache = _PACKAGE_DIR / "__pycache__"
    target = cache if cache.is_dir() else _PACKAGE_DIR
    return os.access(target, os.W_OK)


def _choose_cache_dir() -> None:
    """Point numba at the user cache folder when the package folder is read-only."""
    if os.environ.get("NUMBA_CACHE_DIR") or _package_dir_writable():
        return
    folder = user_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable home either: numba then compiles in memory only
        return
    os.environ["NUMBA_CACHE_DIR"] = str(folder)


_choose_cache_dir()

import numba  # noqa: E402  (after the cache folder is chosen)

if os.environ.get("NUMBA_CACHE_DIR"):
    # numba reads its configuration once; if it was imported before etsim, tell it here
    numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]

njit = numba.njit
