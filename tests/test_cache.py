"""MemoryCache and EncryptedFileCache: encryption, binding, rotation, permissions, atomicity."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import stat
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aio_sts_session import (
    CachedToken,
    CacheLockTimeoutError,
    ConfigurationError,
    EncryptedFileCache,
    MemoryCache,
    SessionCredentials,
    TokenCache,
)
from aio_sts_session._cache import PRUNE_MARGIN

from .conftest import T0, FakeClock, logs_warning

KEY_A = "v1|AKIAONE|arn:aws:iam::123456789012:mfa/alice|3600|us-east-1|-"
KEY_B = "v1|AKIAONE|arn:aws:iam::123456789012:mfa/alice|900|us-east-1|-"
SECRET, TOKEN = "cache-test-secret-value", "cache-test-session-token-value"
CACHE_KEY = EncryptedFileCache.generate_key()


def token(expires_at: float = T0 + 3600) -> CachedToken:
    return CachedToken(
        credentials=SessionCredentials(
            access_key_id="ASIACACHETEST",
            secret_access_key=SECRET,
            session_token=TOKEN,
            expiration=dt.datetime.fromtimestamp(expires_at, dt.timezone.utc),
        ),
        expires_at=expires_at,
        lifetime=3600,
        skew=0.0,
    )


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def cache(cache_dir: Path, clock: FakeClock) -> EncryptedFileCache:
    return EncryptedFileCache(cache_dir, key=CACHE_KEY, clock=clock)


def entry_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.token"))


def test_both_caches_implement_the_protocol(cache: EncryptedFileCache) -> None:
    assert isinstance(MemoryCache(), TokenCache)
    assert isinstance(cache, TokenCache)


async def test_memory_cache_round_trip_and_lock() -> None:
    memory = MemoryCache()
    assert await memory.load(KEY_A) is None
    await memory.store(KEY_A, token())
    assert (await memory.load(KEY_A)) == token()
    async with memory.lock(KEY_A, 1):
        with pytest.raises(CacheLockTimeoutError):
            async with memory.lock(KEY_A, 0.01):
                pass
    await memory.delete(KEY_A)
    assert await memory.load(KEY_A) is None


async def test_round_trip_and_nothing_in_plaintext(
    cache: EncryptedFileCache, cache_dir: Path
) -> None:
    await cache.store(KEY_A, token())
    fresh = EncryptedFileCache(cache_dir, key=[CACHE_KEY], clock=cache._clock)  # a new process
    loaded = await fresh.load(KEY_A)
    assert loaded == token()
    (path,) = entry_files(cache_dir)
    blob = path.read_bytes()
    for clear in (SECRET, TOKEN, "ASIACACHETEST", "AKIAONE", "alice"):
        assert clear.encode() not in blob
        assert clear not in path.name
    assert "***" in repr(loaded)
    assert SECRET not in repr(cache)


async def test_permissions(cache: EncryptedFileCache, cache_dir: Path) -> None:
    await cache.store(KEY_A, token())
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    (path,) = entry_files(cache_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_directory_readable_by_others_is_a_warning(
    cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir.mkdir(mode=0o755)
    os.chmod(cache_dir, 0o755)
    cache = EncryptedFileCache(cache_dir, key=EncryptedFileCache.generate_key())
    with logs_warning(caplog, "accessible to other users"):
        await cache.store(KEY_A, token(expires_at=9e9))
    assert await cache.load(KEY_A) is not None


def _corrupt(path: Path, how: str) -> None:
    blob = bytearray(path.read_bytes())
    if how == "tampered":
        blob[-5] ^= 0x01
    elif how == "truncated":
        blob = blob[: len(blob) // 2]
    elif how == "garbage":
        blob = bytearray(b"not an entry at all" * 3)
    elif how == "empty":
        blob = bytearray()
    elif how == "expiry-edited":  # the clear-text expiry is authenticated too
        blob[5:13] = struct.pack(">d", 9e9)
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("how", ["tampered", "truncated", "garbage", "empty", "expiry-edited"])
async def test_damaged_entry_is_a_miss_with_a_warning_naming_the_file(
    cache: EncryptedFileCache, cache_dir: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    await cache.store(KEY_A, token())
    (path,) = entry_files(cache_dir)
    _corrupt(path, how)
    with logs_warning(caplog, str(path.name)):
        assert await cache.load(KEY_A) is None
    await cache.store(KEY_A, token())  # replaced at the next refresh
    assert await cache.load(KEY_A) == token()


async def test_wrong_key_is_a_miss(
    cache: EncryptedFileCache, cache_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await cache.store(KEY_A, token())
    other = EncryptedFileCache(cache_dir, key=EncryptedFileCache.generate_key(), clock=clock)
    with logs_warning(caplog, "another key"):
        assert await other.load(KEY_A) is None


async def test_entry_copied_over_another_does_not_decrypt(
    cache: EncryptedFileCache, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await cache.store(KEY_A, token())
    cache.path_for(KEY_B).write_bytes(cache.path_for(KEY_A).read_bytes())
    with logs_warning(caplog, "copied from another entry"):
        assert await cache.load(KEY_B) is None
    assert await cache.load(KEY_A) == token()


async def test_key_rotation(
    cache_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = EncryptedFileCache.generate_key(), EncryptedFileCache.generate_key()
    await EncryptedFileCache(cache_dir, key=old, clock=clock).store(KEY_A, token())
    rotated = EncryptedFileCache(cache_dir, key=[new, old], clock=clock)
    assert await rotated.load(KEY_A) == token()  # read with the old key
    await rotated.store(KEY_A, token())  # written with the newest
    assert await EncryptedFileCache(cache_dir, key=new, clock=clock).load(KEY_A) == token()
    with logs_warning(caplog):
        assert await EncryptedFileCache(cache_dir, key=old, clock=clock).load(KEY_A) is None


@pytest.mark.parametrize("bad", ["short", "x" * 44, b"0" * 31, []])
def test_bad_keys_are_configuration_errors(bad: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="generate_key"):
        EncryptedFileCache(tmp_path, key=bad)  # type: ignore[arg-type]


def test_generate_key_is_random_and_32_bytes() -> None:
    import base64

    a, b = EncryptedFileCache.generate_key(), EncryptedFileCache.generate_key()
    assert a != b
    assert len(base64.urlsafe_b64decode(a)) == 32


async def test_expired_entries_are_pruned_once_long_expired(
    cache: EncryptedFileCache, cache_dir: Path, clock: FakeClock
) -> None:
    await cache.store(KEY_A, token(expires_at=T0 + 100))
    await cache.store(KEY_B, token(expires_at=T0 + 3600))
    clock.advance(200)
    assert await cache.load(KEY_A) is None  # expired: a miss ...
    await cache.store("v1|other", token(expires_at=T0 + 9000))
    assert len(entry_files(cache_dir)) == 3  # ... but kept while another clock may differ
    clock.advance(PRUNE_MARGIN + 3600)  # both expired for longer than the margin
    await cache.store("v1|other", token(expires_at=clock() + 9000))  # a store prunes
    assert [p.name for p in entry_files(cache_dir)] == [cache.path_for("v1|other").name]


async def test_a_crash_mid_write_leaves_the_old_entry_intact(
    cache: EncryptedFileCache,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await cache.store(KEY_A, token())

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    newer = token(expires_at=T0 + 7200)
    with logs_warning(caplog, "No space left on device"):
        await cache.store(KEY_A, newer)
    assert await cache.load(KEY_A) == newer  # kept in this process's memory
    monkeypatch.undo()
    reread = EncryptedFileCache(cache_dir, key=CACHE_KEY, clock=cache._clock)
    assert await reread.load(KEY_A) == token()
    assert [p.name for p in cache_dir.iterdir() if p.name.startswith(".tmp")] == []


async def test_unusable_directory_degrades_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = EncryptedFileCache(blocker / "cache", key=EncryptedFileCache.generate_key())
    with logs_warning(caplog, "memory only"):
        await cache.store(KEY_A, token(expires_at=9e9))
    assert await cache.load(KEY_A) == token(expires_at=9e9)
    async with cache.lock(KEY_A, 1):
        pass


async def test_file_lock_excludes_a_second_holder(
    cache: EncryptedFileCache, cache_dir: Path
) -> None:
    other = EncryptedFileCache(cache_dir, key=CACHE_KEY)
    async with cache.lock(KEY_A, 5):
        with pytest.raises(CacheLockTimeoutError, match="another process"):
            async with other.lock(KEY_A, 0.2):
                pass
    async with other.lock(KEY_A, 1):  # released: free again
        pass


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=400))
def test_any_bytes_in_an_entry_file_are_a_miss(blob: bytes, tmp_path: Path) -> None:
    cache = EncryptedFileCache(tmp_path / "h", key=EncryptedFileCache.generate_key())
    cache._ensure_directory()
    cache.path_for(KEY_A).write_bytes(blob)

    async def load() -> object:
        return await cache.load(KEY_A)

    assert asyncio.run(load()) is None


_SEALED = EncryptedFileCache(Path("/nonexistent"), key=CACHE_KEY)._seal(KEY_A, token(9e9))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    how=st.sampled_from(["flip", "truncate", "insert", "splice"]),
)
def test_a_valid_header_with_a_damaged_body_is_a_miss(
    data: st.DataObject, how: str, tmp_path: Path
) -> None:
    """Random bytes almost never carry the magic header: here every entry has a genuine header
    and the damage is behind it (nonce, ciphertext, tag)."""
    header = 13
    blob = bytearray(_SEALED)
    if how == "flip":
        at = data.draw(st.integers(header, len(blob) - 1))
        blob[at] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        blob = blob[: data.draw(st.integers(header, len(blob) - 1))]
    elif how == "insert":
        at = data.draw(st.integers(header, len(blob)))
        blob[at:at] = data.draw(st.binary(min_size=1, max_size=40))
    else:
        at = data.draw(st.integers(header, len(blob) - 1))
        blob[at:] = data.draw(st.binary(max_size=200))
    cache = EncryptedFileCache(tmp_path / "d", key=CACHE_KEY)
    cache._ensure_directory()
    cache.path_for(KEY_A).write_bytes(bytes(blob))
    loaded = asyncio.run(cache.load(KEY_A))
    if bytes(blob) == _SEALED:  # a splice can put back exactly what was there
        assert loaded == token(9e9)
    else:
        assert loaded is None


class _MemoryKeyring:
    """A keyring backend that keeps passwords in a dict (the real OS keyrings are not here)."""

    priority = 1

    def __init__(self) -> None:
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password


async def test_key_from_the_os_keyring_is_made_once_then_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring = pytest.importorskip("keyring")
    backend = _MemoryKeyring()
    monkeypatch.setattr(keyring, "get_password", backend.get_password)
    monkeypatch.setattr(keyring, "set_password", backend.set_password)
    first = EncryptedFileCache.from_keyring(tmp_path / "k")
    await first.store(KEY_A, token(expires_at=9e9))
    assert list(backend.passwords) == [("aio-sts-session", "cache-key")]
    second = EncryptedFileCache.from_keyring(tmp_path / "k")  # another process, same key
    assert await second.load(KEY_A) == token(expires_at=9e9)


async def test_keyring_without_a_backend_is_a_configuration_error_before_any_prompt(
    tmp_path: Path,
) -> None:
    """``from_keyring`` reads the keyring at the cache's first use, in a worker thread (it no
    longer blocks the event loop when called from async code): ``lock``, which a refresh takes
    before anyone is asked for a code, is where a keyring without a backend is reported."""
    import threading

    keyring = pytest.importorskip("keyring")
    from keyring.backends.fail import Keyring as NoBackend

    previous = keyring.get_keyring()
    keyring.set_keyring(NoBackend())
    try:
        cache = EncryptedFileCache.from_keyring(tmp_path / "k")  # reads nothing yet
        assert "keys=keyring" in repr(cache)
        with pytest.raises(ConfigurationError, match="keyring backend"):
            async with cache.lock(KEY_A, 5):
                pass
    finally:
        keyring.set_keyring(previous)

    seen: list[str] = []

    class Recording(NoBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            seen.append(threading.current_thread().name)
            return CACHE_KEY

    keyring.set_keyring(Recording())
    try:
        cache = EncryptedFileCache.from_keyring(tmp_path / "k")
        await cache.store(KEY_A, token())
        assert (await cache.load(KEY_A)) is not None
    finally:
        keyring.set_keyring(previous)
    assert seen
    assert threading.main_thread().name not in seen  # off the event loop
    assert len(seen) == 1


async def test_with_key_from_reads_the_key_once_at_first_use_off_the_loop(tmp_path: Path) -> None:
    import threading

    seen: list[str] = []

    def load_key() -> str:
        seen.append(threading.current_thread().name)
        return CACHE_KEY

    cache = EncryptedFileCache.with_key_from(tmp_path / "k", load_key)
    assert seen == []  # nothing read yet
    await cache.store(KEY_A, token(expires_at=9e9))
    assert await cache.load(KEY_A) == token(expires_at=9e9)
    assert len(seen) == 1
    assert threading.main_thread().name not in seen
    other = EncryptedFileCache(tmp_path / "k", key=CACHE_KEY)  # the same key, given directly
    assert await other.load(KEY_A) == token(expires_at=9e9)

    def broken() -> str:
        raise ConfigurationError("no key here: set AIO_STS_SESSION_CACHE_KEY")

    failing = EncryptedFileCache.with_key_from(tmp_path / "k", broken)
    with pytest.raises(ConfigurationError, match="no key here"):
        async with failing.lock(KEY_A, 5):
            pass


async def test_prune_skips_an_entry_whose_lock_another_process_holds(
    cache: EncryptedFileCache, cache_dir: Path, clock: FakeClock
) -> None:
    await cache.store(KEY_A, token(expires_at=T0 + 100))
    clock.advance(PRUNE_MARGIN + 200)  # KEY_A is expired on disk ...
    holder = EncryptedFileCache(cache_dir, key=CACHE_KEY, clock=clock)
    async with holder.lock(KEY_A, 5):  # ... but another process is refreshing it
        await cache.store(KEY_B, token(expires_at=clock() + 9000))  # this store prunes
        assert cache.path_for(KEY_A).exists()
    await cache.store(KEY_B, token(expires_at=clock() + 9000))  # lock free: pruned now
    assert not cache.path_for(KEY_A).exists()


async def test_prune_judges_again_under_the_lock(
    cache: EncryptedFileCache, cache_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judged expired, then replaced by another process with a fresh token before the lock is
    taken: the fresh entry must survive (else a third process waiting on it prompts again)."""
    await cache.store(KEY_A, token(expires_at=T0 + 100))
    clock.advance(PRUNE_MARGIN + 200)
    writer = EncryptedFileCache(cache_dir, key=CACHE_KEY, clock=clock)
    judged = cache._expired_on_disk
    replaced: list[bool] = []

    def judge_then_race(entry: Path) -> bool:
        verdict = judged(entry)
        if verdict and entry == cache.path_for(KEY_A) and not replaced:
            writer._write_sync(KEY_A, token(expires_at=clock() + 7200))  # the other process
            replaced.append(True)
        return verdict

    monkeypatch.setattr(cache, "_expired_on_disk", judge_then_race)
    await cache.store(KEY_B, token(expires_at=clock() + 9000))
    assert replaced == [True]
    assert await writer.load(KEY_A) == token(expires_at=clock() + 7200)


async def test_a_read_only_directory_is_still_read(
    cache: EncryptedFileCache,
    cache_dir: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await cache.store(KEY_A, token())
    os.chmod(cache_dir, 0o500)
    real_access = os.access  # root ignores modes: report them as an ordinary user would see

    def access(path: object, mode: int) -> bool:
        return not (mode & os.W_OK) and real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    try:
        reader = EncryptedFileCache(cache_dir, key=CACHE_KEY, clock=clock)
        with logs_warning(caplog, "read-only"):
            assert await reader.load(KEY_A) == token()
        await reader.store(KEY_B, token(expires_at=T0 + 7200))  # memory only, no error
        assert await reader.load(KEY_B) == token(expires_at=T0 + 7200)
        async with reader.lock(KEY_B, 1):
            pass
    finally:
        os.chmod(cache_dir, 0o700)


async def test_every_write_uses_a_new_random_nonce(
    cache: EncryptedFileCache, cache_dir: Path
) -> None:
    """AES-GCM with a repeated nonce loses confidentiality and integrity."""
    nonces = set()
    for _ in range(50):
        await cache.store(KEY_A, token())
        blob = cache.path_for(KEY_A).read_bytes()
        nonces.add(blob[13:25])
    assert len(nonces) == 50
    # and the same token written twice never gives the same ciphertext
    first = cache._seal(KEY_A, token())
    assert first != cache._seal(KEY_A, token())
