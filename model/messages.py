"""How error messages show what a user gave: on one line, and short.

Every message about bad input (scenario and experiment files, ``--set`` arguments,
results folders) echoes values, keys and file names through ``shown`` and
``shown_name``, so a 100,000-character value or a name with a line break still gives
one short line. Only the standard library: the ``etsim`` command imports this at
start-up.
"""

from __future__ import annotations

from typing import Any

VALUE_LIMIT = 60  # characters of a value an error message echoes
NAME_LIMIT = 120  # characters of a file name, key or argument it echoes
LINE_LIMIT = 300  # characters of the whole error line



def shown(value: Any, limit: int = VALUE_LIMIT, *, quote: bool = True) -> str:
    """How an error message shows something the user gave: on one line, and short.

    Every message that echoes a value, key, file name or argument goes through here, so
    a 100,000-character value or a name with a line break still gives one short line.

    Args:
        value: A value (shown as its repr) or, with ``quote=False``, a name such as a
            file, key or argument (shown as text, control characters escaped).
        limit: Most characters shown; a longer text keeps its start and end around
            ``...``.

    Returns:
        The text to put in the message.
    """
    if quote:
        try:
            text = repr(value)
        except (ValueError, RecursionError):  # past the int-to-str limit, or nested deep
            digits = f" of about {int(value.bit_length() * 0.30103):,} digits" if isinstance(
                value, int) else ""
            text = f"<{type(value).__name__}{digits}>"
    else:
        # repr's escapes for what would break the line (newlines, other separators)
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    if len(text) <= limit:
        return text
    keep = max(limit - 3, 2)
    return f"{text[:keep - keep // 2]}...{text[len(text) - keep // 2:]}"


def shown_name(name: Any) -> str:
    """A file name, key or argument as an error message shows it (see :func:`shown`)."""
    return shown(name, NAME_LIMIT, quote=False)
