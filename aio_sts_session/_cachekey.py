"""Where the per-user encrypted cache lives (the command line's, and any program's that shares
it), and where its key comes from.

The key, in this order: ``AIO_STS_SESSION_CACHE_KEY``; else the OS keyring, when the
``keyring`` extra is installed and has a real backend that does not ask for a passphrase in
every process (every warm run reads the key); else a key file generated on first use,
readable only by the user, in the user *config* directory, apart from the cache (user *cache*
directory), so copying or backing up the cache never carries its key along. Directories follow
the platform's conventions (``platformdirs``).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

from ._entry import decode_key, generate_key, make_private_directory
from .exceptions import ConfigurationError

__all__ = [
    "ENV_KEY",
    "KeySource",
    "asks_for_a_passphrase",
    "cache_directory",
    "describe_backend",
    "describe_key_source",
    "key_file_path",
    "keyring_key",
    "quick_directories",
    "read_cache_key",
    "resolve_cache_key",
]

APP = "aio-sts-session"
ENV_KEY = "AIO_STS_SESSION_CACHE_KEY"
KEYRING_SERVICE, KEYRING_USERNAME = "aio-sts-session", "cache-key"
KEY_FILE_NAME = "cache.key"
#: ``PYTHON_KEYRING_BACKEND`` values that mean "no keyring".
_NO_KEYRING = frozenset({"keyring.backends.null.Keyring", "keyring.backends.fail.Keyring"})


class KeySource:
    """The cache key and a description of where it came from (``repr`` hides the key)."""

    __slots__ = ("key", "where")

    def __init__(self, key: str, where: str) -> None:
        self.key = key
        self.where = where

    def __repr__(self) -> str:
        return f"KeySource(where={self.where!r})"


def cache_directory() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_path(APP))


def key_file_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_path(APP)) / KEY_FILE_NAME


def quick_directories() -> tuple[Path, Path] | None:
    """``(cache directory, key file)`` by the XDG rule, without importing ``platformdirs``
    (~10 ms): for the command line's warm path. ``None`` where the rule does not apply. The
    full path writes a warm record only where this agrees with :func:`cache_directory` and
    :func:`key_file_path`, so a disagreement costs speed, never a wrong answer."""
    if sys.platform == "win32":
        return None
    home = os.environ.get("HOME", "")
    if not os.path.isabs(home):
        return None

    def xdg(variable: str, default: str) -> Path:
        value = os.environ.get(variable, "").strip()
        if value and os.path.isabs(value):
            return Path(value) / APP
        return Path(home) / default / APP

    if sys.platform == "darwin" and not (
        os.environ.get("XDG_CACHE_HOME") or os.environ.get("XDG_CONFIG_HOME")
    ):
        library = Path(home) / "Library"
        return library / "Caches" / APP, library / "Application Support" / APP / KEY_FILE_NAME
    return xdg("XDG_CACHE_HOME", ".cache"), xdg("XDG_CONFIG_HOME", ".config") / KEY_FILE_NAME


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
            key = generate_key()
            keyring.set_password(service, username, key)
    except KeyringError as exc:
        raise ConfigurationError(
            f"The OS keyring could not store or return the cache key ({type(exc).__name__}): "
            "unlock it or configure a keyring backend, or pass the key another way (key=; for "
            "the command line AIO_STS_SESSION_CACHE_KEY, or "
            "PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring for a key file)."
        ) from exc
    return str(key)


def _keyring() -> Any | None:
    """The OS keyring backend if the extra is installed and one is usable, else ``None``.
    Answers without importing ``keyring`` (~45 ms) when the answer is plainly no: it is not
    installed, or ``PYTHON_KEYRING_BACKEND`` names no keyring (and nothing in this process
    has imported it, so nothing can have chosen another backend)."""
    if "keyring" not in sys.modules:
        if os.environ.get("PYTHON_KEYRING_BACKEND") in _NO_KEYRING:
            return None
        import importlib.util

        if importlib.util.find_spec("keyring") is None:
            return None
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
    if asks_for_a_passphrase(backend):
        return None  # it would ask at every warm run: the key file instead
    return backend


def asks_for_a_passphrase(backend: Any) -> bool:
    """Whether ``backend`` asks for a passphrase in every process that reads it (the
    encrypted-file keyrings: ``keyrings.cryptfile``, ``keyrings.alt``'s ``EncryptedKeyring``,
    whose ``keyring_key`` is a passphrase prompt). Such a keyring is fine for long-term keys,
    read about twice a day, but not for the cache key, which every warm run needs."""
    members = getattr(backend, "backends", None)
    if isinstance(members, list):  # a chainer: reads may reach any of them
        return any(asks_for_a_passphrase(member) for member in members)
    return any(
        cls.__name__ == "EncryptedKeyring" or "keyring_key" in vars(cls)
        for cls in type(backend).__mro__
    )


def describe_backend(backend: Any) -> str:
    """The backend's name, or the names of those a chainer reads from
    (``keyring.backends.SecretService.Keyring``)."""
    members = getattr(backend, "backends", None)
    if isinstance(members, list) and members:
        return ", ".join(describe_backend(member) for member in members)
    return f"{type(backend).__module__}.{type(backend).__name__}"


def describe_key_source() -> str:
    """Which source :func:`resolve_cache_key` would use, without creating anything."""
    if os.environ.get(ENV_KEY):
        return f"the environment variable {ENV_KEY}"
    backend = _keyring()
    if backend is not None:
        return f"the OS keyring ({describe_backend(backend)}), service {KEYRING_SERVICE!r}"
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


def read_cache_key(key_file: Path) -> str | None:
    """The cache key from the same sources in the same order as :func:`resolve_cache_key`,
    creating nothing: ``None`` if the key file does not exist yet (the warm path then steps
    aside). Raises :class:`ConfigurationError` as :func:`resolve_cache_key` does."""
    from_env = os.environ.get(ENV_KEY)
    if from_env:
        _check(from_env, f"{ENV_KEY} is not a cache key")
        return from_env
    if _keyring() is not None:
        return resolve_cache_key().key
    try:
        return _read_key_file(key_file)
    except FileNotFoundError:
        return None


def _check(key: str, problem: str) -> None:
    try:
        decode_key(key)
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
        import secrets

        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (generate_key() + "\n").encode())
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
