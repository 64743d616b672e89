"""Quoting values in messages: never more than a short prefix of anything a user or a file
supplied (a 5 MB ``mfa_serial`` must not become a 5 MB error line)."""

from __future__ import annotations

__all__ = ["QUOTE_LIMIT", "first_line", "printable", "quote"]

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


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: What a terminal acts on rather than shows: C0 controls but tab and newline, DEL, C1
#: controls (``\x9b`` is CSI), and the bidirectional overrides that reorder what is shown.
_CONTROLS = {
    chr(c): _escape(chr(c)) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if c not in (9, 10)
}
_CONTROLS.update(
    {chr(c): _escape(chr(c)) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}
)
_TABLE = str.maketrans(_CONTROLS)


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (an escape sequence in a
    profile name from a shared config file could retitle or clear the terminal) are shown
    escaped, ``\\x1b``, instead of acted on."""
    return text.translate(_TABLE)
