"""Where tokens are kept: the ``TokenCache`` protocol, the in-memory cache, and the encrypted,
process-shared ``EncryptedFileCache``.

Entry file layout (``<sha256(cache key)[:32]>.token``, mode 0600)::

    b"ASTS\\x01" | expires_at (float64, big-endian) | nonce (12 bytes) | AES-256-GCM ciphertext+tag

The associated data is the 13-byte header followed by the cache key, so an entry copied over
another one (another profile, serial or duration) does not decrypt, and the clear-text expiry
(used to prune without the key) cannot be altered unnoticed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import stat
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import filelock
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._clock import Clock, system_clock
from ._models import CachedToken, SessionCredentials
from .exceptions import CacheLockTimeoutError, ConfigurationError

__all__ = ["EncryptedFileCache", "MemoryCache", "TokenCache"]

logger = logging.getLogger("aio_sts_session")

_MAGIC = b"ASTS\x01"
_HEADER = struct.Struct(">5sd")
_NONCE_BYTES = 12
_SUFFIX = ".token"
_TEMPORARY_PREFIX = ".tmp-"
#: An entry is a few hundred bytes (a role's session token is the largest part): anything
#: larger than this is not one, and is not read.
MAX_ENTRY_BYTES = 64 * 1024
#: Entries are deleted (pruned) only once expired by more than this, in this process's clock:
#: a process whose clock runs ahead (STS tolerates 15 minutes; a broken clock, hours) must not
#: delete entries that every other process still uses. Expired entries are misses anyway.
PRUNE_MARGIN = 24 * 3600.0
#: A temporary file older than this was left by a writer that died (a write takes
#: milliseconds): it is deleted.
TEMPORARY_MAX_AGE = 600.0
#: After the directory or a lock failed (a passing EMFILE, a full disk), the disk is tried
#: again this many seconds later; meanwhile that work is done in memory.
DISK_RETRY_SECONDS = 30.0
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


@runtime_checkable
class TokenCache(Protocol):
    """A store of tokens by cache key, with a lock that serialises refreshes of one key.

    ``load`` returns ``None`` for anything unusable (missing, corrupt, expired) and never raises
    for a bad entry. ``lock`` must be held while a refresh prompts and calls STS, so that only
    one holder (task or process) refreshes a key at a time.
    """

    async def load(self, key: str) -> CachedToken | None:
        """The token stored under ``key``, or ``None`` (missing, unreadable or expired)."""

    async def store(self, key: str, token: CachedToken) -> None:
        """Keep ``token`` under ``key``, replacing what was there."""

    async def delete(self, key: str) -> None:
        """Forget the token under ``key`` (no error if there is none)."""

    def lock(self, key: str, timeout: float) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold while refreshing ``key``: one holder at a time; ``timeout`` seconds at most."""


class MemoryCache:
    """Tokens kept in this process only (the default). Safe to share between providers."""

    def __init__(self) -> None:
        self._entries: dict[str, CachedToken] = {}
        # An asyncio.Lock belongs to one event loop: one lock per key and loop, so a cache
        # used across several asyncio.run() calls never meets a lock of a finished loop.
        self._locks: dict[tuple[str, asyncio.AbstractEventLoop], asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"MemoryCache(entries={len(self._entries)})"

    async def load(self, key: str) -> CachedToken | None:
        """The token stored under ``key``, or ``None`` (missing, unreadable or expired)."""
        return self._entries.get(key)

    async def store(self, key: str, token: CachedToken) -> None:
        """Keep ``token`` under ``key``, replacing what was there."""
        self._entries[key] = token

    async def delete(self, key: str) -> None:
        """Forget the token under ``key`` (no error if there is none)."""
        self._entries.pop(key, None)

    @contextlib.asynccontextmanager
    async def lock(self, key: str, timeout: float) -> AsyncIterator[None]:
        """Hold while refreshing ``key``: one holder at a time; ``timeout`` seconds at most."""
        loop = asyncio.get_running_loop()
        for stale in [k for k in self._locks if k[1] is not loop and k[1].is_closed()]:
            del self._locks[stale]
        lock = self._locks.setdefault((key, loop), asyncio.Lock())
        try:
            if lock.locked():
                await asyncio.wait_for(lock.acquire(), timeout)
            else:
                await lock.acquire()  # free: no timer, no extra task, no suspension
        except asyncio.TimeoutError as exc:
            raise CacheLockTimeoutError(
                f"Another task held the credential refresh lock for more than {timeout:g} s."
            ) from exc
        try:
            yield
        finally:
            lock.release()


def keyring_key(service: str, username: str) -> str:
    """The cache key kept in the OS keyring under ``service``/``username``, made and stored
    there on first use. Needs the ``keyring`` package."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError as exc:
        raise ConfigurationError(
            "Keeping the cache key in the OS keyring needs the keyring package: "
            "pip install 'aio-sts-session[keyring]' (or pass key= yourself)."
        ) from exc
    try:
        key = keyring.get_password(service, username)
        if key is None:
            key = EncryptedFileCache.generate_key()
            keyring.set_password(service, username, key)
    except KeyringError as exc:
        raise ConfigurationError(
            f"The OS keyring could not store or return the cache key ({type(exc).__name__}): "
            "unlock it or configure a keyring backend, or pass the key another way (key=; for "
            "the command line AIO_STS_SESSION_CACHE_KEY, or "
            "PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring for a key file)."
        ) from exc
    return str(key)


def _decode_key(key: str | bytes) -> bytes:
    if isinstance(key, str):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
    else:
        raw = bytes(key)
    if len(raw) != 32:
        raise ConfigurationError(
            "EncryptedFileCache key must be 32 bytes, or their URL-safe base64 text as made by "
            "EncryptedFileCache.generate_key(); generate one and keep it in a secret store."
        )
    return raw


def _read_regular_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``, refusing (``OSError``) anything that is not a
    regular file: a symlink (to ``/dev/zero``), a FIFO (planted to hang the reader), a device.
    Opened without blocking, so a FIFO is refused rather than waited on; a larger file than
    ``limit`` raises ``ValueError``."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"larger than {limit} bytes")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"larger than {limit} bytes")
    return data


def make_private_directory(path: Path) -> None:
    """Create ``path`` and every missing parent with mode 0700 (whatever the umask: under
    umask 000 ``mkdir -p`` makes world-writable parents such as ``~/.cache``)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask


def _token_to_json(token: CachedToken) -> bytes:
    c = token.credentials
    return json.dumps(
        {
            "access_key_id": c.access_key_id,
            "secret_access_key": c.secret_access_key,
            "session_token": c.session_token,
            "expiration": c.expiration.isoformat(),
            "expires_at": token.expires_at,
            "lifetime": token.lifetime,
            "skew": token.skew,
        }
    ).encode()


def _token_from_json(data: bytes) -> CachedToken:
    obj = json.loads(data)
    expiration = _dt.datetime.fromisoformat(obj["expiration"])
    return CachedToken(
        credentials=SessionCredentials(
            access_key_id=str(obj["access_key_id"]),
            secret_access_key=str(obj["secret_access_key"]),
            session_token=str(obj["session_token"]),
            expiration=expiration,
        ),
        expires_at=float(obj["expires_at"]),
        lifetime=float(obj["lifetime"]),
        skew=float(obj["skew"]),
    )


class EncryptedFileCache:
    """Tokens encrypted at rest (AES-256-GCM) in ``directory``, shared by every process of the
    user, with an OS-level file lock per entry so processes started together ask for one code.

    ``key`` is one key or a sequence of keys, newest first: entries are written with the first
    and read with any (key rotation). Make one with :meth:`generate_key`.

    ``lock_timeout`` bounds how long a process waits for another one's refresh; by default the
    provider picks a bound longer than its MFA timeout.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        key: str | bytes | Sequence[str | bytes],
        lock_timeout: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        keys: Sequence[str | bytes] = [key] if isinstance(key, (str, bytes)) else list(key)
        if not keys:
            raise ConfigurationError(
                "EncryptedFileCache needs at least one key: make one with "
                "EncryptedFileCache.generate_key() and keep it in a secret store."
            )
        self._aeads = [AESGCM(_decode_key(k)) for k in keys]
        if lock_timeout is not None and lock_timeout <= 0:
            raise ConfigurationError("lock_timeout must be a positive number of seconds.")
        self.lock_timeout = lock_timeout
        self.directory = Path(os.path.expanduser(os.fspath(directory)))
        self._clock: Clock = clock or system_clock
        self._memory = MemoryCache()
        self._disk_retry_at = -math.inf  # after a failure: memory only until then
        self._dir_checked = False
        self._read_only = False

    @staticmethod
    def generate_key() -> str:
        """A new random 256-bit key as URL-safe base64 text."""
        return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")

    @classmethod
    def from_keyring(
        cls,
        directory: str | os.PathLike[str],
        *,
        service: str = "aio-sts-session",
        username: str = "cache-key",
        lock_timeout: float | None = None,
    ) -> EncryptedFileCache:
        """A cache whose key lives in the OS keyring (macOS Keychain, Windows Credential
        Locker, Secret Service), made and stored there on first use. Needs the ``keyring``
        package: ``pip install 'aio-sts-session[keyring]'``."""
        key = keyring_key(service, username)
        return cls(directory, key=key, lock_timeout=lock_timeout)

    def __repr__(self) -> str:
        return f"EncryptedFileCache({str(self.directory)!r}, keys={len(self._aeads)})"

    # -- paths ---------------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """The file that holds the entry for ``key`` (named by a hash of it)."""
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return self.directory / f"{digest}{_SUFFIX}"

    def _ensure_directory(self) -> bool:
        """Create the directory 0700 if needed. True if entries can be read from it (it may
        still be read-only: then tokens are written to memory only, see :meth:`_writable`).
        A directory owned by another user is refused: whoever owns it can replace, delete or
        plant entries."""
        if self._clock() < self._disk_retry_at:
            return False
        if self._dir_checked:
            return True
        try:
            make_private_directory(self.directory)
            info = self.directory.stat()
            if sys.platform != "win32" and info.st_uid != os.getuid():
                logger.warning(
                    "Credential cache directory %s belongs to another user (uid %d): not using "
                    "it (tokens stay in this process's memory). Pick a directory of your own.",
                    self.directory,
                    info.st_uid,
                )
                self._disk_retry_at = math.inf
                return False
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                logger.warning(
                    "Credential cache directory %s is accessible to other users (mode %o); "
                    "entries are encrypted, but run 'chmod 700 %s'.",
                    self.directory,
                    mode,
                    self.directory,
                )
            if not os.access(self.directory, os.R_OK | os.X_OK):
                raise PermissionError(f"{self.directory} is not readable")
        except OSError as exc:
            self._degrade(exc)
            return False
        self._read_only = not os.access(self.directory, os.W_OK | os.X_OK)
        if self._read_only:
            logger.warning(
                "Credential cache directory %s is read-only: entries are read from it, but new "
                "tokens are kept in this process's memory only. Fix its permissions to share "
                "them with other processes.",
                self.directory,
            )
        self._dir_checked = True
        return True

    def _writable(self) -> bool:
        return self._ensure_directory() and not self._read_only

    def _degrade(self, exc: OSError) -> None:
        """Keep tokens in memory for a while after the disk failed; try it again later (a
        passing ``EMFILE`` must not cost the shared cache for the rest of the process)."""
        if self._clock() >= self._disk_retry_at:
            logger.warning(
                "Credential cache directory %s is unusable (%s: %s); keeping tokens in memory "
                "only, and trying the disk again in %.0f s. Fix the directory's permissions or "
                "pick another one if this persists.",
                self.directory,
                type(exc).__name__,
                exc.strerror or exc,
                DISK_RETRY_SECONDS,
            )
        self._disk_retry_at = self._clock() + DISK_RETRY_SECONDS
        self._dir_checked = False

    # -- encryption ----------------------------------------------------------------------------

    def _seal(self, key: str, token: CachedToken) -> bytes:
        header = _HEADER.pack(_MAGIC, token.expires_at)
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._aeads[0].encrypt(nonce, _token_to_json(token), header + key.encode())
        return header + nonce + ciphertext

    def _open(self, key: str, blob: bytes) -> CachedToken:
        """Decrypt an entry or raise ValueError saying what is wrong with it."""
        if len(blob) < _HEADER.size + _NONCE_BYTES + 16:
            raise ValueError("truncated")
        header, rest = blob[: _HEADER.size], blob[_HEADER.size :]
        magic, _ = _HEADER.unpack(header)
        if magic != _MAGIC:
            raise ValueError("not an aio-sts-session entry")
        nonce, ciphertext = rest[:_NONCE_BYTES], rest[_NONCE_BYTES:]
        for aead in self._aeads:
            try:
                plaintext = aead.decrypt(nonce, ciphertext, header + key.encode())
            except InvalidTag:
                continue
            try:
                return _token_from_json(plaintext)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError("undecodable content") from exc
        raise ValueError("tampered, copied from another entry, or written with another key")

    # -- blocking file operations (run in a worker thread) -------------------------------------

    def _read_sync(self, key: str) -> CachedToken | None:
        path = self.path_for(key)
        try:
            blob = _read_regular_file(path, MAX_ENTRY_BYTES)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning(
                "Could not read credential cache entry %s (%s); treating it as a miss.",
                path,
                exc.strerror if isinstance(exc, OSError) and exc.strerror else exc,
            )
            return None
        try:
            token = self._open(key, blob)
        except ValueError as exc:
            logger.warning(
                "Ignoring credential cache entry %s: %s. It will be replaced at the next "
                "refresh; if you rotated keys, pass the old key too (key=[new, old]).",
                path,
                exc,
            )
            return None
        if token.expires_at <= self._clock():
            return None  # a miss; deleted by a prune once long expired
        return token

    def _write_sync(self, key: str, token: CachedToken) -> None:
        path = self.path_for(key)
        blob = self._seal(key, token)
        fd, tmp = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, suffix=_SUFFIX, dir=self.directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._prune_sync()

    def _expired_on_disk(self, entry: Path) -> bool:
        """Whether ``entry``'s clear-text expiry is more than :data:`PRUNE_MARGIN` ago."""
        try:
            header = _read_regular_file(entry, MAX_ENTRY_BYTES)[: _HEADER.size]
            magic, expires_at = _HEADER.unpack(header)
        except (OSError, ValueError, struct.error):
            return False
        return bool(magic == _MAGIC and expires_at + PRUNE_MARGIN <= self._clock())

    def _prune_sync(self) -> None:
        """Delete entries expired for more than :data:`PRUNE_MARGIN` (no key needed), and
        temporary files left by writers that died.

        An entry is judged and deleted while holding its lock, and judged again once the lock
        is held: another process may have just replaced it with a fresh token, and deleting
        that would make a third process waiting on the lock prompt again. Entries whose lock
        is busy are left for a later prune.
        """
        for entry in self.directory.glob(f"*{_SUFFIX}"):
            if entry.name.startswith(_TEMPORARY_PREFIX):
                self._prune_temporary(entry)
                continue
            if not self._expired_on_disk(entry):
                continue
            lock = filelock.FileLock(str(entry.with_suffix(".lock")), timeout=0, mode=0o600)
            try:
                with lock:
                    if self._expired_on_disk(entry):
                        entry.unlink()
            except (filelock.Timeout, OSError):
                continue

    def _prune_temporary(self, entry: Path) -> None:
        """A writer's temporary file, if its writer is long gone (judged by its age in the
        file system's clock, which every process shares)."""
        try:
            info = entry.lstat()
            if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime > TEMPORARY_MAX_AGE:
                entry.unlink()
        except OSError:
            pass

    # -- TokenCache ----------------------------------------------------------------------------

    async def load(self, key: str) -> CachedToken | None:
        """The token stored under ``key``, or ``None`` (missing, unreadable or expired)."""
        remembered = await self._memory.load(key)  # written here while the disk refused it
        if not self._ensure_directory():
            return remembered
        on_disk = await asyncio.to_thread(self._read_sync, key)
        if remembered is None or remembered.expires_at <= self._clock():
            return on_disk
        if on_disk is None or on_disk.expires_at < remembered.expires_at:
            return remembered
        return on_disk

    async def store(self, key: str, token: CachedToken) -> None:
        """Keep ``token`` under ``key``, replacing what was there."""
        if not self._writable():
            await self._memory.store(key, token)
            return
        try:
            await asyncio.to_thread(self._write_sync, key, token)
        except OSError as exc:
            # A full disk, a quota: this token stays in memory; the next store tries again.
            await self._memory.store(key, token)
            logger.warning(
                "Could not write credential cache entry %s (%s: %s); the token is kept in this "
                "process's memory only. Free space or fix the directory %s.",
                self.path_for(key),
                type(exc).__name__,
                exc.strerror or exc,
                self.directory,
            )
        else:
            await self._memory.delete(key)

    async def delete(self, key: str) -> None:
        """Forget the token under ``key`` (no error if there is none)."""
        await self._memory.delete(key)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path_for(key).unlink)

    async def clear(self) -> int:
        """Delete every entry (not the lock files, which other processes may hold); returns
        how many were deleted. Needs no key."""

        def remove_all() -> int:
            removed = 0
            for entry in self.directory.glob(f"*{_SUFFIX}"):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed += 1
            return removed

        self._memory = MemoryCache()
        if not self.directory.is_dir():
            return 0
        return await asyncio.to_thread(remove_all)

    @contextlib.asynccontextmanager
    async def lock(self, key: str, timeout: float) -> AsyncIterator[None]:
        """Hold while refreshing ``key``: one holder at a time; ``timeout`` seconds at most."""
        if not self._writable():
            async with self._memory.lock(key, timeout):
                yield
            return
        timeout = self.lock_timeout if self.lock_timeout is not None else timeout
        path = self.path_for(key).with_suffix(".lock")
        lock = filelock.AsyncFileLock(str(path), timeout=timeout, mode=0o600)
        try:
            await lock.acquire()
        except filelock.Timeout as exc:
            raise CacheLockTimeoutError(
                f"Waited {timeout:g} s for another process refreshing the same credentials "
                f"(lock {path}); it may be stuck at its MFA prompt. Answer or stop it, then retry."
            ) from exc
        except OSError as exc:  # this operation in memory; the disk is tried again later
            self._degrade(exc)
            async with self._memory.lock(key, timeout):
                yield
            return
        try:
            yield
        finally:
            await lock.release()
