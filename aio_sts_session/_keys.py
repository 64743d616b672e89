"""Long-term keys in the OS keyring instead of ``~/.aws/credentials``.

One keyring item per profile (service ``aio-sts-session``, user ``profile/NAME``), holding the
access key id and the secret as JSON. Beside it, in the user config directory, a small
*index* file per profile (``keys/NAME.json``, 0600) holds what is not secret: the access key
id and when it was stored. The index lets everything that only needs to know *where* a
profile's keys are (``status``, the warm path's fingerprint, the cache entry's name) answer
without importing ``keyring`` (~45 ms) or reading the secret; only a call that signs with the
keys reads the item.

Any backend ``keyring`` selects will do (macOS Keychain, Windows Credential Locker, Secret
Service, ``keyrings.cryptfile`` for a machine without a keyring service,
``PYTHON_KEYRING_BACKEND``); with none usable, storing is refused with advice, never turned
into a plain-text fallback.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ._entry import make_private_directory, read_regular_file
from ._text import quote
from .exceptions import ConfigurationError, SourceCredentialsError

__all__ = [
    "SERVICE",
    "KeyPair",
    "delete_keys",
    "index_path",
    "keys_directory",
    "load_keys",
    "store_keys",
    "stored_key_id",
    "usable_backend",
]

SERVICE = "aio-sts-session"
_SAFE = re.compile(r"[^\w.@+=,-]")
HOW_TO_GET_A_BACKEND = (
    "install a keyring backend: the OS keyring (macOS Keychain, Windows Credential Locker, "
    "GNOME Keyring or KWallet through Secret Service), or on a machine without one "
    "`pip install keyrings.cryptfile` and set "
    "PYTHON_KEYRING_BACKEND=keyrings.cryptfile.cryptfile.CryptFileKeyring"
)


class KeyPair:
    """An IAM user's access key id and secret (``repr`` hides the secret)."""

    __slots__ = ("access_key_id", "secret_access_key")

    def __init__(self, access_key_id: str, secret_access_key: str) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key

    def __repr__(self) -> str:
        return f"KeyPair(access_key_id={self.access_key_id!r}, secret_access_key='***')"

    def as_settings(self) -> dict[str, str | None]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": None,
        }


def keys_directory() -> Path:
    from ._cachekey import key_file_path

    return key_file_path().parent / "keys"


def index_path(profile: str) -> Path:
    return keys_directory() / f"{_SAFE.sub('_', profile)}.json"


def _username(profile: str) -> str:
    return f"profile/{profile}"


def stored_key_id(profile: str) -> str | None:
    """The access key id ``add`` stored for ``profile`` in the keyring (from the index, no
    keyring call), or ``None``."""
    try:
        data = json.loads(read_regular_file(index_path(profile)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"The keyring index {index_path(profile)} cannot be read ({exc}): run "
            f"'aio-sts-session add {profile}' again, or delete it."
        ) from None
    key_id = data.get("aws_access_key_id") if isinstance(data, dict) else None
    return str(key_id) if key_id else None


def usable_backend() -> Any:
    """The keyring backend, or :class:`ConfigurationError` saying which one to install."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except ImportError:
        raise ConfigurationError(
            "Keeping long-term keys in the OS keyring needs the keyring package: "
            "pip install 'aio-sts-session[keyring]'; then " + HOW_TO_GET_A_BACKEND + "."
        ) from None
    backend = keyring.get_keyring()
    if isinstance(backend, (fail.Keyring, null.Keyring)) or (
        isinstance(backend, chainer.ChainerBackend) and not backend.backends
    ):
        raise ConfigurationError(
            f"No usable keyring backend ({type(backend).__module__}.{type(backend).__name__}): "
            + HOW_TO_GET_A_BACKEND
            + "."
        )
    return backend


def load_keys(profile: str) -> KeyPair:
    """The keys ``add`` stored for ``profile``."""
    from keyring.errors import KeyringError

    backend = usable_backend()
    try:
        raw = backend.get_password(SERVICE, _username(profile))
    except KeyringError as exc:
        raise SourceCredentialsError(
            f"The OS keyring did not return the keys of profile {quote(profile)} "
            f"({type(exc).__name__}): unlock it, then retry."
        ) from None
    if raw is None:
        raise SourceCredentialsError(
            f"The keys of profile {quote(profile)} are recorded as kept in the keyring, but "
            f"its item (service {SERVICE!r}) is missing: run 'aio-sts-session add "
            f"{profile}' again."
        )
    try:
        data = json.loads(raw)
        return KeyPair(str(data["aws_access_key_id"]), str(data["aws_secret_access_key"]))
    except (ValueError, KeyError, TypeError):
        raise SourceCredentialsError(
            f"The keyring item of profile {quote(profile)} is not one aio-sts-session wrote: "
            f"run 'aio-sts-session add {profile} --force'."
        ) from None


def store_keys(profile: str, keys: KeyPair) -> None:
    """Keep ``keys`` for ``profile`` in the keyring, then record their key id in the index."""
    from keyring.errors import KeyringError

    backend = usable_backend()
    secret = json.dumps(
        {"aws_access_key_id": keys.access_key_id, "aws_secret_access_key": keys.secret_access_key}
    )
    try:
        backend.set_password(SERVICE, _username(profile), secret)
    except KeyringError as exc:
        raise ConfigurationError(
            f"The OS keyring refused to store the keys of profile {quote(profile)} "
            f"({type(exc).__name__}): unlock it, or " + HOW_TO_GET_A_BACKEND + "."
        ) from None
    _write_index(profile, keys.access_key_id)


def delete_keys(profile: str) -> bool:
    """Delete ``profile``'s item and index; whether there was an item."""
    from keyring.errors import KeyringError, PasswordDeleteError

    backend = usable_backend()
    existed = True
    try:
        backend.delete_password(SERVICE, _username(profile))
    except PasswordDeleteError:
        existed = False
    except KeyringError as exc:
        raise ConfigurationError(
            f"The OS keyring refused to delete the keys of profile {quote(profile)} "
            f"({type(exc).__name__}): unlock it, then retry."
        ) from None
    index_path(profile).unlink(missing_ok=True)
    return existed


def _write_index(profile: str, key_id: str) -> None:
    path = index_path(profile)
    make_private_directory(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(
            fd,
            json.dumps({"aws_access_key_id": key_id, "stored_at": int(time.time())}).encode(),
        )
    finally:
        os.close(fd)
    os.replace(temporary, path)
