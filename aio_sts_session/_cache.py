"""Where tokens are kept: the ``TokenCache`` protocol, the in-memory cache, and the encrypted,
process-shared ``EncryptedFileCache`` (its file format: :mod:`._entry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import math
import os
import stat
import struct
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import filelock
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._clock import Clock, system_clock
from ._entry import (
    HEADER,
    MAGIC,
    MAX_ENTRY_BYTES,
    SUFFIX,
    decode_key,
    entry_file_name,
    generate_key,
    make_private_directory,
    open_blob,
    read_regular_file,
    seal_blob,
)
from ._log import logger
from ._models import CachedToken, SessionCredentials
from .exceptions import CacheLockTimeoutError, ConfigurationError

__all__ = ["EncryptedFileCache", "MemoryCache", "TokenCache"]


_TEMPORARY_PREFIX = ".tmp-"
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


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.lstat().st_mtime > seconds
    except OSError:
        return False


def _token_to_dict(token: CachedToken) -> dict[str, Any]:
    c = token.credentials
    return {
        "access_key_id": c.access_key_id,
        "secret_access_key": c.secret_access_key,
        "session_token": c.session_token,
        "expiration": c.expiration.isoformat(),
        "expires_at": token.expires_at,
        "lifetime": token.lifetime,
        "skew": token.skew,
    }


def _token_from_dict(obj: dict[str, Any]) -> CachedToken:
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
        self._aeads: list[AESGCM] | None = [AESGCM(decode_key(k)) for k in keys]
        self._key_loader: Callable[[], str] | None = None  # from_keyring's, until first use
        self._loading = threading.Lock()
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
        return generate_key()

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
        package: ``pip install 'aio-sts-session[keyring]'``.

        It does not block: the keyring (tens of milliseconds for a Secret Service, an unlock
        dialog or a passphrase for some) is read at the cache's first use, in a worker thread,
        before anyone is asked for a code; a keyring that cannot give the key is a
        :class:`ConfigurationError` then. Safe to call from async code."""
        from ._cachekey import keyring_key

        return cls.with_key_from(
            directory, lambda: keyring_key(service, username), lock_timeout=lock_timeout
        )

    @classmethod
    def with_key_from(
        cls,
        directory: str | os.PathLike[str],
        load_key: Callable[[], str],
        *,
        lock_timeout: float | None = None,
    ) -> EncryptedFileCache:
        """A cache whose key ``load_key()`` gives at the cache's first use, in a worker thread
        (for a key source that may block: a keyring, a file on a slow disk)."""
        cache = cls(directory, key=generate_key(), lock_timeout=lock_timeout)
        cache._aeads = None  # read at first use, in a worker thread
        cache._key_loader = load_key
        return cache

    def __repr__(self) -> str:
        keys = "keyring" if self._aeads is None else len(self._aeads)
        return f"EncryptedFileCache({str(self.directory)!r}, keys={keys})"

    def _ciphers(self) -> list[AESGCM]:
        """The keys' ciphers; from_keyring's key is read here, once (blocking: call it in a
        worker thread, as every caller here does)."""
        aeads = self._aeads
        if aeads is not None:
            return aeads
        with self._loading:
            if self._aeads is None:
                assert self._key_loader is not None
                self._aeads = [AESGCM(decode_key(self._key_loader()))]
            return self._aeads

    async def _ready(self) -> None:
        """Read a key given at first use (from_keyring, with_key_from) now, off the event
        loop, so that a source that cannot give it is an error before anyone is asked for a
        code (``lock`` comes first)."""
        if self._aeads is None:
            await asyncio.to_thread(self._ciphers)

    # -- paths ---------------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """The file that holds the entry for ``key`` (named by a hash of it)."""
        return self.directory / entry_file_name(key)

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
        return seal_blob(self._ciphers()[0], key, token.expires_at, _token_to_dict(token))

    def _open(self, key: str, blob: bytes) -> CachedToken:
        """Decrypt an entry or raise ValueError saying what is wrong with it."""
        data = open_blob(self._ciphers(), key, blob)
        try:
            return _token_from_dict(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError("undecodable content") from exc

    # -- blocking file operations (run in a worker thread) -------------------------------------

    def _read_sync(self, key: str) -> CachedToken | None:
        path = self.path_for(key)
        try:
            blob = read_regular_file(path, MAX_ENTRY_BYTES)
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
            what = f"Ignoring credential cache entry {path}: {exc}."
            logger.warning(
                "%s It will be replaced at the next refresh; if you rotated keys, pass the old "
                "key too (key=[new, old]).",
                what,
                extra={"topic": "cache.undecryptable", "what": what},
            )
            return None
        if token.expires_at <= self._clock():
            return None  # a miss; deleted by a prune once long expired
        return token

    def _write_sync(self, key: str, token: CachedToken) -> None:
        path = self.path_for(key)
        blob = self._seal(key, token)
        fd, tmp = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, suffix=SUFFIX, dir=self.directory)
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
            header = read_regular_file(entry, MAX_ENTRY_BYTES)[: HEADER.size]
            magic, expires_at = HEADER.unpack(header)
        except (OSError, ValueError, struct.error):
            return False
        return bool(magic == MAGIC and expires_at + PRUNE_MARGIN <= self._clock())

    def _prune_sync(self) -> None:
        """Delete entries expired for more than :data:`PRUNE_MARGIN` (no key needed), and
        temporary files left by writers that died.

        An entry is judged and deleted while holding its lock, and judged again once the lock
        is held: another process may have just replaced it with a fresh token, and deleting
        that would make a third process waiting on the lock prompt again. Entries whose lock
        is busy are left for a later prune.
        """
        for lock_path in self.directory.glob("*.lock"):
            if not lock_path.with_suffix(SUFFIX).exists() and _older_than(lock_path, 60.0):
                self._remove_lock_if_free(lock_path)  # its entry is gone: so goes the lock
        for entry in self.directory.glob(f"*{SUFFIX}"):
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
        await self._ready()
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
        await self.remove(key)

    async def remove(self, key: str) -> bool:
        """Forget the token under ``key``, and its lock file when no process holds it;
        whether there was a token to forget."""
        in_memory = await self._memory.load(key) is not None
        await self._memory.delete(key)
        path = self.path_for(key)

        def remove_files() -> bool:
            try:
                path.unlink()
                existed = True
            except FileNotFoundError:
                existed = False
            self._remove_lock_if_free(path.with_suffix(".lock"))
            return existed

        return await asyncio.to_thread(remove_files) or in_memory

    @staticmethod
    def _remove_lock_if_free(lock_path: Path) -> None:
        """Delete a lock file no process holds (held while deleting, so no one is mid-way)."""
        lock = filelock.FileLock(str(lock_path), timeout=0, mode=0o600)
        try:
            if not lock_path.exists():
                return
            with lock:
                lock_path.unlink(missing_ok=True)
        except (filelock.Timeout, OSError):
            pass

    async def clear(self) -> int:
        """Delete every entry, and every lock file no process holds; returns how many entries
        were deleted. Needs no key."""

        def remove_all() -> int:
            removed = 0
            for entry in self.directory.glob(f"*{SUFFIX}"):
                if entry.name.startswith(_TEMPORARY_PREFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed += 1
            for lock in self.directory.glob("*.lock"):
                self._remove_lock_if_free(lock)
            return removed

        self._memory = MemoryCache()
        if not self.directory.is_dir():
            return 0
        return await asyncio.to_thread(remove_all)

    @contextlib.asynccontextmanager
    async def lock(self, key: str, timeout: float) -> AsyncIterator[None]:
        """Hold while refreshing ``key``: one holder at a time; ``timeout`` seconds at most."""
        await self._ready()
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
