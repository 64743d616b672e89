"""The ``aio-sts-session`` command: MFA-backed credentials from the shared encrypted cache for
every AWS tool (``credential-process``, ``env``, ``exec``, ``exec --server``, ``cache clear``).

Errors are one line on stderr and a non-zero exit status, never a traceback and never a secret
(``AIO_STS_SESSION_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._cache import EncryptedFileCache
from ._cachekey import ENV_KEY, cache_directory, describe_key_source, key_file_path
from ._callbacks import HOW_TO_PROVIDE_A_CODE, CommandCallback, TerminalPrompt
from ._engine import RefreshEngine
from ._models import MfaCallback, MfaRequest, SessionCredentials
from ._profiles import ProfileChain, build, read_chain
from ._role import AssumeRoleProvider
from ._server import ChildStartError
from ._text import quote
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
#: PowerShell treats these as single quotes too (U+2018, U+2019, U+201A, U+201B); each is
#: escaped, like ``'``, by doubling it.
POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"


class UsageError(StsSessionError):
    """A command line that cannot work (exit status 2)."""


def _epilog() -> str:
    return (
        f"cache: {cache_directory()} (encrypted; shared by every process of this user)\n"
        f"cache key: {describe_key_source()}\n"
        f"  (in this order: the environment variable {ENV_KEY}; the OS keyring when the\n"
        f"  'keyring' extra has a backend; else the key file {key_file_path()},\n"
        "  generated on first use, readable only by you, kept apart from the cache)\n"
        "MFA code: --mfa-command, else mfa_process in the profile, else a prompt on the\n"
        "  controlling terminal (/dev/tty), else an error saying how to provide one.\n"
        "~/.aws/config, to give every SDK these credentials:\n"
        "  [profile work]\n"
        f"  credential_process = {PROG} credential-process --profile work-mfa\n"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="MFA-backed AWS credentials from one shared, encrypted cache and one prompt.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "--profile", help="profile in ~/.aws/config (default: AWS_PROFILE, then default)"
        )
        sub.add_argument(
            "--mfa-command",
            metavar="CMD",
            help="command printing the MFA code (run without a shell), e.g. "
            "'ykman oath accounts code -s aws'",
        )
        sub.add_argument(
            "--mfa-timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="give up on an MFA code after this long (default: the command's 60 s; a "
            "terminal prompt waits)",
        )
        return sub

    add("credential-process", "print credentials as AWS credential_process JSON")
    env = add("env", "print credentials as environment variables")
    env.add_argument("--format", choices=["sh", "fish", "powershell", "json"], default="sh")
    run = add("exec", "run a command with the credentials (or a credential server)")
    run.add_argument(
        "--server",
        action="store_true",
        help="give the command a local credential endpoint (container-credentials protocol) "
        "that renews ahead of expiry, instead of keys",
    )
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    cache = commands.add_parser(
        "cache",
        help="manage the encrypted cache",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    clear = cache_commands.add_parser("clear", help="delete cached credentials")
    clear.add_argument("--profile", help="only this profile's entries (default: all)")
    return parser


# -- providers ----------------------------------------------------------------------------------


def _callback_factory(args: argparse.Namespace) -> Any:
    """The CLI's order: --mfa-command, else mfa_process, else the terminal, else an error."""

    def pick(mfa_process: str | None) -> MfaCallback:
        timeout = args.mfa_timeout or 60.0
        if args.mfa_command:
            return _command_callback(args.mfa_command, timeout, "--mfa-command")
        if mfa_process:
            return _command_callback(mfa_process, timeout, "mfa_process in the profile")
        prompt = TerminalPrompt()
        if prompt.available():
            return prompt
        return _no_code_source

    return pick


def _command_callback(command: str, timeout: float, setting: str) -> CommandCallback:
    try:
        return CommandCallback(command, timeout=timeout)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{setting}: {exc}") from None


async def _no_code_source(request: MfaRequest) -> str:
    raise MfaError(
        f"An MFA code is needed for {request.serial_number}, but there is no terminal and no "
        f"MFA command: {HOW_TO_PROVIDE_A_CODE}."
    )


def _open(
    args: argparse.Namespace, *, prefetch: float, stale: float
) -> tuple[RefreshEngine, ProfileChain]:
    from ._cachekey import resolve_cache_key

    chain = read_chain(args.profile)
    cache = EncryptedFileCache(cache_directory(), key=resolve_cache_key().key)
    options: dict[str, Any] = {"prefetch_seconds": prefetch, "stale_seconds": stale}
    if args.mfa_timeout is not None:
        options["mfa_timeout"] = args.mfa_timeout
    provider = build(chain, cache=cache, default_callback=_callback_factory(args), **options)
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


def _region(chain: ProfileChain) -> str | None:
    """The region for the command's tools: the named profile's, else its source's (the
    environment's own AWS_REGION is inherited otherwise)."""
    return chain.region or chain.source_region


def _credential_env(creds: SessionCredentials, region: str | None) -> dict[str, str]:
    env = {
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_SESSION_TOKEN": creds.session_token,
        "AWS_CREDENTIAL_EXPIRATION": _iso(creds),
    }
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    return env


def _iso(creds: SessionCredentials) -> str:
    return creds.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- commands -----------------------------------------------------------------------------------


async def credential_process(args: argparse.Namespace) -> int:
    provider, _ = _open(args, prefetch=SDK_WINDOW + MARGIN, stale=SDK_WINDOW + MARGIN)
    try:
        creds = await _fresh_enough(provider)
    finally:
        await provider.close()
    output = {
        "Version": 1,
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": _iso(creds),
    }
    sys.stdout.write(json.dumps(output) + "\n")
    return 0


def _quote(value: str, style: str) -> str:
    if style == "fish":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if style == "powershell":
        return "'" + "".join(c * 2 if c in POWERSHELL_QUOTES else c for c in value) + "'"
    return shlex.quote(value)


async def env_command(args: argparse.Namespace) -> int:
    provider, chain = _open(args, prefetch=SDK_WINDOW + MARGIN, stale=SDK_WINDOW + MARGIN)
    try:
        creds = await _fresh_enough(provider)
        env = _credential_env(creds, _region(chain))
    finally:
        await provider.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(env, indent=2) + "\n")
    elif args.format == "fish":
        sys.stdout.writelines(f"set -gx {k} {_quote(v, 'fish')};\n" for k, v in env.items())
    elif args.format == "powershell":
        sys.stdout.writelines(f"$Env:{k} = {_quote(v, 'powershell')}\n" for k, v in env.items())
    else:
        sys.stdout.writelines(f"export {k}={_quote(v, 'sh')}\n" for k, v in env.items())
    return 0


def _command(args: argparse.Namespace) -> list[str]:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError(f"exec needs a command: {PROG} exec --profile NAME -- CMD ARGS...")
    return argv


def _child_env(chain: ProfileChain) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SHADOWING}
    env[NESTED] = chain.name
    return env


async def exec_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]] | int:
    """Plain ``exec`` returns what to exec once the event loop is closed; ``--server`` runs
    the command itself and returns its exit status."""
    if os.environ.get(NESTED):
        raise UsageError(
            f"Already inside '{PROG} exec' (profile {quote(os.environ[NESTED])}): exit that shell "
            f"first (or unset {NESTED} if you really mean to nest)."
        )
    argv = _command(args)
    if args.server:
        from ._server import run_with_server

        provider, chain = _open(args, prefetch=SERVER_PREFETCH, stale=SDK_WINDOW + MARGIN)
        try:
            return await run_with_server(
                _chain_of(provider), argv, _child_env(chain), _region(chain)
            )
        finally:
            for member in _chain_of(provider):
                await member.close()
    provider, chain = _open(args, prefetch=SDK_WINDOW + MARGIN, stale=SDK_WINDOW + MARGIN)
    try:
        creds = await _fresh_enough(provider)
        env = _child_env(chain)
        env.update(_credential_env(creds, _region(chain)))
    finally:
        await provider.close()
    return argv, env


async def cache_clear(args: argparse.Namespace) -> int:
    # Deleting needs no cache key: entries are found by the hash of their entry key.
    cache = EncryptedFileCache(cache_directory(), key=EncryptedFileCache.generate_key())
    if args.profile is None:
        removed = await cache.clear()
        sys.stdout.write(f"removed {removed} cached credential(s) from {cache.directory}\n")
        return 0
    chain = read_chain(args.profile)
    provider = build(chain, cache=cache, default_callback=lambda _: _no_code_source)
    try:
        members = _chain_of(provider)
        for member in members:
            await cache.delete(await member._entry_key())
    finally:
        await provider.close()
    sys.stdout.write(
        f"removed the cached credentials of profile {quote(chain.name)} ({len(members)} "
        f"entr{'y' if len(members) == 1 else 'ies'}) from {cache.directory}\n"
    )
    return 0


async def dispatch(args: argparse.Namespace) -> tuple[list[str], dict[str, str]] | int:
    if args.command == "credential-process":
        return await credential_process(args)
    if args.command == "env":
        return await env_command(args)
    if args.command == "exec":
        return await exec_command(args)
    return await cache_clear(args)


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _no_core_dumps() -> Callable[[], None]:
    """A core dump of this process would hold the long-term secret and every session it
    handled: a credential helper turns them off (``RLIMIT_CORE`` 0, the soft limit only).
    Returns a function that gives the command ``exec`` runs the limit it had."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return lambda: None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    except (OSError, ValueError):  # pragma: no cover - refused by the platform
        return lambda: None

    def restore() -> None:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))

    return restore


def main(argv: Sequence[str] | None = None) -> int:
    restore_core_dumps = _no_core_dumps()
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logger.propagate = False
    debug = os.environ.get("AIO_STS_SESSION_DEBUG") == "1"
    try:
        outcome = asyncio.run(dispatch(args))
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {_one_line(exc)}\n")
        return 2
    except ChildStartError as exc:
        sys.stderr.write(f"{PROG}: error: {_one_line(exc)}\n")
        return exc.status
    except StsSessionError as exc:
        if debug:
            raise
        sys.stderr.write(f"{PROG}: error: {_one_line(exc)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as exc:
        if debug:
            raise
        sys.stderr.write(
            f"{PROG}: error: unexpected {type(exc).__name__}: {_one_line(exc)} (set "
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
