"""Registries that map the names used in scenario files to classes (one lookup rule)."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def lookup(registry: dict[str, T], name: str, what: str) -> T:
    """The entry registered under ``name``.

    Args:
        registry: Names to classes (clearing rules, strategies, traders, ...).
        name: The name asked for, e.g. from a scenario file.
        what: What the registry holds, for the message (``"trading strategy"``).

    Raises:
        KeyError: ``name`` is not registered; the message lists the allowed names.
    """
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown {what} '{name}'; allowed: {', '.join(sorted(registry))}") from None
