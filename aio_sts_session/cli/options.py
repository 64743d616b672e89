"""What several commands share on their command line: the sub-parser with ``--profile`` and the
epilog, and the options of every command that obtains credentials."""

from __future__ import annotations

import argparse
from typing import Any

from .._cachekey import ENV_KEY, cache_directory, describe_key_source, key_file_path
from ..exceptions import StsSessionError
from .prompts import ENV_PROMPT, PROMPTS

__all__ = [
    "PROG",
    "REGION_HELP",
    "Commands",
    "credentials_options",
    "duration",
    "epilog",
    "seconds",
    "subcommand",
]

PROG = "aio-sts-session"
REGION_HELP = (
    "the region handed to the command (default: AWS_REGION or AWS_DEFAULT_REGION if set, "
    "else the profile's region, else its source profile's)"
)
#: What ``add_subparsers`` returns (argparse's own type is private).
Commands = Any


def epilog() -> str:
    return (
        f"cache: {cache_directory()} (encrypted; shared by every process of this user)\n"
        f"cache key: {describe_key_source()}\n"
        f"  (in this order: the environment variable {ENV_KEY}; the OS keyring when the\n"
        f"  'keyring' extra has a backend; else the key file {key_file_path()},\n"
        "  generated on first use, readable only by you, kept apart from the cache)\n"
        "MFA code: --mfa-command, else mfa_process in the profile, else a prompt on the\n"
        "  controlling terminal, else a desktop dialog (zenity, kdialog; osascript on macOS)\n"
        f"  when there is a display, else an error saying how to provide one ({ENV_PROMPT}\n"
        "  or --prompt choose one).\n"
        "~/.aws/config, to give every SDK these credentials:\n"
        "  [profile work]\n"
        f"  credential_process = {PROG} credential-process --profile work-mfa\n"
    )


def seconds(text: str) -> float:
    """``--mfa-timeout``: a positive number of seconds (else exit 2, naming the flag)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def duration(text: str) -> int:
    """``--duration``: whole seconds in ASCII digits; the range is checked as the profile
    setting's is."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds, got {text!r}")
    return int(text)


def profile_names(**_: object) -> list[str]:
    """Shell completion of --profile: the profiles in the AWS config files."""
    from .._botoconfig import read_profiles

    try:
        return sorted(read_profiles(None)[3])
    except StsSessionError:
        return []


#: A sub-command's help ends with this; the whole story (the cache, its key, prompts) is in
#: the top-level help, once.
SEE_ALSO = f"where the cache and its key are, and how codes are asked for: {PROG} --help"


def subcommand(
    commands: Commands,
    name: str,
    help_text: str,
    *,
    profile: bool = True,
    **options: Any,
) -> argparse.ArgumentParser:
    """A sub-command's parser, with ``--profile`` (completed from the config files)."""
    sub: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description=options.pop("description", help_text),
        epilog=SEE_ALSO,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **options,
    )
    if profile:
        sub.add_argument(
            "--profile", help="profile in ~/.aws/config (default: AWS_PROFILE, then default)"
        ).completer = profile_names  # type: ignore[attr-defined]
    return sub


def credentials_options(sub: argparse.ArgumentParser) -> None:
    """The options of every command that may need an MFA code."""
    sub.add_argument(
        "--mfa-command",
        metavar="CMD",
        help="command printing the MFA code (run without a shell), e.g. "
        "'ykman oath accounts code -s aws'",
    )
    sub.add_argument(
        "--mfa-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="give up on an MFA code after this long (default: a command's 60 s, a "
        "dialog's 120 s, a terminal prompt's 300 s)",
    )
    sub.add_argument(
        "--prompt",
        choices=PROMPTS,
        default=None,
        help=f"where to ask for the code (default: {ENV_PROMPT}, else the first that "
        "works of the terminal, a desktop dialog)",
    )
    sub.add_argument(
        "--duration",
        type=duration,
        default=None,
        metavar="SECONDS",
        help="the role's duration for a role profile, the MFA session's otherwise "
        "(default: the profile's duration_seconds)",
    )
    sub.add_argument(
        "--no-mfa",
        action="store_true",
        help="a profile without mfa_serial is meant to get a session without MFA: do not "
        "warn about it",
    )
