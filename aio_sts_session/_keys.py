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

import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ._entry import make_private_directory, read_regular_file, write_private_file
from ._log import logger
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
_LEGACY = re.compile(r"[^\w.@+=,-]")
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


#: Kept as they are in an index file's name; anything else is ``%XX`` (of its UTF-8 bytes).
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
#: Longer encoded names are replaced by a hash (file systems allow 255 bytes).
_MAX_NAME = 150


def index_name(profile: str) -> str:
    """The index file's name for ``profile``: an injective encoding of the name (two profiles
    never share a file), safe on case-folding file systems (``Prod`` and ``prod`` differ):
    lower-case letters, digits, ``-``, ``_`` and ``.`` (not leading) as they are, every other
    byte of the UTF-8 name as ``%XX``; a name too long for a file system as ``~`` and its
    SHA-256 (``%`` and ``~`` never appear literally otherwise)."""
    encoded = "".join(
        char if char in _PLAIN and not (index == 0 and char == ".") else _percent(char)
        for index, char in enumerate(profile)
    )
    if len(encoded) > _MAX_NAME:
        from ._entry import sha256_hex

        encoded = "~" + sha256_hex(profile.encode())[:40]
    return encoded + ".json"


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", errors="surrogatepass"))


def index_path(profile: str) -> Path:
    return keys_directory() / index_name(profile)


def _legacy_index_path(profile: str) -> Path:
    """Where versions up to 0.2 kept the index (``prod:admin`` and ``prod_admin`` shared it)."""
    return keys_directory() / f"{_LEGACY.sub('_', profile)}.json"


def _username(profile: str) -> str:
    return f"profile/{profile}"


def stored_key_id(profile: str) -> str | None:
    """The access key id ``add`` stored for ``profile`` in the keyring (from the index, no
    keyring call), or ``None``."""
    path = index_path(profile)
    try:
        data = json.loads(read_regular_file(path))
    except FileNotFoundError:
        return _migrate(profile)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"The keyring index {path} cannot be read ({exc}): run "
            f"'aio-sts-session add {quote(profile)}' again, or delete it."
        ) from None
    if not isinstance(data, dict) or data.get("profile", profile) != profile:
        return None  # another profile's (a hash collision of two very long names)
    key_id = data.get("aws_access_key_id")
    return str(key_id) if key_id else None


def _migrate(profile: str) -> str | None:
    """An index written under the old, lossy file name: adopted for ``profile`` only if the
    keyring's item of exactly this profile holds the key it names (the old name may be another
    profile's), then written under the new name."""
    legacy = _legacy_index_path(profile)
    if legacy == index_path(profile):
        return None
    try:
        data = json.loads(read_regular_file(legacy))
        key_id = str(data["aws_access_key_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        held = load_keys(profile, sync_index=False)
    except (ConfigurationError, SourceCredentialsError):
        return None
    if held.access_key_id != key_id:
        return None
    _write_index(profile, key_id)
    return key_id


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


def load_keys(profile: str, *, sync_index: bool = True) -> KeyPair:
    """The keys ``add`` stored for ``profile``.

    The index follows the item: when another tool replaced the item with another key, the
    index is rewritten to name it (a warning says so), and when the item is gone the index is
    touched before the error is raised. Either way the index's identity changes, so the
    command line's warm path, which trusts the index, steps aside from then on and both paths
    serve (or refuse) the same."""
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
        if sync_index:
            with contextlib.suppress(OSError):
                os.utime(index_path(profile))
        raise SourceCredentialsError(
            f"The keys of profile {quote(profile)} are recorded as kept in the keyring, but "
            f"its item (service {SERVICE!r}) is missing: run 'aio-sts-session add "
            f"{profile}' again."
        )
    try:
        data = json.loads(raw)
        pair = KeyPair(str(data["aws_access_key_id"]), str(data["aws_secret_access_key"]))
    except (ValueError, KeyError, TypeError):
        raise SourceCredentialsError(
            f"The keyring item of profile {quote(profile)} is not one aio-sts-session wrote: "
            f"run 'aio-sts-session add {profile} --force'."
        ) from None
    if sync_index:
        _sync_index(profile, pair.access_key_id)
    return pair


def _sync_index(profile: str, key_id: str) -> None:
    try:
        indexed = json.loads(read_regular_file(index_path(profile))).get("aws_access_key_id")
    except (OSError, ValueError, AttributeError):
        return
    if indexed == key_id:
        return
    logger.warning(
        "The keyring item of profile %s holds access key %s, but its index named %s (changed "
        "by another tool?): the index now names %s.",
        quote(profile),
        key_id,
        indexed,
        key_id,
    )
    with contextlib.suppress(OSError):
        _write_index(profile, key_id)


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
    record = {"profile": profile, "aws_access_key_id": key_id, "stored_at": int(time.time())}
    write_private_file(path, json.dumps(record).encode())
