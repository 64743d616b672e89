"""Where the command line's cache key comes from: environment, OS keyring, key file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.null
import keyring.errors
import pytest
from keyring.backend import KeyringBackend

from aio_sts_session import ConfigurationError, EncryptedFileCache
from aio_sts_session._cachekey import (
    cache_directory,
    describe_key_source,
    key_file_path,
    resolve_cache_key,
)


class MemoryKeyring(KeyringBackend):  # type: ignore[misc]
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}
        self.fail = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.fail:
            raise keyring.errors.KeyringLocked("locked")
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AIO_STS_SESSION_CACHE_KEY", raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.null.Keyring())
    yield
    keyring.set_keyring(previous)


def test_the_environment_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    key = EncryptedFileCache.generate_key()
    monkeypatch.setenv("AIO_STS_SESSION_CACHE_KEY", key)
    keyring.set_keyring(MemoryKeyring())
    source = resolve_cache_key()
    assert source.key == key
    assert "AIO_STS_SESSION_CACHE_KEY" in source.where
    assert key not in repr(source)
    assert not key_file_path().exists()
    monkeypatch.setenv("AIO_STS_SESSION_CACHE_KEY", "short")
    with pytest.raises(ConfigurationError, match="is not a cache key"):
        resolve_cache_key()


def test_then_the_keyring_when_it_has_a_backend() -> None:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    first = resolve_cache_key()
    assert first.key == resolve_cache_key().key  # made once, then read back
    assert backend.store == {("aio-sts-session", "cache-key"): first.key}
    assert "OS keyring" in first.where
    assert describe_key_source() == first.where
    assert not key_file_path().exists()
    backend.fail = True
    with pytest.raises(ConfigurationError, match=r"unlock it or configure.*AIO_STS"):
        resolve_cache_key()


def test_else_a_key_file_readable_only_by_the_user_apart_from_the_cache(tmp_path: Path) -> None:
    assert describe_key_source() == f"the key file {key_file_path()}"
    first = resolve_cache_key()
    path = key_file_path()
    assert path.is_relative_to(tmp_path / "config")
    assert cache_directory().is_relative_to(tmp_path / "cache")  # apart from the key
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert resolve_cache_key().key == first.key
    EncryptedFileCache(cache_directory(), key=first.key)  # a valid key


def test_a_key_file_others_can_read_is_refused() -> None:
    resolve_cache_key()
    key_file_path().chmod(0o640)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        resolve_cache_key()


def test_processes_starting_together_share_one_key_file() -> None:
    keys: list[str] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        keys.append(resolve_cache_key().key)

    workers = [threading.Thread(target=make) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1
    assert [p.name for p in key_file_path().parent.iterdir()] == ["cache.key"]  # no leftovers
