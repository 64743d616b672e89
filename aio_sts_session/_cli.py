"""The ``aio-sts-session`` command: MFA-backed credentials from the shared encrypted cache for
every AWS tool (``credential-process``, ``env``, ``exec``, ``exec --server``, ``status``,
``cache clear``).

Errors are one line on stderr and a non-zero exit status (2 for a command line that cannot
work), in the command line's own words (:mod:`._advice`), never a traceback and never a secret
(``AIO_STS_SESSION_DEBUG=1`` shows the traceback). ``credential-process`` and ``env`` are
answered by :mod:`._warm` when the cache can; this is the full path.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import _warm
from ._advice import AdviceFormatter, UsageError, describe, one_line
from ._cache import EncryptedFileCache
from ._cachekey import ENV_KEY, cache_directory, describe_key_source, key_file_path
from ._callbacks import (
    DIALOGS,
    HOW_TO_PROVIDE_A_CODE,
    CommandCallback,
    DialogPrompt,
    TerminalPrompt,
)
from ._engine import RefreshEngine
from ._models import MfaCallback, MfaRequest, SessionCredentials
from ._output import credential_env, credential_process_json, render_env
from ._profiles import ProfileChain, read_chain
from ._provider import build
from ._role import AssumeRoleProvider
from ._server import ChildStartError
from ._text import quote
from ._version import __version__
from .exceptions import ConfigurationError, MfaError, StsSessionError

__all__ = ["main"]

PROG = "aio-sts-session"
logger = logging.getLogger("aio_sts_session")

#: botocore (and the other SDKs) fetch again on every call once less than 15 minutes are left:
#: hand out credentials with more than this left whenever their lifetime allows.
SDK_WINDOW = 15 * 60
MARGIN = 60
#: The credential server renews this long before expiry (the MFA session's prompt appears
#: then, while the command keeps running), and never serves less than SDK_WINDOW + MARGIN.
SERVER_PREFETCH = 25 * 60
#: The prompt driver, as ``--prompt``.
ENV_PROMPT = "AIO_STS_SESSION_PROMPT"
PROMPTS = ("terminal", *DIALOGS, "command")
#: A dialog waits this long for a person unless --mfa-timeout says otherwise.
DIALOG_TIMEOUT = 120.0
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


def _epilog() -> str:
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


def _seconds(text: str) -> float:
    """``--mfa-timeout``: a positive number of seconds (else exit 2, naming the flag)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _duration(text: str) -> int:
    """``--duration``: whole seconds; the range is checked as the profile setting's is."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds, got {text!r}")
    return int(text)


def _profile_names(**_: object) -> list[str]:
    """Shell completion of --profile: the profiles in the AWS config files."""
    from ._aiobotocore import read_profiles

    try:
        return sorted(read_profiles(None)[3])
    except StsSessionError:
        return []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="MFA-backed AWS credentials from one shared, encrypted cache and one prompt.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, **options: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **options,
        )
        sub.add_argument(
            "--profile", help="profile in ~/.aws/config (default: AWS_PROFILE, then default)"
        ).completer = _profile_names  # type: ignore[attr-defined]
        return sub

    def credentials_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--mfa-command",
            metavar="CMD",
            help="command printing the MFA code (run without a shell), e.g. "
            "'ykman oath accounts code -s aws'",
        )
        sub.add_argument(
            "--mfa-timeout",
            type=_seconds,
            default=None,
            metavar="SECONDS",
            help="give up on an MFA code after this long (default: a command's 60 s, a "
            "dialog's 120 s; a terminal prompt waits)",
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
            type=_duration,
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

    credentials_options(
        add("credential-process", "print credentials as AWS credential_process JSON")
    )
    env = add("env", "print credentials as environment variables for a shell")
    credentials_options(env)
    env.add_argument("--format", choices=["sh", "fish", "powershell", "json"], default="sh")
    env.add_argument("--region", help=REGION_HELP)
    run = add(
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
    status = add(
        "status",
        "show each profile this tool can serve and its cached credentials (reads only: no "
        "prompt, no STS call, no key)",
        aliases=["list"],
    )
    status.add_argument("--json", action="store_true", help="a JSON list of objects")
    keys = commands.add_parser(
        "add",
        help="keep a profile's long-term keys in the OS keyring (checked with STS first)",
        description="keep a profile's long-term keys (an IAM user's access key id and secret) "
        "in the OS keyring, checked with STS first; read from the terminal without echo, or "
        "from standard input (two lines) when it is not a terminal, never from the command "
        "line",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keys.add_argument("profile_name", metavar="PROFILE").completer = _profile_names  # type: ignore[attr-defined]
    keys.add_argument(
        "--from-credentials-file",
        action="store_true",
        help="take them from the profile's section of the shared credentials file",
    )
    keys.add_argument(
        "--remove-plaintext",
        action="store_true",
        help="then remove those two lines from that file (the rest kept byte for byte)",
    )
    keys.add_argument("--force", action="store_true", help="replace keys already stored")
    remove = commands.add_parser(
        "remove",
        help="delete a profile's keys from the keyring, and its cached credentials",
        description="delete a profile's keys from the keyring, and its cached credentials",
    )
    remove.add_argument("profile_name", metavar="PROFILE").completer = _profile_names  # type: ignore[attr-defined]
    rotate = commands.add_parser(
        "rotate",
        help="replace a profile's access key with a new one (IAM, on the MFA session)",
        description="create a new access key for the IAM user (on the MFA session), keep it "
        "in the keyring, check it with STS, then delete the old one; a role profile rotates "
        "its source profile's keys",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rotate.add_argument("profile_name", metavar="PROFILE").completer = _profile_names  # type: ignore[attr-defined]
    credentials_options(rotate)
    cache = commands.add_parser(
        "cache",
        help="manage the encrypted cache",
        description="manage the encrypted cache",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    clear = cache_commands.add_parser(
        "clear",
        help="delete cached credentials",
        description="delete cached credentials: all of them, or a profile's",
    )
    clear.add_argument(
        "--profile", help="only this profile's credentials (default: all)"
    ).completer = _profile_names  # type: ignore[attr-defined]
    clear.add_argument(
        "--session",
        action="store_true",
        help="with --profile of a role: the MFA session beneath it too, which every profile "
        "on it shares (the next of them costs a code)",
    )
    return parser


REGION_HELP = (
    "the region handed to the command (default: AWS_REGION or AWS_DEFAULT_REGION if set, "
    "else the profile's region, else its source profile's)"
)


# -- providers ----------------------------------------------------------------------------------


def _chosen_prompt(args: argparse.Namespace) -> str | None:
    chosen = getattr(args, "prompt", None)
    if chosen is None:
        chosen = os.environ.get(ENV_PROMPT) or None
        if chosen is not None and chosen not in PROMPTS:
            raise UsageError(
                f"{ENV_PROMPT}={quote(chosen)} is not a prompt: use one of {', '.join(PROMPTS)}."
            )
    return chosen


def _callback_factory(args: argparse.Namespace) -> Any:
    """Who asks for the code: --mfa-command, else mfa_process, else --prompt (or
    AIO_STS_SESSION_PROMPT), else the terminal, else a desktop dialog, else an error."""
    chosen = _chosen_prompt(args)
    if chosen not in (None, "command") and args.mfa_command:
        raise UsageError(f"--prompt {chosen} and --mfa-command disagree: give one of them.")

    def pick(mfa_process: str | None) -> MfaCallback:
        command_timeout = args.mfa_timeout or 60.0
        if chosen in (None, "command"):
            if args.mfa_command:
                return _command_callback(args.mfa_command, command_timeout, "--mfa-command")
            if mfa_process:
                return _command_callback(mfa_process, command_timeout, "mfa_process")
            if chosen == "command":
                raise UsageError(
                    "--prompt command needs a command: --mfa-command CMD, or mfa_process in "
                    "the profile."
                )
        if chosen == "terminal":
            return TerminalPrompt()
        if chosen in DIALOGS:
            if not DialogPrompt.usable(chosen):
                raise UsageError(
                    f"--prompt {chosen}: {DIALOGS[chosen]} is not on PATH or there is no "
                    "display (DISPLAY or WAYLAND_DISPLAY)."
                )
            return DialogPrompt(chosen, timeout=args.mfa_timeout or DIALOG_TIMEOUT)
        prompt = TerminalPrompt()
        if prompt.available():
            return prompt
        for dialog in DIALOGS:
            if DialogPrompt.usable(dialog):
                return DialogPrompt(dialog, timeout=args.mfa_timeout or DIALOG_TIMEOUT)
        return _no_code_source

    return pick


def _command_callback(command: str, timeout: float, setting: str) -> CommandCallback:
    try:
        return CommandCallback(command, timeout=timeout)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{setting}: {exc}") from None


async def _no_code_source(request: MfaRequest) -> str:
    raise MfaError(
        f"An MFA code is needed for {request.serial_number}, but there is no terminal, no "
        f"display for a dialog and no MFA command: {HOW_TO_PROVIDE_A_CODE}."
    )


def _open(
    args: argparse.Namespace, *, prefetch: float, stale: float
) -> tuple[RefreshEngine, ProfileChain]:
    from ._cachekey import resolve_cache_key

    chain = read_chain(args.profile)
    callbacks = _callback_factory(args)
    cache = EncryptedFileCache(cache_directory(), key=resolve_cache_key().key)
    options: dict[str, Any] = {"prefetch_seconds": prefetch, "stale_seconds": stale}
    if args.mfa_timeout is not None:
        options["mfa_timeout"] = args.mfa_timeout
    if args.duration is not None:
        options["duration_seconds"] = args.duration
    try:
        provider = build(chain, cache=cache, default_callback=callbacks, **options)
    except ConfigurationError as exc:
        if args.duration is not None and "duration_seconds" in str(exc):
            raise UsageError(f"--duration {args.duration}: {exc}") from None
        raise
    if chain.mfa_serial is None and not args.no_mfa:
        logger.warning(
            "Profile %s has no mfa_serial: its credentials come without MFA (add mfa_serial "
            "to the profile, or pass --no-mfa if that is what you want).",
            quote(chain.name),
        )
    return provider, chain


def _chain_of(provider: RefreshEngine) -> list[RefreshEngine]:
    """The provider and every provider it is made from (role, ..., MFA session)."""
    chain = [provider]
    while isinstance(chain[-1], AssumeRoleProvider):
        chain.append(chain[-1].source)
    return chain


async def _fresh_enough(provider: RefreshEngine) -> SessionCredentials:
    """Credentials with more than the SDKs' 15-minute window left when their lifetime allows
    (else the SDK would run this again on every call)."""
    creds = await provider.credentials()
    token = provider._snap.token
    if (
        token is not None
        and token.expires_at - provider._clock() < SDK_WINDOW + MARGIN
        and token.lifetime > SDK_WINDOW + 2 * MARGIN
    ):
        creds = await provider.refresh()
    for member in _chain_of(provider):
        await member._settle()
    return creds


def _region(args: argparse.Namespace, chain: ProfileChain) -> str | None:
    """The region for the command, as the AWS CLI decides it: ``--region``, else a region
    already in the environment (``AWS_REGION``, ``AWS_DEFAULT_REGION``), else the named
    profile's, else its source profile's."""
    return (
        getattr(args, "region", None)
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or chain.region
        or chain.source_region
    )


def _credential_env(creds: SessionCredentials, region: str | None) -> dict[str, str]:
    return credential_env(
        creds.access_key_id,
        creds.secret_access_key,
        creds.session_token,
        creds.expiration,
        region,
    )


# -- commands -----------------------------------------------------------------------------------


def _recorder(args: argparse.Namespace) -> _warm.Recorder:
    return _warm.Recorder.start(
        _warm.Request(
            args.command,
            args.profile,
            getattr(args, "format", "sh"),
            duration=args.duration,
            region=getattr(args, "region", None),
        )
    )


async def credential_process(args: argparse.Namespace) -> int:
    record = _recorder(args)
    provider, chain = _open(args, prefetch=SDK_WINDOW + MARGIN, stale=SDK_WINDOW + MARGIN)
    try:
        creds = await _fresh_enough(provider)
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
    provider, chain = _open(args, prefetch=SDK_WINDOW + MARGIN, stale=SDK_WINDOW + MARGIN)
    try:
        creds = await _fresh_enough(provider)
        region = _region(args, chain)
        await record.finish(provider, chain, region=region)
    finally:
        await provider.close()
    sys.stdout.write(render_env(_credential_env(creds, region), args.format))
    return 0


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
        from ._server import run_with_server

        provider, chain = _open(args, prefetch=SERVER_PREFETCH, stale=SDK_WINDOW + MARGIN)
        try:
            return await run_with_server(
                _chain_of(provider), argv, _child_env(chain), _region(args, chain)
            )
        finally:
            for member in _chain_of(provider):
                await member.close()
    provider, chain = _open(args, prefetch=SDK_WINDOW + MARGIN, stale=SDK_WINDOW + MARGIN)
    try:
        creds = await _fresh_enough(provider)
        env = _child_env(chain)
        env.update(_credential_env(creds, _region(args, chain)))
    finally:
        await provider.close()
    return argv, env


async def status_command(args: argparse.Namespace) -> int:
    from ._status import profile_rows, render_rows

    rows = await profile_rows(args.profile)
    sys.stdout.write(render_rows(rows, as_json=args.json))
    return 0


async def cache_clear(args: argparse.Namespace) -> int:
    # Deleting needs no cache key: entries are found by the hash of their entry key.
    cache = EncryptedFileCache(cache_directory(), key=EncryptedFileCache.generate_key())
    if args.profile is None:
        if args.session:
            raise UsageError("--session goes with --profile (without it, everything is cleared).")
        removed = await cache.clear()
        if cache.directory.is_dir():
            _warm.clear_records(cache.directory)
        sys.stdout.write(f"removed {_entries(removed)} from {cache.directory}\n")
        return 0
    chain = read_chain(args.profile)
    provider = build(chain, cache=cache, default_callback=lambda _: _no_code_source)
    try:
        members = _chain_of(provider)
        if not args.session and len(members) > 1:
            members = members[:-1]  # the roles; the MFA session beneath is shared
        removed = 0
        for member in members:
            removed += await cache.remove(await member._entry_key())
    finally:
        await provider.close()
    message = f"removed {_entries(removed)} of profile {quote(chain.name)} from {cache.directory}"
    if chain.roles and not args.session:
        message += " (the MFA session beneath it is kept: --session removes it too)"
    elif chain.roles:
        from ._status import profiles_on_session

        others = [p for p in profiles_on_session(chain) if p != chain.name]
        if others:
            message += f"; the next run of {', '.join(others)} asks for a code"
    sys.stdout.write(message + "\n")
    return 0


def _entries(count: int) -> str:
    return f"{count} cached credential{'' if count == 1 else 's'}"


async def dispatch(args: argparse.Namespace) -> tuple[list[str], dict[str, str]] | int:
    if args.command == "credential-process":
        return await credential_process(args)
    if args.command == "env":
        return await env_command(args)
    if args.command == "exec":
        return await exec_command(args)
    if args.command in ("status", "list"):
        return await status_command(args)
    if args.command in ("add", "remove", "rotate"):
        from . import _keycmds

        if args.command == "add":
            return await _keycmds.add_command(args)
        if args.command == "remove":
            return await _keycmds.remove_command(args)
        return await _keycmds.rotate_command(
            args, lambda a: _open(a, prefetch=SDK_WINDOW + MARGIN, stale=SDK_WINDOW + MARGIN)
        )
    return await cache_clear(args)


def main(argv: Sequence[str] | None = None) -> int:
    restore_core_dumps = _warm.no_core_dumps()
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (argcomplete)
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(AdviceFormatter(f"{PROG}: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logger.propagate = False
    debug = os.environ.get("AIO_STS_SESSION_DEBUG") == "1"
    try:
        outcome = asyncio.run(dispatch(args))
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {describe(exc)}\n")
        return 2
    except ChildStartError as exc:
        sys.stderr.write(f"{PROG}: error: {describe(exc)}\n")
        return exc.status
    except StsSessionError as exc:
        if debug:
            raise
        sys.stderr.write(f"{PROG}: error: {describe(exc)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as exc:
        if debug:
            raise
        sys.stderr.write(
            f"{PROG}: error: unexpected {type(exc).__name__}: {one_line(exc)} (set "
            "AIO_STS_SESSION_DEBUG=1 for a traceback)\n"
        )
        return 1
    if isinstance(outcome, int):
        return outcome
    command, env = outcome
    sys.stdout.flush()
    restore_core_dumps()  # the command's own limit; it holds no long-term key
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        sys.stderr.write(f"{PROG}: error: cannot run {quote(command[0])}: {exc.strerror}\n")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 0  # pragma: no cover - execvpe does not return
