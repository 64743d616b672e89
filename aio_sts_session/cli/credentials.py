"""``credential-process`` and ``env``: credentials for another program, printed as the AWS
``credential_process`` JSON or as environment variables for a shell.

A warm cache answers both without this module (:mod:`.warm`); this is the full path, which
also writes the warm record for the next run.
"""

from __future__ import annotations

import argparse
import sys

from . import warm
from .options import REGION_HELP, Commands, credentials_options, subcommand
from .output import credential_process_json, render_env
from .providers import env_for, fresh_enough, open_provider, region_for

__all__ = ["credential_process", "env_command", "register"]


def register(commands: Commands) -> None:
    process = subcommand(
        commands, "credential-process", "print credentials as AWS credential_process JSON"
    )
    credentials_options(process)
    process.set_defaults(run=credential_process)
    env = subcommand(commands, "env", "print credentials as environment variables for a shell")
    credentials_options(env)
    env.add_argument(
        "--format",
        choices=["sh", "fish", "powershell", "json"],
        default="sh",
        help="the shell whose commands set the variables, or a JSON object (default: sh)",
    )
    env.add_argument("--region", help=REGION_HELP)
    env.set_defaults(run=env_command)


def _recorder(args: argparse.Namespace) -> warm.Recorder:
    return warm.Recorder.start(
        warm.Request(
            args.command,
            args.profile,
            getattr(args, "format", "sh"),
            duration=args.duration,
            region=getattr(args, "region", None),
            no_mfa=args.no_mfa,
        )
    )


async def credential_process(args: argparse.Namespace) -> int:
    record = _recorder(args)
    provider, chain = open_provider(args)
    try:
        creds = await fresh_enough(provider)
        await record.finish(provider, chain, region=None)
    finally:
        await provider.close()
    sys.stdout.write(
        credential_process_json(
            creds.access_key_id, creds.secret_access_key, creds.session_token, creds.expiration
        )
    )
    return 0


async def env_command(args: argparse.Namespace) -> int:
    record = _recorder(args)
    provider, chain = open_provider(args)
    try:
        creds = await fresh_enough(provider)
        region = region_for(args, chain)
        await record.finish(provider, chain, region=region)
    finally:
        await provider.close()
    sys.stdout.write(render_env(env_for(creds, region), args.format))
    return 0
