"""``aio-sts-session status`` (alias ``list``): each profile this tool can serve, where its
long-term keys are, and what the cache holds for it.

It reads only: no prompt, no STS call, no cache key (an entry's expiry is in its clear-text
header), and shows no secret, session token or whole access key id. A profile is listed when
this tool can serve it: it names ``mfa_serial``, or assumes a role on a chain down to long-term
keys, or its ``credential_process`` runs this command (then it shows what that profile names).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from typing import Any

from .. import _entry
from .._botoconfig import read_profiles
from .._cache import MemoryCache
from .._cachekey import cache_directory
from .._engine import RefreshEngine
from .._models import MfaRequest
from .._profiles import NO_KEYS, ProfileChain, read_chain, wrapped_profile
from .._provider import build
from .._text import printable, quote
from ..exceptions import ConfigurationError, StsSessionError
from .options import Commands, subcommand
from .providers import chain_of

__all__ = [
    "format_left",
    "masked_key_id",
    "profile_rows",
    "profiles_on_session",
    "register",
    "render_rows",
    "status_command",
]

Row = dict[str, Any]


def register(commands: Commands) -> None:
    status = subcommand(
        commands,
        "status",
        "show each profile this tool can serve and its cached credentials (reads only: no "
        "prompt, no STS call, no key)",
        aliases=["list"],
    )
    status.add_argument("--json", action="store_true", help="a JSON list of objects")
    status.set_defaults(run=status_command)


async def status_command(args: argparse.Namespace) -> int:
    rows = await profile_rows(args.profile)
    sys.stdout.write(render_rows(rows, as_json=args.json))
    return 0


async def _never_asked(request: MfaRequest) -> str:  # pragma: no cover - status never prompts
    raise StsSessionError("status never asks for a code")


def masked_key_id(key_id: str) -> str | None:
    """``AKIA…0001``: enough to tell keys apart, not the whole id."""
    return f"{key_id[:4]}…{key_id[-4:]}" if len(key_id) >= 12 else None


def format_left(seconds: float | None) -> str:
    """``7h 12m``, ``12m``, ``40s``, ``expired`` or ``none``."""
    if seconds is None:
        return "none"
    if seconds <= 0:
        return "expired"
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60}h {minutes % 60:02d}m"
    return f"{minutes}m" if minutes else f"{int(seconds)}s"


def _expiry(entry_key: str) -> float | None:
    """The clear-text expiry of the entry for ``entry_key``, or ``None`` if there is none."""
    path = cache_directory() / _entry.entry_file_name(entry_key)
    try:
        header = _entry.read_regular_file(path)[: _entry.HEADER.size]
        magic, expires_at = _entry.HEADER.unpack(header)
    except (OSError, ValueError, struct.error):
        return None
    return float(expires_at) if magic == _entry.MAGIC else None


def _state(expires_at: float | None, now: float) -> dict[str, Any]:
    if expires_at is None:
        return {"expires": None, "seconds_left": None, "left": "none"}
    left = expires_at - now
    return {
        "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at)),
        "seconds_left": int(left) if left > 0 else 0,
        "left": format_left(left),
    }


def _providers(chain: ProfileChain) -> list[RefreshEngine]:
    return chain_of(build(chain, cache=MemoryCache(), default_callback=lambda _: _never_asked))


async def _row(name: str, chain: ProfileChain, via: str | None) -> Row:
    members = _providers(chain)
    try:
        keys = [await member.entry_key() for member in members]
    finally:
        await members[0].close()
    now = time.time()
    row: Row = {
        "profile": name,
        "kind": "role" if chain.roles else "session",
        "via": via,
        "mfa_serial": chain.mfa_serial,
        "keys": chain.key_source,
        "keys_profile": chain.root,
        # The key the sessions are made from (and named by), shortened: AKIA…0001.
        "key_id": masked_key_id(str((chain.keys or {}).get("aws_access_key_id") or "")),
        "plaintext_copy": chain.plaintext_copy,
        **_state(_expiry(keys[0]), now),
    }
    if chain.roles:
        row["role_arn"] = chain.roles[-1].role_arn
        row["session"] = _state(_expiry(keys[-1]), now)
    return row


def _keyless_row(name: str, chain: ProfileChain, via: str | None) -> Row:
    """A profile set up for this tool whose long-term keys are not there yet."""
    row: Row = {
        "profile": name,
        "kind": "role" if chain.roles else "session",
        "via": via,
        "mfa_serial": chain.mfa_serial,
        "keys": None,
        "keys_profile": chain.root,
        "key_id": None,
        "plaintext_copy": None,
        "add_keys": f"aio-sts-session add {chain.root}",
        **_state(None, 0.0),
    }
    if chain.roles:
        row["role_arn"] = chain.roles[-1].role_arn
        row["session"] = _state(None, 0.0)
    return row


async def profile_rows(only: str | None) -> list[Row]:
    """A row per profile this tool can serve (only ``only`` if given)."""
    _, _, _, profiles, _ = read_profiles(None)
    names = [only] if only else sorted(profiles)
    rows = []
    for name in names:
        via = wrapped_profile(profiles.get(name, {}))
        try:
            chain = read_chain(via or name, require_keys=False)
        except ConfigurationError:
            if only:
                raise
            continue  # a profile this tool cannot serve (another source of credentials)
        if chain.key_source == NO_KEYS and (chain.mfa_serial or chain.roles):
            rows.append(_keyless_row(name, chain, via))
            continue
        if chain.keys is None or not (chain.mfa_serial or chain.roles or via):
            if only:
                raise ConfigurationError(
                    f"Profile {quote(name)} names no mfa_serial, no role and no "
                    "credential_process of this tool: there is nothing of it to show."
                )
            continue
        rows.append(await _row(name, chain, via))
    return rows


def profiles_on_session(chain: ProfileChain) -> list[str]:
    """Every profile whose credentials come from the same MFA session as ``chain``'s: the
    session's own, the roles on it, and the profiles whose ``credential_process`` runs this
    tool for one of them."""
    _, _, _, profiles, _ = read_profiles(None)
    shared = []
    for name in sorted(profiles):
        try:
            other = read_chain(wrapped_profile(profiles[name]) or name)
        except ConfigurationError:
            continue
        if other.root == chain.root and other.mfa_serial == chain.mfa_serial:
            shared.append(name)
    return shared


def render_rows(rows: list[Row], *, as_json: bool) -> str:
    if as_json:
        clean = [{k: v for k, v in row.items() if k != "left"} for row in rows]
        for row in clean:
            if isinstance(row.get("session"), dict):
                row["session"] = {k: v for k, v in row["session"].items() if k != "left"}
        return json.dumps(clean, indent=2) + "\n"
    if not rows:
        return "no profile in the AWS config files uses MFA, a role, or this tool\n"
    table: list[tuple[str, ...]] = [
        ("PROFILE", "KIND", "MFA DEVICE", "KEYS", "CREDENTIALS", "MFA SESSION")
    ]
    for row in rows:
        name = row["profile"] + (f" (via {row['via']})" if row["via"] else "")
        session = row["session"]["left"] if row["kind"] == "role" else "-"
        keys = f"{row['keys'] or 'none'} [{row['keys_profile']}] {row['key_id'] or ''}".rstrip()
        cells = (name, row["kind"], row["mfa_serial"] or "-", keys, row["left"], session)
        table.append(tuple(printable(cell) for cell in cells))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    text = "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in table
    )
    for root in sorted({r["keys_profile"] for r in rows if r.get("add_keys")}):
        text += printable(
            f"profile {root} has no long-term keys yet: add them with 'aio-sts-session add "
            f"{root}' (into the keyring)\n"
        )
    copies = sorted({(r["keys_profile"], r["plaintext_copy"]) for r in rows if r["plaintext_copy"]})
    for profile, where in copies:
        text += printable(
            f"warning: the keys of profile {profile} are in the keyring, and a plain-text copy "
            f"is left in the {where}: remove it with 'aio-sts-session add {profile} "
            "--from-credentials-file --remove-plaintext'\n"
        )
    return text
