"""Quoting values in messages: never more than a short prefix of anything a user or a file
supplied (a 5 MB ``mfa_serial`` must not become a 5 MB error line)."""

from __future__ import annotations

__all__ = ["QUOTE_LIMIT", "first_line", "quote"]

#: At most this many characters of a value are quoted in a message.
QUOTE_LIMIT = 80


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, or the ``repr`` of its first ``limit`` characters and how long it is."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    text = repr(value)
    if len(text) > limit + 2:
        return f"{text[:limit]}… ({len(text)} characters)"
    return text


def first_line(text: str, limit: int = QUOTE_LIMIT) -> str:
    """The first line of ``text``, at most ``limit`` characters (for an exception's message that
    may go on with data, such as a response body)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "…"
