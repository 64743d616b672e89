"""Removing one profile's long-term keys from the shared credentials file, safely.

``aio-sts-session add NAME --from-credentials-file --remove-plaintext`` deletes the
``aws_access_key_id`` and ``aws_secret_access_key`` of ``[NAME]`` and nothing else. A file of
secrets is edited under three rules:

1. **Read it as botocore reads it.** Sections and options are recognised line by line exactly
   as :class:`configparser.RawConfigParser` (botocore's parser) recognises them: a header with
   a trailing comment (``[bob] ; prod keys``), indented lines that continue a value (and an
   indented ``[header]`` that is one), ``key: value`` as well as ``key = value``, any case,
   CRLF or CR line ends. A key's continuation lines go with it.
2. **Verify before writing.** The result is parsed by botocore's own loader and compared with
   the original: every other profile must read exactly as before, and ``[NAME]`` exactly as
   before less its two keys (not, say, keys it would now inherit from ``[DEFAULT]``). Anything
   else changes nothing and says why.
3. **Write the file botocore reads.** Through a symbolic link (a dotfiles repository) the
   link's target is edited and the link kept; the mode is kept; the new content is written to
   a temporary file beside it, synced and renamed over it, and only if the file did not change
   meanwhile. Afterwards the secret is looked for in every file botocore reads: success is
   reported only when it is gone from all of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import stat
import sys
from pathlib import Path
from typing import Any

from ..exceptions import StsSessionError

__all__ = [
    "KEY_OPTIONS",
    "Line",
    "PlaintextError",
    "Removal",
    "classify",
    "remove_plaintext",
    "secret_locations",
]

#: The options removed from the profile's section.
KEY_OPTIONS = ("aws_access_key_id", "aws_secret_access_key")

# RawConfigParser's defaults, as botocore uses it: full-line comments start with # or ;
# (no inline comments), ``=`` or ``:`` separate an option from its value, empty lines belong
# to a value, a header is ``[`` + anything + ``]`` at the start of the stripped line.
_COMMENT_PREFIXES = ("#", ";")
_SECTION = re.compile(r"\[(?P<header>.+)\]")
_OPTION = re.compile(r"(?P<option>.*?)\s*(?P<vi>[=:])\s*(?P<value>.*)$")
_NONSPACE = re.compile(r"\S")
DEFAULT_SECTION = "DEFAULT"


class PlaintextError(StsSessionError):
    """The plain-text keys were not removed (or not all of them): the message says what is on
    disk and what to do."""


@dataclasses.dataclass(frozen=True)
class Line:
    """One physical line as the parser sees it: ``kind`` is ``header``, ``option``,
    ``continuation``, ``blank``, ``comment`` or ``error``; ``section`` and ``option`` say what
    it belongs to (the header's own section for a header)."""

    kind: str
    section: str | None
    option: str | None


def classify(lines: list[str]) -> list[Line]:
    """What each line of an INI file is to :class:`configparser.RawConfigParser` (``lines``
    without their line ends)."""
    result: list[Line] = []
    section: str | None = None
    option: str | None = None
    indent_level = 0
    for raw in lines:
        line = raw + "\n"
        stripped = line.strip()
        if stripped.startswith(_COMMENT_PREFIXES):
            result.append(Line("comment", section, option))
            continue
        if not stripped:
            result.append(Line("blank", section, option))
            continue
        first = _NONSPACE.search(line)
        indent = first.start() if first else 0
        if section is not None and option and indent > indent_level:
            result.append(Line("continuation", section, option))
            continue
        indent_level = indent
        header = _SECTION.match(stripped)
        if header:
            section, option = header.group("header"), None
            result.append(Line("header", section, None))
            continue
        if section is None:
            result.append(Line("error", None, None))
            continue
        match = _OPTION.match(stripped)
        if match and match.group("option"):
            option = match.group("option").rstrip().lower()
            result.append(Line("option", section, option))
        else:
            result.append(Line("error", section, option))
    return result


@dataclasses.dataclass(frozen=True)
class Removal:
    """What :func:`remove_plaintext` did: ``lines`` removed from ``edited`` (the file botocore
    reads at ``path``, or its link's target)."""

    path: Path
    edited: Path
    lines: int


def _split(data: bytes) -> tuple[list[bytes], list[str]]:
    physical = data.splitlines(keepends=True)  # \n, \r\n and \r: universal newlines
    text = [line.decode("utf-8", errors="surrogateescape").rstrip("\r\n") for line in physical]
    return physical, text


def _parse(path: Path) -> dict[str, Any]:
    import botocore.configloader
    from botocore.exceptions import BotoCoreError

    try:
        return dict(botocore.configloader.raw_config_parse(str(path)))
    except BotoCoreError as exc:
        raise PlaintextError(
            f"{path} cannot be read the way botocore reads it ({exc}); nothing was changed. "
            "Remove the two key lines by hand."
        ) from None


def _differences(before: dict[str, Any], after: dict[str, Any], profile: str) -> list[str]:
    """How ``after`` reads differently from ``before`` less ``profile``'s keys (empty: as
    intended)."""
    expected = {name: dict(options) for name, options in before.items()}
    for key in KEY_OPTIONS:
        expected.get(profile, {}).pop(key, None)
    problems = []
    for name in sorted(set(expected) | set(after)):
        if expected.get(name) == after.get(name):
            continue
        if name == profile and any(key in after.get(name, {}) for key in KEY_OPTIONS):
            problems.append(
                f"[{profile}] would still have keys (from [{DEFAULT_SECTION}] or a line this "
                "tool cannot attribute)"
            )
        elif name not in after:
            problems.append(f"[{name}] would disappear")
        else:
            problems.append(f"[{name}] would read differently")
    return problems


def _write_beside(target: Path, content: bytes, mode: int, owner: tuple[int, int]) -> Path:
    """``content`` in a new file in ``target``'s directory (mode ``mode``), synced; removed
    again if anything fails."""
    temporary = target.with_name(f".{target.name}.aio-sts-session-{secrets.token_hex(6)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.write(fd, content)  # a credentials file is a few KiB: one write
            if sys.platform != "win32" and os.getuid() == 0 and owner != (0, 0):
                os.fchown(fd, *owner)  # root editing a user's file: it stays theirs
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def remove_plaintext(path: Path, profile: str) -> Removal:
    """Remove ``profile``'s ``aws_access_key_id`` and ``aws_secret_access_key`` lines (and
    their continuation lines) from ``path``, the credentials file as botocore resolves it,
    keeping every other byte, the mode and a symbolic link. Raises :class:`PlaintextError`,
    having changed nothing, when the result would read differently for anything else."""
    target = Path(os.path.realpath(path))
    try:
        before_info = os.stat(target)
        if not stat.S_ISREG(before_info.st_mode):
            raise PlaintextError(f"{path} is not a regular file; nothing was changed.")
        original = target.read_bytes()
    except OSError as exc:
        raise PlaintextError(
            f"{path} cannot be read ({exc.strerror}); nothing was changed."
        ) from None
    parsed_before = _parse(target)
    physical, text = _split(original)
    kept: list[bytes] = []
    removed = 0
    for raw, line in zip(physical, classify(text), strict=True):
        if (
            line.section == profile
            and line.option in KEY_OPTIONS
            and line.kind in ("option", "continuation")
        ):
            removed += 1
            continue
        kept.append(raw)
    if removed == 0:
        raise PlaintextError(
            f"No aws_access_key_id or aws_secret_access_key line of [{profile}] was found in "
            f"{path}; nothing was changed."
        )
    content = b"".join(kept)
    mode = stat.S_IMODE(before_info.st_mode)
    try:
        candidate = _write_beside(target, content, 0o600, (-1, -1))
    except OSError as exc:
        raise PlaintextError(
            f"The edited copy of {path} could not be written ({exc.strerror}); nothing was changed."
        ) from None
    try:
        problems = _differences(parsed_before, _parse(candidate), profile)
        if problems:
            raise PlaintextError(
                f"Removing the keys of [{profile}] from {path} would change more than that: "
                f"{'; '.join(problems)}. Nothing was changed: remove the two lines by hand."
            )
        if sys.platform != "win32" and os.getuid() == 0:
            with contextlib.suppress(OSError):
                os.chown(candidate, before_info.st_uid, before_info.st_gid)
        os.chmod(candidate, mode)
        if _identity(os.stat(target)) != _identity(before_info):
            raise PlaintextError(
                f"{path} changed while it was being edited; nothing was changed: run the "
                "command again."
            )
        os.replace(candidate, target)
    except BaseException:
        candidate.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    return Removal(Path(path), target, removed)


def secret_locations(paths: list[Path], secret: str) -> list[str]:
    """Where ``secret`` still is in ``paths`` (each read through its links): ``"line N of
    PATH ([section])"`` for each line holding it, naming no part of it."""
    if not secret:
        return []
    found = []
    needle = secret.encode()
    for path in paths:
        try:
            data = Path(os.path.realpath(path)).read_bytes()
        except OSError:
            continue
        if needle not in data:
            continue
        physical, text = _split(data)
        for number, (raw, line) in enumerate(zip(physical, classify(text), strict=True), 1):
            if needle in raw:
                where = f" ([{line.section}])" if line.section else ""
                found.append(f"line {number} of {path}{where}")
    return found
