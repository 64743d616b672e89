"""The encrypted cache entry's format, alone: what :class:`~._cache.EncryptedFileCache` writes
and what the command line's warm path reads (so it needs neither asyncio, nor filelock, nor
botocore). Nothing here touches the disk except :func:`read_regular_file`.

Entry file layout (``<sha256(entry key)[:32]>.token``, mode 0600)::

    b"ASTS\\x01" | expires_at (float64, big-endian) | nonce (12 bytes) | AES-256-GCM ciphertext+tag

The associated data is the 13-byte header followed by the entry key, so an entry copied over
another one (another profile, serial or duration) does not decrypt, and the clear-text expiry
(used to prune without the key) cannot be altered unnoticed. The plaintext is JSON:
``access_key_id``, ``secret_access_key``, ``session_token``, ``expiration`` (ISO 8601),
``expires_at``, ``lifetime``, ``skew``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import stat
import struct
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .exceptions import ConfigurationError

__all__ = [
    "HEADER",
    "MAGIC",
    "MAX_ENTRY_BYTES",
    "NONCE_BYTES",
    "SUFFIX",
    "decode_key",
    "entry_file_name",
    "generate_key",
    "hmac_sha256",
    "make_private_directory",
    "open_blob",
    "read_regular_file",
    "seal_blob",
    "sha256_hex",
    "write_private_file",
]

MAGIC = b"ASTS\x01"
HEADER = struct.Struct(">5sd")
NONCE_BYTES = 12
SUFFIX = ".token"
#: An entry is a few hundred bytes (a role's session token is the largest part): anything
#: larger than this is not one, and is not read.
MAX_ENTRY_BYTES = 64 * 1024
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def generate_key() -> str:
    """A new random 256-bit key as URL-safe base64 text."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def decode_key(key: str | bytes) -> bytes:
    """The 32 bytes of a cache key given as bytes or as URL-safe base64 text."""
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


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` in hex (cryptography's: hashlib would load OpenSSL again)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize().hex()


def entry_file_name(entry_key: str) -> str:
    """The file name of the entry for ``entry_key`` (a hash of it: the name reveals nothing)."""
    return sha256_hex(entry_key.encode())[:32] + SUFFIX


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of ``data`` under ``key``."""
    mac = _hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def seal_blob(aead: AESGCM, entry_key: str, expires_at: float, plaintext: dict[str, Any]) -> bytes:
    """An entry file's bytes: the clear header, a fresh random nonce, the ciphertext."""
    header = HEADER.pack(MAGIC, expires_at)
    nonce = os.urandom(NONCE_BYTES)
    data = json.dumps(plaintext).encode()
    return header + nonce + aead.encrypt(nonce, data, header + entry_key.encode())


def open_blob(aeads: list[AESGCM], entry_key: str, blob: bytes) -> dict[str, Any]:
    """An entry's plaintext, decrypted with any of ``aeads``; ``ValueError`` saying what is
    wrong with it otherwise."""
    if len(blob) < HEADER.size + NONCE_BYTES + 16:
        raise ValueError("truncated")
    header, rest = blob[: HEADER.size], blob[HEADER.size :]
    magic, _ = HEADER.unpack(header)
    if magic != MAGIC:
        raise ValueError("not an aio-sts-session entry")
    nonce, ciphertext = rest[:NONCE_BYTES], rest[NONCE_BYTES:]
    for aead in aeads:
        try:
            plaintext = aead.decrypt(nonce, ciphertext, header + entry_key.encode())
        except InvalidTag:
            continue
        try:
            data = json.loads(plaintext)
        except ValueError as exc:
            raise ValueError("undecodable content") from exc
        if not isinstance(data, dict):
            raise ValueError("undecodable content")
        return data
    raise ValueError("tampered, copied from another entry, or written with another key")


def read_regular_file(path: Path | str, limit: int = MAX_ENTRY_BYTES) -> bytes:
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
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
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
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask


def write_private_file(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` (mode 0600) atomically: written to a temporary file
    beside it, which is removed again if writing fails (a full disk leaves nothing behind)."""
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
