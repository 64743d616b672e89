"""``exec``: run a command with the profile's credentials in its environment, or (``--server``)
with a local credential endpoint that renews them while it runs (:mod:`.server`)."""

from __future__ import annotations

import argparse
import os

from .._cachekey import ENV_KEY
from .._profiles import ProfileChain
from .._text import quote
from .advice import UsageError
from .options import PROG, REGION_HELP, Commands, credentials_options, subcommand
from .providers import (
    SERVER_PREFETCH,
    chain_of,
    env_for,
    fresh_enough,
    open_provider,
    region_for,
)

__all__ = ["NESTED", "SHADOWING", "exec_command", "register"]

#: Set in a command's environment by ``exec``: a nested ``exec`` is refused.
NESTED = "AIO_STS_SESSION_EXEC"
#: Inherited variables that would shadow the credentials ``exec`` hands to its command.
SHADOWING = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    ENV_KEY,  # the cache key would let the command decrypt every cached credential
)


def register(commands: Commands) -> None:
    run = subcommand(
        commands,
        "exec",
        "run a command with the credentials (or a credential server); without a command, "
        "your $SHELL",
    )
    credentials_options(run)
    run.add_argument("--region", help=REGION_HELP)
    run.add_argument(
        "--server",
        action="store_true",
        help="give the command a local credential endpoint (container-credentials protocol) "
        "that renews ahead of expiry, instead of keys",
    )
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    run.set_defaults(run=exec_command)


def _command(args: argparse.Namespace) -> list[str]:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:  # aws-vault's habit: a shell with the credentials
        return [os.environ.get("SHELL") or "/bin/sh"]
    return argv


def _child_env(chain: ProfileChain) -> dict[str, str]:
    """The command's environment: ours, less what would shadow its credentials, plus the
    profile's configured endpoints (the command no longer sees the profile: without them it
    would talk to AWS's endpoints with credentials from the configured one)."""
    env = {k: v for k, v in os.environ.items() if k not in SHADOWING}
    for variable, url in chain.endpoints.items():
        env.setdefault(variable, url)
    env[NESTED] = chain.name
    return env


async def exec_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]] | int:
    """Plain ``exec`` returns what to exec once the event loop is closed; ``--server`` runs
    the command itself and returns its exit status."""
    if os.environ.get(NESTED):
        raise UsageError(
            f"Already inside '{PROG} exec' (profile {quote(os.environ[NESTED])}): exit that "
            f"shell first (or unset {NESTED} if you really mean to nest)."
        )
    argv = _command(args)
    if args.server:
        from .server import run_with_server

        provider, chain = open_provider(args, prefetch=SERVER_PREFETCH)
        try:
            return await run_with_server(
                chain_of(provider), argv, _child_env(chain), region_for(args, chain)
            )
        finally:
            for member in chain_of(provider):
                await member.close()
    provider, chain = open_provider(args)
    try:
        creds = await fresh_enough(provider)
        env = _child_env(chain)
        env.update(env_for(creds, region_for(args, chain)))
    finally:
        await provider.close()
    return argv, env
