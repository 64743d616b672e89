"""``cache clear``: delete cached credentials, all of them or a profile's (and, with
``--session``, the MFA session beneath a role)."""

from __future__ import annotations

import argparse
import sys

from .._cache import EncryptedFileCache
from .._cachekey import cache_directory
from .._profiles import read_chain
from .._provider import build
from .._text import quote
from . import warm
from .advice import UsageError
from .options import Commands, profile_names, subcommand
from .prompts import no_code_source
from .providers import chain_of

__all__ = ["cache_clear", "register"]


def register(commands: Commands) -> None:
    cache = subcommand(commands, "cache", "manage the encrypted cache", profile=False)
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    clear = actions.add_parser(
        "clear",
        help="delete cached credentials",
        description="delete cached credentials: all of them, or a profile's",
    )
    clear.add_argument(
        "--profile", help="only this profile's credentials (default: all)"
    ).completer = profile_names  # type: ignore[attr-defined]
    clear.add_argument(
        "--session",
        action="store_true",
        help="with --profile of a role: the MFA session beneath it too, which every profile "
        "on it shares (the next of them costs a code)",
    )
    clear.set_defaults(run=cache_clear)


async def cache_clear(args: argparse.Namespace) -> int:
    # Deleting needs no cache key: entries are found by the hash of their entry key.
    cache = EncryptedFileCache(cache_directory(), key=EncryptedFileCache.generate_key())
    if args.profile is None:
        if args.session:
            raise UsageError("--session goes with --profile (without it, everything is cleared).")
        removed = await cache.clear()
        if cache.directory.is_dir():
            warm.clear_records(cache.directory)
        sys.stdout.write(f"removed {_entries(removed)} from {cache.directory}\n")
        return 0
    chain = read_chain(args.profile)
    provider = build(chain, cache=cache, default_callback=lambda _: no_code_source)
    try:
        members = chain_of(provider)
        if not args.session and len(members) > 1:
            members = members[:-1]  # the roles; the MFA session beneath is shared
        removed = 0
        for member in members:
            removed += await cache.remove(await member.entry_key())
    finally:
        await provider.close()
    message = f"removed {_entries(removed)} of profile {quote(chain.name)} from {cache.directory}"
    if chain.roles and not args.session:
        message += " (the MFA session beneath it is kept: --session removes it too)"
    elif chain.roles:
        from .status import profiles_on_session

        sharing = profiles_on_session(chain)
        message += (
            f"; the MFA session is shared by {_listed(sharing)}: the next of them to run asks "
            "for a code"
        )
    sys.stdout.write(message + "\n")
    return 0


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _entries(count: int) -> str:
    return f"{count} cached credential{'' if count == 1 else 's'}"
