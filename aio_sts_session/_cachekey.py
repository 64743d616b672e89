"""Where the command line keeps the encrypted cache, and where its key comes from.

The key, in this order: ``AIO_STS_SESSION_CACHE_KEY``; else the OS keyring, when the
``keyring`` extra is installed and has a real backend; else a key file generated on first use,
readable only by the user, in the user *config* directory, apart from the cache (user *cache*
directory), so copying or backing up the cache never carries its key along. Directories follow
the platform's conventions (``platformdirs``).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import Any

import platformdirs

from ._cache import EncryptedFileCache, keyring_key, make_private_directory
from .exceptions import ConfigurationError

__all__ = [
    "ENV_KEY",
    "KeySource",
    "cache_directory",
    "describe_key_source",
    "key_file_path",
    "resolve_cache_key",
]

APP = "aio-sts-session"
ENV_KEY = "AIO_STS_SESSION_CACHE_KEY"
KEYRING_SERVICE, KEYRING_USERNAME = "aio-sts-session", "cache-key"


@dataclasses.dataclass(frozen=True, repr=False)
class KeySource:
    """The cache key and a description of where it came from (``repr`` hides the key)."""

    key: str
    where: str

    def __repr__(self) -> str:
        return f"KeySource(where={self.where!r})"


def cache_directory() -> Path:
    return platformdirs.user_cache_path(APP)


def key_file_path() -> Path:
    return platformdirs.user_config_path(APP) / "cache.key"


def _keyring() -> Any | None:
    """The OS keyring backend if the extra is installed and one is usable, else ``None``."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return backend


def describe_key_source() -> str:
    """Which source :func:`resolve_cache_key` would use, without creating anything."""
    if os.environ.get(ENV_KEY):
        return f"the environment variable {ENV_KEY}"
    backend = _keyring()
    if backend is not None:
        name = f"{type(backend).__module__}.{type(backend).__name__}"
        return f"the OS keyring ({name}), service {KEYRING_SERVICE!r}"
    return f"the key file {key_file_path()}"


def resolve_cache_key() -> KeySource:
    """The cache key (created in the keyring or the key file on first use)."""
    from_env = os.environ.get(ENV_KEY)
    if from_env:
        _check(from_env, f"{ENV_KEY} is not a cache key")
        return KeySource(from_env, f"the environment variable {ENV_KEY}")
    if _keyring() is not None:
        key = keyring_key(KEYRING_SERVICE, KEYRING_USERNAME)
        _check(key, f"The cache key in the OS keyring (service {KEYRING_SERVICE!r})")
        return KeySource(key, describe_key_source())
    path = key_file_path()
    return KeySource(_from_key_file(path), f"the key file {path}")


def _check(key: str, problem: str) -> None:
    try:
        EncryptedFileCache(cache_directory(), key=key)  # validates; touches no file
    except ConfigurationError:
        raise ConfigurationError(
            f"{problem}: it must be 32 random bytes in URL-safe base64 (python -c 'import "
            "aio_sts_session as a; print(a.EncryptedFileCache.generate_key())')."
        ) from None


def _from_key_file(path: Path) -> str:
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    try:
        make_private_directory(path.parent)
        # Write a temporary file, then link it into place: two processes starting together
        # both end up with the one key that won, never with a half-written file.
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (EncryptedFileCache.generate_key() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        return _read_key_file(path)
    except OSError as exc:
        raise ConfigurationError(
            f"The cache key file {path} cannot be created ({exc.strerror}): make its directory "
            f"writable, or set {ENV_KEY}."
        ) from None


def _read_key_file(path: Path) -> str:
    try:
        info = path.stat()
        key = path.read_text().strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigurationError(
            f"The cache key file {path} cannot be read ({exc.strerror}): fix its permissions, "
            f"or set {ENV_KEY}."
        ) from None
    if sys.platform != "win32":
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"The cache key file {path} can be read by other users (mode "
                f"{stat.S_IMODE(info.st_mode):o}): run chmod 600 {path}, or delete it (the "
                "cache is then unreadable and refilled: one new MFA code)."
            )
    _check(key, f"The cache key file {path} holds no valid key")
    return key
