"""``login``: the AWS console, signed in as a role profile, from the console's federation
endpoint (one MFA code at most, shared with every other tool through the cache).

The console takes role credentials only (AssumeRole's, or GetFederationToken's): a profile
whose credentials come from GetSessionToken is refused before anyone is asked for a code. The
link is a bearer secret for 15 minutes: it is printed only with ``--stdout`` and never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import webbrowser

from .._config import CHAINING_CAP
from .._log import logger
from .._profiles import ProfileChain, read_chain
from .._role import AssumeRoleProvider
from .._signin import (
    CHAINED_MAX_SESSION_DURATION,
    check_session_duration,
    console_destination,
    federation_endpoint,
    get_signin_token,
    login_url,
)
from .._text import quote
from ..exceptions import ConfigurationError
from .advice import UsageError
from .options import Commands, credentials_options, duration, subcommand
from .providers import fresh_enough, open_provider, region_for

__all__ = ["login_command", "register"]


def register(commands: Commands) -> None:
    login = subcommand(
        commands,
        "login",
        "open the AWS console as a role profile (a sign-in link from the console's "
        "federation endpoint)",
        description=(
            "Open the AWS console signed in as a role profile. The console accepts role\n"
            "credentials only: the profile must have role_arn. The sign-in link signs in\n"
            "whoever opens it, for 15 minutes: --stdout prints it (it is never logged);\n"
            "otherwise it is opened in the browser (BROWSER, else the desktop's), whose\n"
            "command line other local users can see while it starts."
        ),
    )
    credentials_options(login)
    login.add_argument(
        "--stdout",
        action="store_true",
        help="print the sign-in link instead of opening a browser",
    )
    login.add_argument(
        "--path",
        metavar="PATH",
        help="the console page to open, e.g. /s3/home (default: the console's home; a full "
        "https:// URL is taken as it is)",
    )
    login.add_argument(
        "--region",
        help="the console's region (default: AWS_REGION or AWS_DEFAULT_REGION if set, else "
        "the profile's, else its source profile's, else the global console)",
    )
    login.add_argument(
        "--session-duration",
        type=duration,
        default=None,
        metavar="SECONDS",
        help=f"how long the console session lasts: 900 to 43200 seconds, at most "
        f"{CHAINED_MAX_SESSION_DURATION} for a role chained on the MFA session (default: as "
        "long as the role's credentials)",
    )
    login.set_defaults(run=login_command)


def chained(chain: ProfileChain, override: int | None) -> bool:
    """Whether the profile's role is assumed with temporary credentials (role chaining): on
    the MFA session (at most an hour), or on another role."""
    role = chain.roles[-1]
    seconds = override if override is not None else role.duration_seconds
    return len(chain.roles) > 1 or seconds <= CHAINING_CAP


async def login_command(args: argparse.Namespace) -> int:
    chain = read_chain(args.profile)  # checked whole; nobody is asked for anything yet
    if not chain.roles:
        raise ConfigurationError(
            f"Profile {quote(chain.name)} gets its credentials from GetSessionToken (an MFA "
            "session of the IAM user), and the AWS console accepts only role credentials (or "
            "GetFederationToken's). Add a role profile on it (role_arn = arn:aws:iam::"
            f"<account>:role/<name>, source_profile = {chain.name}) and run login --profile "
            "with that one."
        )
    role_arn = chain.roles[-1].role_arn
    endpoint = federation_endpoint(role_arn)
    destination = console_destination(role_arn, region_for(args, chain), args.path)
    try:
        check_session_duration(
            args.session_duration, chained=chained(chain, args.duration), role_arn=role_arn
        )
    except ConfigurationError as exc:
        raise UsageError(f"--session-duration {args.session_duration}: {exc}") from None
    provider, chain = open_provider(args)
    assert isinstance(provider, AssumeRoleProvider)
    try:
        creds = await fresh_enough(provider)  # more than 15 minutes left when it can
    finally:
        await provider.close()
    token = await get_signin_token(endpoint, creds, session_duration=args.session_duration)
    url = login_url(endpoint, token, destination)
    if args.stdout:
        sys.stdout.write(url + "\n")
        logger.info("Printed a console sign-in link for %s (it works for 15 minutes).", role_arn)
        return 0
    opened = await asyncio.to_thread(webbrowser.open, url)
    if not opened:
        raise ConfigurationError(
            "No browser could be started to open the console: set BROWSER to one (a command "
            "taking the URL), or run login with --stdout and open the link yourself."
        )
    logger.info("Opened the console as %s in the browser.", role_arn)
    return 0
