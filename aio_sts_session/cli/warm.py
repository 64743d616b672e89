"""The command line's warm path: ``credential-process`` and ``env`` answered from the encrypted
cache at the interpreter's floor, without asyncio, botocore, filelock or aiobotocore.

Every AWS command pays for ``credential_process``; on a warm cache all the work is to find the
profile's entry, read a file of a few hundred bytes, decrypt it and print JSON. Finding the
entry is the hard part (botocore resolves the profile chain, the region, the endpoint, the
keys), so the warm path never does it: it replays what the full path found.

**The warm record.** When the full path (:mod:`._cli`) has served ``credential-process`` or
``env``, it writes a record in the cache directory, encrypted with the cache key, named by a
fingerprint of every input that could change the answer: the command, ``--profile``,
``--duration`` and ``--region``, every ``AWS_*`` and ``AIO_STS_SESSION_*`` environment
variable (profile, files, region, endpoints, keys), ``HOME``, the login name,
``XDG_CACHE_HOME`` and ``XDG_CONFIG_HOME``, the user id, the package version and the cache
key itself (the fingerprint is an HMAC keyed with it: nothing in a record's name reveals an
input). The record holds the entry key the full path used, the region it printed, and the
identity (device, inode, size, modification and change times) of the two AWS files botocore
read and of the keyring's index of long-term keys (:mod:`._keys`), taken *before* they were
read.

**The fallback rules.** The warm path serves only when all of these hold, and otherwise steps
aside to the full path, which decides and writes a new record: the command line is one it
recognises (``credential-process`` or ``env`` with ``--profile``, ``--duration``,
``--mfa-command``, ``--mfa-timeout``, ``--prompt``, ``--no-mfa``, and for ``env``
``--format`` and ``--region``; anything else, ``-v`` included, goes to the full path); the
cache directory is the user's own; the cache key can be read without creating anything; a
record exists for this fingerprint and decrypts; both AWS files are unchanged; the entry
exists, is a regular file, decrypts, and has more than the renewal margin (16 minutes) left.
Any error at all is a reason to step aside.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _entry
from .._version import __version__

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from .._engine import RefreshEngine
    from .._profiles import ProfileChain

__all__ = [
    "RENEWAL_MARGIN",
    "Recorder",
    "Request",
    "answer",
    "clear_records",
    "no_core_dumps",
    "recognise",
    "serve",
]

#: The full path renews credentials with less than this left (the SDKs' 15-minute window plus
#: a minute): the warm path serves only credentials with more.
RENEWAL_MARGIN = 16 * 60
#: Bumped whenever what a record means changes.
RECORD_FORMAT = 1
RECORD_SUFFIX = ".warm"
#: Records not rewritten for this long are deleted when a new one is written.
RECORD_MAX_AGE = 7 * 24 * 3600
#: Environment variables, besides every ``AWS_*`` and ``AIO_STS_SESSION_*``, that can change
#: the answer: the home directory and login (the files, the default role session name), the
#: directories of the cache and its key, the keyring backend.
_ALSO_READ = frozenset(
    {
        "HOME",
        "USER",
        "LOGNAME",
        "LNAME",
        "USERNAME",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "PYTHON_KEYRING_BACKEND",
    }
)
_COMMANDS = frozenset({"credential-process", "env"})
_FORMATS = frozenset({"sh", "fish", "powershell", "json"})


class Request:
    """What the command line asked for, as far as it can change the answer."""

    __slots__ = ("command", "duration", "format", "no_mfa", "profile", "region")

    def __init__(
        self,
        command: str,
        profile: str | None,
        format: str = "sh",
        *,
        duration: int | None = None,
        region: str | None = None,
        no_mfa: bool = False,
    ) -> None:
        self.command = command
        self.profile = profile
        self.format = format
        self.duration = duration
        self.region = region
        self.no_mfa = no_mfa

    def inputs(self) -> bytes:
        """Every input that names the answer, canonical (hashed, never stored)."""
        env = sorted(
            (k, v)
            for k, v in os.environ.items()
            if k.startswith(("AWS_", "AIO_STS_SESSION_")) or k in _ALSO_READ
        )
        return json.dumps(
            [
                RECORD_FORMAT,
                __version__,
                self.command,
                self.profile,
                self.duration,
                self.region,
                self.no_mfa,  # without it the full path refuses a profile without MFA
                env,
                _uid(),
                aws_files(),
            ],
            separators=(",", ":"),
        ).encode()


#: The two files botocore reads, as its loader resolves them (``raw_config_parse``: variables
#: expanded, then ``~``), and where it looks when the variable is not set.
AWS_FILES = (
    ("AWS_CONFIG_FILE", "~/.aws/config"),
    ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
)


def aws_files() -> list[str]:
    """The config and credentials files botocore reads, as absolute paths: ``$VARS`` and ``~``
    in ``AWS_CONFIG_FILE`` / ``AWS_SHARED_CREDENTIALS_FILE`` expanded as botocore expands them
    (any variable, not only ``AWS_*``), a relative path resolved against the working directory.
    The fingerprint covers what the paths resolve to, not their text: ``$PROJ/config`` with
    another ``PROJ`` is another project."""
    paths = []
    for variable, default in AWS_FILES:
        value = os.environ.get(variable, default)
        paths.append(
            os.path.abspath(os.path.expanduser(os.path.expandvars(value))) if value else ""
        )
    return paths


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else -1


#: The flags the warm path takes, and whether each takes a value. ``--mfa-command``,
#: ``--mfa-timeout``, ``--prompt`` and ``--no-mfa`` only matter when someone is asked for a
#: code, which a warm run never does.
_FLAGS = {
    "--profile": True,
    "--mfa-command": True,
    "--mfa-timeout": True,
    "--prompt": True,
    "--duration": True,
    "--format": True,
    "--region": True,
    "--no-mfa": False,
}


def recognise(argv: Sequence[str]) -> Request | None:
    """The request, if ``argv`` is a command line the warm path can answer; else ``None``."""
    if not argv or argv[0] not in _COMMANDS:
        return None
    command = argv[0]
    values: dict[str, str] = {}
    rest = list(argv[1:])
    while rest:
        flag = rest.pop(0)
        name, equals, value = flag.partition("=")
        takes_value = _FLAGS.get(name)
        if takes_value is None or name in values:
            return None
        if takes_value and not equals:
            if not rest:
                return None
            value = rest.pop(0)
        elif not takes_value and equals:
            return None
        values[name] = value
    style = values.get("--format", "sh")
    if "--format" in values and (command != "env" or style not in _FORMATS):
        return None
    if "--region" in values and command != "env":
        return None
    duration = values.get("--duration")
    if duration is not None and not (duration.isascii() and duration.isdigit()):
        return None  # the full path says what is wrong with it
    return Request(
        command,
        values.get("--profile"),
        style,
        duration=int(duration) if duration is not None else None,
        region=values.get("--region"),
        no_mfa="--no-mfa" in values,
    )


def fingerprint(key: bytes, request: Request) -> bytes:
    return _entry.hmac_sha256(key, request.inputs())


def file_identity(path: str) -> list[int] | None:
    """What changes when a file is edited, replaced or removed (``None``: it is missing)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def _aead(key: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _record_path(cache_dir: Path, fp: bytes) -> Path:
    return cache_dir / (fp.hex()[:32] + RECORD_SUFFIX)


def clear_records(cache_dir: Path) -> None:
    """Delete every warm record (``cache clear``): the next run of each takes the full path."""
    for record in cache_dir.glob(f"*{RECORD_SUFFIX}"):
        record.unlink(missing_ok=True)


def serve(request: Request) -> str | None:
    """What the full path would print for ``request``, from the cache alone; ``None`` when in
    any doubt (see the module's fallback rules)."""
    from .._cachekey import quick_directories, read_cache_key

    dirs = quick_directories()
    if dirs is None:
        return None
    cache_dir, key_file = dirs
    if os.stat(cache_dir).st_uid != _uid():
        return None  # another user's directory: the full path refuses it, and says so
    key_text = read_cache_key(key_file)
    if key_text is None:
        return None
    key = _entry.decode_key(key_text)
    aead = _aead(key)
    fp = fingerprint(key, request)
    blob = _entry.read_regular_file(_record_path(cache_dir, fp))
    record = json.loads(aead.decrypt(blob[:12], blob[12:], fp))
    for path, identity in record["files"]:
        if file_identity(path) != identity:
            return None
    entry_key = str(record["entry_key"])
    entry = _entry.read_regular_file(cache_dir / _entry.entry_file_name(entry_key))
    token = _entry.open_blob([aead], entry_key, entry)
    if float(token["expires_at"]) - time.time() <= RENEWAL_MARGIN:
        return None
    return _render(request, token, record.get("region"))


def _render(request: Request, token: dict[str, Any], region: str | None) -> str:
    from .output import credential_env, credential_process_json, render_env

    expiration = str(token["expiration"])  # isoformat() of a UTC datetime
    parts = (
        str(token["access_key_id"]),
        str(token["secret_access_key"]),
        str(token["session_token"]),
        expiration,
    )
    if request.command == "credential-process":
        return credential_process_json(*parts)
    return render_env(credential_env(*parts, region), request.format)


class Recorder:
    """The full path's half: the identity of the AWS files taken before botocore reads them,
    and the record written once the command has served."""

    def __init__(
        self,
        request: Request,
        files: list[tuple[str, list[int] | None]],
        *,
        writable: bool = True,
    ) -> None:
        self.request = request
        self.files = files
        self.writable = writable

    @classmethod
    def start(cls, request: Request) -> Recorder:
        from .._botoconfig import aws_file_paths
        from .._keys import keys_directory

        botocore_reads = [os.path.abspath(path) if path else path for path in aws_file_paths()]
        if botocore_reads != aws_files():  # the warm path would check other files: no record
            return cls(request, [("", None)], writable=False)

        # The AWS files, and where `add` records which profiles' keys are in the keyring: the
        # directory (a profile added or removed) and each index (a key rotated).
        keys = keys_directory()
        indexes = sorted(str(p) for p in keys.glob("*.json")) if keys.is_dir() else []
        paths = [*botocore_reads, str(keys), *indexes]
        return cls(request, [(path, file_identity(path)) for path in paths])

    async def finish(
        self, provider: RefreshEngine, chain: ProfileChain, *, region: str | None
    ) -> None:
        """Write the record (best effort: a record only saves time)."""
        from .._cachekey import cache_directory, key_file_path, quick_directories, read_cache_key

        if not self.writable:
            return
        try:
            dirs = quick_directories()
            if dirs is None or dirs != (cache_directory(), key_file_path()):
                return  # the warm path would look elsewhere: it will never find a record
            key_text = read_cache_key(dirs[1])
            if key_text is None:
                return
            entry_key = await provider.entry_key()
            self._write(dirs[0], _entry.decode_key(key_text), entry_key, region)
        except Exception as exc:  # pragma: no cover - the next full run tries again
            import logging

            logging.getLogger("aio_sts_session").debug(
                "No warm record written (%s).", type(exc).__name__
            )

    def _write(self, cache_dir: Path, key: bytes, entry_key: str, region: str | None) -> None:
        fp = fingerprint(key, self.request)
        content = json.dumps({"files": self.files, "entry_key": entry_key, "region": region})
        nonce = os.urandom(12)
        blob = nonce + _aead(key).encrypt(nonce, content.encode(), fp)
        _entry.write_private_file(_record_path(cache_dir, fp), blob)
        self._prune(cache_dir)

    @staticmethod
    def _prune(cache_dir: Path) -> None:
        cutoff = time.time() - RECORD_MAX_AGE
        for old in cache_dir.glob(f"*{RECORD_SUFFIX}"):
            try:
                if old.lstat().st_mtime < cutoff:
                    old.unlink()
            except OSError:
                continue


def no_core_dumps() -> Callable[[], None]:
    """A core dump of this process would hold the cache key, the long-term secret and every
    session it handled: a credential helper turns them off (``RLIMIT_CORE`` 0, the soft limit
    only). Returns a function that gives back the limit it had (for the command ``exec``
    runs)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    except (ImportError, OSError, ValueError):  # pragma: no cover - not on this platform
        return lambda: None

    def restore() -> None:  # (contextlib: cryptography has imported it already)
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))

    return restore


def answer(argv: Sequence[str]) -> str | None:
    """What to print for ``argv`` if the warm path can answer it, else ``None`` (the full
    path's turn)."""
    request = recognise(argv)
    if request is None:
        return None
    no_core_dumps()
    try:
        return serve(request)
    except Exception:  # any doubt at all: the full path decides (and reports)
        return None
