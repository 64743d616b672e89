"""What a red-team review of the file cache found, each reproduced: oversized, special and
planted entry files, another user's directory, symlinked locks, a passing EMFILE, a clock hours
ahead, writers killed mid-write, and directories made under umask 000."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import time
from pathlib import Path

import filelock
import pytest

from aio_sts_session import EncryptedFileCache
from aio_sts_session._cache import DISK_RETRY_SECONDS, TEMPORARY_MAX_AGE
from aio_sts_session._entry import MAX_ENTRY_BYTES, make_private_directory

from .conftest import T0, FakeClock, logs_warning

# test_cache's fixtures, imported by name so pytest finds them:
from .test_cache import CACHE_KEY, KEY_A, KEY_B, cache, cache_dir, token  # noqa: F401


async def test_a_huge_sparse_entry_is_not_read(
    cache: EncryptedFileCache, caplog: pytest.LogCaptureFixture
) -> None:
    await cache.store(KEY_B, token())  # makes the directory
    path = cache.path_for(KEY_A)
    with path.open("wb") as fh:
        fh.truncate(1 << 30)  # 1 GiB, sparse: cheap to make, 1 GiB to read
    with logs_warning(caplog, f"larger than {MAX_ENTRY_BYTES} bytes"):
        assert await cache.load(KEY_A) is None


async def test_a_symlink_to_dev_zero_is_refused(
    cache: EncryptedFileCache, caplog: pytest.LogCaptureFixture
) -> None:
    await cache.store(KEY_B, token())
    cache.path_for(KEY_A).symlink_to("/dev/zero")
    with logs_warning(caplog, "Could not read credential cache entry"):
        assert await asyncio.wait_for(cache.load(KEY_A), 10) is None


async def test_a_planted_fifo_neither_hangs_a_load_nor_a_prune(
    cache: EncryptedFileCache, cache_dir: Path, clock: FakeClock
) -> None:
    await cache.store(KEY_B, token())
    os.mkfifo(cache.path_for(KEY_A))
    assert await asyncio.wait_for(cache.load(KEY_A), 10) is None
    clock.advance(10 * 24 * 3600)  # everything is long expired: a store prunes
    await asyncio.wait_for(cache.store("v1|other", token(expires_at=clock() + 3600)), 10)
    assert stat.S_ISFIFO(cache.path_for(KEY_A).lstat().st_mode)  # not ours to delete


async def test_a_directory_owned_by_another_user_is_refused(
    cache_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    cache_dir.mkdir(mode=0o700)
    os.chown(cache_dir, 4242, 4242)
    cache = EncryptedFileCache(cache_dir, key=CACHE_KEY, clock=clock)
    with logs_warning(caplog, "belongs to another user"):
        await cache.store(KEY_A, token())
    assert list(cache_dir.iterdir()) == []  # nothing written there
    assert await cache.load(KEY_A) == token()  # kept in memory


async def test_a_symlinked_lock_file_never_truncates_its_target(
    cache: EncryptedFileCache, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await cache.store(KEY_B, token())
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    cache.path_for(KEY_A).with_suffix(".lock").symlink_to(victim)
    with logs_warning(caplog, "unusable"):
        async with cache.lock(KEY_A, 1):  # refused on disk: this refresh locks in memory
            pass
    assert victim.read_text() == "precious\n"


def test_the_declared_filelock_floor_opens_locks_without_following_symlinks() -> None:
    """filelock before 3.20.1 (Unix locks) and 3.20.3 (soft locks) followed a symlinked lock
    file and truncated its target (CVE-2025-68146, CVE-2026-22701)."""
    from importlib.metadata import requires

    declared = [r for r in requires("aio-sts-session") or [] if r.startswith("filelock")]
    assert declared, "filelock must be a declared dependency"
    floor = declared[0].split(">=")[1].split(",")[0].split(";")[0].strip()
    assert tuple(int(p) for p in floor.split(".")) >= (3, 20, 3), declared
    installed = tuple(int(part) for part in filelock.__version__.split(".")[:3])
    assert installed >= (3, 20, 3)


async def test_one_failed_lock_does_not_turn_the_cache_to_memory_for_good(
    cache: EncryptedFileCache,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await cache.store(KEY_B, token())
    real_acquire = filelock.AsyncFileLock.acquire
    failures = [OSError(errno.EMFILE, "Too many open files")]

    async def acquire(self: filelock.AsyncFileLock, *args: object, **kwargs: object) -> object:
        if failures:
            raise failures.pop()
        return await real_acquire(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(filelock.AsyncFileLock, "acquire", acquire)
    with logs_warning(caplog, "Too many open files"):
        async with cache.lock(KEY_A, 1):
            await cache.store(KEY_A, token())  # during the episode: memory
    clock.advance(DISK_RETRY_SECONDS + 1)
    await cache.store(KEY_A, token(expires_at=T0 + 7200))  # the disk again
    other = EncryptedFileCache(cache.directory, key=CACHE_KEY, clock=clock)
    assert await other.load(KEY_A) == token(expires_at=T0 + 7200)
    async with cache.lock(KEY_A, 1):  # a file lock again
        assert cache.path_for(KEY_A).with_suffix(".lock").exists()


async def test_a_clock_hours_ahead_deletes_no_entry_others_still_use(
    cache: EncryptedFileCache, cache_dir: Path, clock: FakeClock
) -> None:
    await cache.store(KEY_A, token(expires_at=T0 + 3600))  # valid for an hour
    ahead = EncryptedFileCache(cache_dir, key=CACHE_KEY, clock=FakeClock(T0 + 2 * 3600))
    assert await ahead.load(KEY_A) is None  # expired by its clock: a miss for it ...
    await ahead.store(KEY_B, token(expires_at=T0 + 6 * 3600))  # ... and a store prunes
    assert await cache.load(KEY_A) == token(expires_at=T0 + 3600)  # still there for us


async def test_temporary_files_of_killed_writers_are_pruned(
    cache: EncryptedFileCache, cache_dir: Path
) -> None:
    await cache.store(KEY_B, token())
    old_empty = cache_dir / ".tmp-killed1.token"
    old_full = cache_dir / ".tmp-killed2.token"
    recent = cache_dir / ".tmp-writing.token"  # a writer may be working on it now
    for path in (old_empty, old_full, recent):
        path.write_bytes(b"" if path is old_empty else b"x" * 300)
    long_ago = time.time() - TEMPORARY_MAX_AGE - 60
    os.utime(old_empty, (long_ago, long_ago))
    os.utime(old_full, (long_ago, long_ago))
    await cache.store(KEY_A, token())
    assert not old_empty.exists()
    assert not old_full.exists()
    assert recent.exists()


def test_missing_parents_are_made_private_under_umask_000(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        target = tmp_path / "home" / ".cache" / "aio-sts-session"
        make_private_directory(target)
    finally:
        os.umask(previous)
    for directory in (tmp_path / "home", tmp_path / "home" / ".cache", target):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


async def test_the_cache_directory_itself_is_made_under_umask_000(
    tmp_path: Path, clock: FakeClock
) -> None:
    previous = os.umask(0)
    try:
        cache = EncryptedFileCache(tmp_path / "a" / "b" / "cache", key=CACHE_KEY, clock=clock)
        await cache.store(KEY_A, token())
    finally:
        os.umask(previous)
    for directory in (tmp_path / "a", tmp_path / "a" / "b", cache.directory):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
