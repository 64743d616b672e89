"""``aio-sts-session add``, ``remove`` and ``rotate``: an IAM user's long-term keys kept in the
OS keyring (:mod:`._keys`) instead of plain text.

The secret is never in argv, a child's environment, a log record, a message or a ``repr``: it
is read from the terminal without echo, or from standard input when that is not a terminal.
Before anything is stored the keys are checked with STS (``GetCallerIdentity``, which needs
no permission). ``rotate`` never leaves the keyring without a working key: each failing step
says what changed and which key id is left to delete by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import _keys
from .._botoconfig import read_profiles
from .._cache import EncryptedFileCache
from .._cachekey import cache_directory, describe_backend
from .._entry import make_private_directory
from .._keys import KeyPair
from .._profiles import read_chain
from .._provider import SessionTokenProvider, build
from .._sts import SourceKeys, call_get_caller_identity
from .._text import printable, quote
from ..exceptions import ConfigurationError, SourceCredentialsError, StsSessionError
from ..integrations.aiobotocore import StsClientFactory, new_session
from .advice import UsageError
from .options import Commands, credentials_options, profile_names, subcommand
from .prompts import no_code_source
from .providers import chain_of, open_provider

__all__ = ["add_command", "register", "remove_command", "rotate_command"]

TTY = "/dev/tty"
#: ``rotate`` checks a new key this many times (IAM takes a few seconds to accept it),
#: waiting 0.5, 1, 1.5 … s in between: 7.5 s at most.
VERIFY_ATTEMPTS = 6
VERIFY_DELAY = 0.5


def register(commands: Commands) -> None:
    add = subcommand(
        commands,
        "add",
        "keep a profile's long-term keys in the OS keyring (checked with STS first)",
        profile=False,
        description="keep a profile's long-term keys (an IAM user's access key id and secret) "
        "in the OS keyring, checked with STS first; read from the terminal without echo, or "
        "from standard input (two lines) when it is not a terminal, never from the command "
        "line",
    )
    _profile_argument(add)
    add.add_argument(
        "--from-credentials-file",
        action="store_true",
        help="take them from the profile's section of the shared credentials file",
    )
    add.add_argument(
        "--remove-plaintext",
        action="store_true",
        help="then remove those two lines from that file (the rest kept byte for byte)",
    )
    add.add_argument("--force", action="store_true", help="replace keys already stored")
    add.set_defaults(run=add_command)
    remove = subcommand(
        commands,
        "remove",
        "delete a profile's keys from the keyring, and its cached credentials",
        profile=False,
    )
    _profile_argument(remove)
    remove.set_defaults(run=remove_command)
    rotate = subcommand(
        commands,
        "rotate",
        "replace a profile's access key with a new one (IAM, on the MFA session)",
        profile=False,
        description="create a new access key for the IAM user (on the MFA session), keep it "
        "in the keyring, check it with STS, then delete the old one; a role profile rotates "
        "its source profile's keys",
    )
    _profile_argument(rotate)
    credentials_options(rotate)
    rotate.set_defaults(run=rotate_command)


def _profile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile_name", metavar="PROFILE").completer = profile_names  # type: ignore[attr-defined]


class KeysError(StsSessionError):
    """A key command failed: the message says what changed and what is left to do."""


def _say(message: str) -> None:
    sys.stderr.write(f"aio-sts-session: {printable(message)}\n")
    sys.stderr.flush()


# -- reading the keys ----------------------------------------------------------------------------


def _ask_terminal(question: str) -> str | None:
    """Ask on the controlling terminal; its answer (one line), or ``None`` without one."""
    try:
        fd = os.open(TTY, os.O_RDWR | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return None
    try:
        os.write(fd, question.encode())
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            answer += chunk
        return answer.decode(errors="replace").strip()
    finally:
        os.close(fd)


def _ask_yes(question: str) -> bool:
    return (_ask_terminal(question) or "").lower() in ("y", "yes")


NO_KEYS_GIVEN = (
    "No keys were given: run it from a terminal (it asks for them, the secret without echo), "
    "or give them on standard input, two lines: the access key id, then the secret (e.g. "
    "from a password manager: pass show aws/alice | aio-sts-session add alice)."
)


def _read_keys(args: argparse.Namespace) -> KeyPair:
    if args.from_credentials_file:
        return _from_credentials_file(args.profile_name)
    stdin = sys.stdin
    try:
        if stdin is None or not stdin.isatty():  # two lines: the key id, then the secret
            lines = stdin.read().splitlines() if stdin is not None else []
            if len(lines) < 2:
                raise ConfigurationError(NO_KEYS_GIVEN)
            return _checked(lines[0].strip(), lines[1].strip())
        import getpass

        key_id = _ask_terminal("AWS access key id: ")
        if key_id is None:  # standard input is a terminal, but not ours to ask on
            raise ConfigurationError(NO_KEYS_GIVEN)
        secret = getpass.getpass("AWS secret access key (not shown): ")  # /dev/tty, no echo
    except ConfigurationError:
        raise
    except (EOFError, OSError, ValueError):  # closed, at its end, not readable
        raise ConfigurationError(NO_KEYS_GIVEN) from None
    return _checked(key_id, secret.strip())


def _checked(key_id: str, secret: str) -> KeyPair:
    if key_id.startswith("ASIA"):
        raise ConfigurationError(
            f"{quote(key_id)} is a temporary access key id (ASIA…): store an IAM user's "
            "long-term key (AKIA…)."
        )
    if not (key_id.isalnum() and 16 <= len(key_id) <= 128) or not secret or " " in secret:
        raise ConfigurationError(
            f"{quote(key_id)} and the secret given are not an access key id (AKIA…, letters "
            "and digits) and its secret: check what was pasted."
        )
    return KeyPair(key_id, secret)


def _credentials_file() -> Path:
    import botocore.session

    value = botocore.session.Session().get_config_variable("credentials_file")
    return Path(os.path.expanduser(os.path.expandvars(str(value))))


def _from_credentials_file(profile: str) -> KeyPair:
    import botocore.configloader

    path = _credentials_file()
    try:
        section = botocore.configloader.raw_config_parse(str(path)).get(profile, {})
    except BotoCoreError as exc:
        raise ConfigurationError(f"The credentials file {path} cannot be read: {exc}") from None
    key_id, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    if not key_id or not secret:
        raise ConfigurationError(
            f"[{profile}] in {path} has no aws_access_key_id and aws_secret_access_key."
        )
    return _checked(str(key_id), str(secret))


# -- checking the keys with STS ----------------------------------------------------------------


def _factory(profile: str) -> StsClientFactory:
    """An STS client factory following ``profile``'s settings (its region and endpoints) if
    it is in the config files, else the default ones."""
    session, name, _, profiles, _ = read_profiles(profile)
    if name in profiles:
        session.set_config_variable("profile", name)
    return StsClientFactory(
        region_name=None,
        endpoint_url=None,
        config=None,
        session_for=lambda: session,
        use_session_region=lambda: True,
    )


async def check_keys(profile: str, keys: KeyPair) -> str:
    """The IAM identity (ARN) ``keys`` belong to, by STS ``GetCallerIdentity``; raises
    :class:`SourceCredentialsError` if STS refuses them."""
    factory = _factory(profile)
    source = SourceKeys(keys.access_key_id, keys.secret_access_key, None, "keyring")
    try:
        client = await factory.get(source)
        _, arn = await call_get_caller_identity(client, key_id=keys.access_key_id)
    finally:
        await factory.close()
    return arn


# -- add, remove -------------------------------------------------------------------------------


def _check_profile_exists(profile: str, force: bool) -> None:
    """Keys for a profile that is in neither AWS file would be read by nothing: a typo."""
    _, _, _, profiles, where = read_profiles(profile)
    if profile not in profiles and not force:
        found = ", ".join(sorted(profiles)) or "none"
        raise UsageError(
            f"Profile {quote(profile)} is not in {where} (profiles found: {found}). Add "
            f"[profile {profile}] with its mfa_serial to the config file first, or pass --force "
            "to store its keys anyway."
        )


async def add_command(args: argparse.Namespace) -> int:
    profile = args.profile_name
    if args.remove_plaintext and not args.from_credentials_file:
        raise UsageError("--remove-plaintext goes with --from-credentials-file.")
    backend = _keys.usable_backend()  # no backend: one line saying which to install
    _check_profile_exists(profile, args.force)
    existing = _keys.stored_key_id(profile)
    question = f"Profile {profile} already has keys in the keyring ({existing}): replace them? "
    if existing is not None and not args.force and not _ask_yes(question + "[y/N] "):
        raise UsageError(
            f"Profile {quote(profile)} already has keys in the keyring ({existing}): pass "
            "--force to replace them."
        )
    keys = _read_keys(args)
    arn = await check_keys(profile, keys)
    await asyncio.to_thread(_keys.store_keys, profile, keys)
    where = describe_backend(backend)
    _say(f"stored the keys of profile {profile} ({keys.access_key_id}, {arn})")
    _say(f"in the keyring ({where})")
    if args.remove_plaintext:
        return _remove_plaintext(profile, keys)
    return 0


def _remove_plaintext(profile: str, keys: KeyPair) -> int:
    """Remove the profile's key lines from the credentials file; success only once the secret
    is in no file botocore reads (exit status 1 otherwise, saying where it still is)."""
    from .._botoconfig import aws_file_paths
    from .plaintext import remove_plaintext, secret_locations

    path = _credentials_file()
    removal = remove_plaintext(path, profile)
    through = f" (through the link to {removal.edited})" if removal.edited != path else ""
    left = secret_locations([Path(p) for p in aws_file_paths() if p], keys.secret_access_key)
    if left:
        raise KeysError(
            f"Removed {removal.lines} plain-text line(s) of [{profile}] from {path}{through}, "
            f"but the same secret is still in {', '.join(left)}: remove it there by hand (the "
            "keys are in the keyring)."
        )
    _say(f"removed {removal.lines} plain-text line(s) of [{profile}] from {path}{through}")
    return 0


async def _cached_entries(profile: str) -> list[str]:
    """The cache entry keys of ``profile``'s chain (role, …, MFA session), without the secret."""
    try:
        chain = read_chain(profile)
    except ConfigurationError:
        return []
    if chain.keys is None:
        return []
    provider = build(chain, cache=None, default_callback=lambda _: no_code_source)
    try:
        return [await member.entry_key() for member in chain_of(provider)]
    finally:
        await provider.close()


async def _drop_entries(entries: list[str]) -> int:
    if not entries:
        return 0
    cache = EncryptedFileCache(cache_directory(), key=EncryptedFileCache.generate_key())
    return sum([await cache.remove(entry) for entry in entries])


async def remove_command(args: argparse.Namespace) -> int:
    profile = args.profile_name
    entries = await _cached_entries(profile) if _keys.stored_key_id(profile) else []
    existed = await asyncio.to_thread(_keys.delete_keys, profile)
    dropped = await _drop_entries(entries)
    if not existed:
        _say(f"profile {profile} had no keys in the keyring")
        return 1
    _say(f"removed the keys of profile {profile} from the keyring")
    _say(f"and {dropped} cached credential(s)")
    return 0


# -- rotate ------------------------------------------------------------------------------------


def _user_name(arn: str) -> str:
    """``alice`` from ``arn:aws:iam::123456789012:user/path/alice``."""
    if ":user/" not in arn:
        raise ConfigurationError(
            f"The keys belong to {arn}, not an IAM user: only an IAM user's keys can be rotated."
        )
    return arn.rsplit("/", 1)[-1]


def _iam_error(exc: ClientError) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    return str(error.get("Code", "")), str(error.get("Message", ""))


async def rotate_command(args: argparse.Namespace) -> int:
    """The profile's provider is opened as credential-process opens it (its prompt, its
    cache): the MFA session signs the IAM calls."""
    profile = args.profile_name
    chain = read_chain(profile)
    root = chain.root
    if chain.roles:
        _say(f"profile {profile} assumes a role: rotating the keys of its source profile {root}")
    if chain.key_source != "keyring":
        raise ConfigurationError(
            f"The keys of profile {quote(root)} are in the {chain.key_source}: rotate works on "
            f"keys kept in the keyring; first run 'aio-sts-session add {root} "
            "--from-credentials-file --remove-plaintext'."
        )
    with _one_rotation(root):
        held = await asyncio.to_thread(_keys.load_keys, root)  # read once the lock is held
        return await _rotate(args, profile, root, held)


@contextlib.contextmanager
def _one_rotation(profile: str) -> Iterator[None]:
    """One rotation of a profile's keys at a time (across processes): a second one would
    create a key beside the first one's brand-new key and could name it as the one to
    delete."""
    import filelock

    directory = _keys.keys_directory()
    make_private_directory(directory)
    path = directory / (_keys.index_name(profile)[: -len(".json")] + ".rotating")
    lock = filelock.FileLock(str(path), timeout=0, mode=0o600)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise KeysError(
            f"Another rotation of the keys of profile {quote(profile)} is running (lock "
            f"{path}): let it finish, then check with 'aio-sts-session status'. Nothing "
            "changed."
        ) from None
    try:
        yield
    finally:
        lock.release()


async def _rotate(args: argparse.Namespace, profile: str, root: str, old: KeyPair) -> int:
    old_entries = await _cached_entries(profile)
    args.profile = profile
    provider, _ = open_provider(args)
    members = chain_of(provider)
    session = members[-1]
    assert isinstance(session, SessionTokenProvider)
    try:
        await session.credentials()  # the MFA session, before anything: IAM demands MFA
        arn = await check_keys(root, old)
        user = _user_name(arn)
        iam_session = session.attach(new_session(root))  # signed with the MFA session
        async with iam_session.create_client("iam") as iam:
            new = await _create_key(iam, user, old, root)
            await asyncio.to_thread(_keys.store_keys, root, new)
            _say(f"stored the new key {new.access_key_id} of user {user} in the keyring")
            if not await _works(root, new):
                await asyncio.to_thread(_keys.store_keys, root, old)
                raise KeysError(
                    f"The new key {new.access_key_id} was still refused after "
                    f"{VERIFY_ATTEMPTS} checks; the keyring holds the old key "
                    f"{old.access_key_id} again (still active). Delete the new one by hand: "
                    f"aws iam delete-access-key --user-name {user} --access-key-id "
                    f"{new.access_key_id}"
                )
            try:
                await iam.delete_access_key(UserName=user, AccessKeyId=old.access_key_id)
            except (ClientError, BotoCoreError) as exc:
                what = _iam_error(exc)[0] if isinstance(exc, ClientError) else type(exc).__name__
                raise KeysError(
                    f"Deleting the old key failed ({what}); the keyring holds the new key "
                    f"{new.access_key_id}, which works. Delete the old one by hand: aws iam "
                    f"delete-access-key --user-name {user} --access-key-id {old.access_key_id}"
                ) from None
    finally:
        for member in members:
            await member.close()
    dropped = await _drop_entries(old_entries)
    _say(
        f"rotated the keys of profile {root}: {old.access_key_id} deleted, "
        f"{new.access_key_id} in use; {dropped} cached credential(s) of the old key dropped"
    )
    return 0


async def _create_key(iam: Any, user: str, old: KeyPair, profile: str) -> KeyPair:
    try:
        answer = await iam.create_access_key(UserName=user)
    except ClientError as exc:
        code, message = _iam_error(exc)
        if code == "LimitExceeded":
            listed = await iam.list_access_keys(UserName=user)
            ids = [k["AccessKeyId"] for k in listed.get("AccessKeyMetadata", [])]
            raise KeysError(await _two_keys_advice(user, ids, old, profile)) from None
        raise KeysError(
            f"IAM refused CreateAccessKey for user {user} ({code}: {message[:120]}). Nothing "
            "changed."
        ) from None
    except BotoCoreError as exc:
        raise KeysError(
            f"IAM could not be reached ({type(exc).__name__}). Nothing changed."
        ) from None
    created = answer["AccessKey"]
    return KeyPair(str(created["AccessKeyId"]), str(created["SecretAccessKey"]))


async def _two_keys_advice(user: str, ids: list[str], old: KeyPair, profile: str) -> str:
    """What to do when the user has two keys already: a key is named as the one to delete
    only once the keyring has been read, and only if it is not the one the keyring holds."""
    try:
        held = (await asyncio.to_thread(_keys.load_keys, profile)).access_key_id
    except StsSessionError:
        held = None
    listed = ", ".join(ids)
    if held != old.access_key_id:
        return (
            f"User {user} already has two access keys ({listed}), and the keyring's key of "
            f"profile {quote(profile)} is no longer the one this rotation started from "
            "(another tool changed it?): check which key is in use with 'aio-sts-session "
            "status' before deleting either. Nothing changed."
        )
    others = [k for k in ids if k != held]
    return (
        f"User {user} already has two access keys ({listed}); the keyring holds {held}: "
        f"delete the other ({', '.join(others) or 'the one not in use'}) with aws iam "
        "delete-access-key, then retry. Nothing changed."
    )


async def _works(profile: str, keys: KeyPair) -> bool:
    """Whether STS accepts ``keys``, checked up to VERIFY_ATTEMPTS times (IAM's eventual
    consistency), with a progress line."""
    for attempt in range(1, VERIFY_ATTEMPTS + 1):
        try:
            await check_keys(profile, keys)
            return True
        except SourceCredentialsError:
            if attempt == VERIFY_ATTEMPTS:
                return False
            _say(
                f"IAM has not activated {keys.access_key_id} yet (check {attempt}/"
                f"{VERIFY_ATTEMPTS}); waiting…"
            )
            await asyncio.sleep(VERIFY_DELAY * attempt)
    return False  # pragma: no cover
