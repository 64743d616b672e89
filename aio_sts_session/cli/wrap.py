"""``wrap``: the ``~/.aws/config`` section that gives every AWS tool a profile's MFA-backed
credentials, its ``credential_process`` naming this tool by its absolute path (a tool installed
in a virtual environment is not on the ``PATH`` of the AWS CLI, an IDE or a cron job)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import sys
from pathlib import Path

from .._botoconfig import read_profiles
from .._profiles import read_chain
from .._text import quote
from .advice import UsageError
from .options import PROG, Commands, profile_names, subcommand

__all__ = ["register", "tool_command", "wrap_command"]


def register(commands: Commands) -> None:
    wrap = subcommand(
        commands,
        "wrap",
        "print (or --write) a ~/.aws/config profile whose credential_process runs this tool "
        "for PROFILE, by its absolute path",
        profile=False,
    )
    wrap.add_argument("profile_name", metavar="PROFILE").completer = profile_names  # type: ignore[attr-defined]
    wrap.add_argument(
        "--as",
        dest="wrapper",
        metavar="NAME",
        help="the new profile's name (default: PROFILE-cli)",
    )
    wrap.add_argument(
        "--write", action="store_true", help="append it to the AWS config file (not just print)"
    )
    wrap.set_defaults(run=wrap_command)


def tool_command() -> list[str]:
    """How to run this tool from anywhere: the console script beside this interpreter (a
    virtual environment's, or pipx's), else the one on ``PATH``, else ``python -m``."""
    beside = Path(sys.executable).with_name(PROG)
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(PROG)
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "aio_sts_session"]


def _append(configured: str, text: str) -> Path:
    """Append ``text`` to the config file botocore reads, after a blank line."""
    path = Path(os.path.expanduser(os.path.expandvars(configured)))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    before = path.read_bytes() if path.exists() else b""
    separator = b"\n" if before and not before.endswith(b"\n") else b""
    if before and not before.endswith(b"\n\n"):
        separator += b"\n"
    with open(path, "ab") as config:
        config.write(separator + text.encode())
    return path


def section(profile: str, wrapper: str, region: str | None) -> str:
    line = shlex.join([*tool_command(), "credential-process", "--profile", profile])
    text = f"[profile {wrapper}]\ncredential_process = {line}\n"
    return text + (f"region = {region}\n" if region else "")


async def wrap_command(args: argparse.Namespace) -> int:
    profile = args.profile_name
    wrapper = args.wrapper or f"{profile}-cli"
    chain = read_chain(profile, require_keys=False)  # a broken profile is refused now
    session, _, _, profiles, _ = read_profiles(profile)
    if wrapper in profiles:
        raise UsageError(
            f"Profile {quote(wrapper)} exists already: choose another name with --as NAME."
        )
    text = section(profile, wrapper, chain.region or chain.source_region)
    if not args.write:
        sys.stdout.write(text)
        return 0
    configured = str(session.get_config_variable("config_file"))
    path = await asyncio.to_thread(_append, configured, text)
    sys.stderr.write(
        f"{PROG}: added [profile {wrapper}] to {path}: every AWS tool run with --profile "
        f"{wrapper} (or AWS_PROFILE={wrapper}) now gets the credentials of {profile}\n"
    )
    return 0
