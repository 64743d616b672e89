"""Real processes sharing one EncryptedFileCache against the strict fake STS."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest

from aio_sts_session import EncryptedFileCache
from aio_sts_session.testing import FakeSts

from .conftest import ACCESS_KEY, SECRET_KEY, SERIAL

WORKER = Path(__file__).with_name("cache_worker.py")


@pytest.fixture
async def real_time_sts() -> AsyncIterator[FakeSts]:
    """The fake on the real clock: the workers' clocks are real."""
    fake = FakeSts(
        time.time, users={ACCESS_KEY: SECRET_KEY}, devices={SERIAL: pyotp.random_base32()}
    )
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def worker_env(real_time_sts: FakeSts, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_ENDPOINT_URL_STS=real_time_sts.url,
        WORKER_TOTP_SECRET=real_time_sts.devices[SERIAL],
        WORKER_SERIAL=SERIAL,
        WORKER_CACHE_DIR=str(tmp_path / "shared-cache"),
        WORKER_CACHE_KEY=EncryptedFileCache.generate_key(),
    )
    return env


class Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def next_line(self) -> str:
        assert self.process.stdout is not None
        line = (await asyncio.wait_for(self.process.stdout.readline(), 60)).decode().strip()
        self.lines.append(line)
        return line

    async def wait_for(self, prefix: str) -> str:
        while True:
            line = await self.next_line()
            if line.startswith(prefix) or line == "":
                return line

    async def finish(self) -> list[str]:
        assert self.process.stdout is not None
        rest = await asyncio.wait_for(self.process.stdout.read(), 60)
        self.lines += rest.decode().split()
        await self.process.wait()
        return self.lines


async def start(env: dict[str, str], **extra: str) -> Worker:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        env={**env, **extra},
        cwd=str(Path(__file__).parent.parent),
        stdout=asyncio.subprocess.PIPE,
    )
    return Worker(process)


async def test_six_processes_started_together_ask_for_one_code(
    real_time_sts: FakeSts, worker_env: dict[str, str]
) -> None:
    workers = await asyncio.gather(*(start(worker_env) for _ in range(6)))
    outputs = await asyncio.gather(*(w.finish() for w in workers))
    text = [" ".join(o) for o in outputs]
    assert sum(t.count("PROMPT") for t in text) == 1, text
    keys = {o[o.index("CREDS") + 1] for o in outputs}
    assert len(keys) == 1, text  # everyone got the same credentials
    assert all(w.process.returncode == 0 for w in workers)
    assert len(real_time_sts.token_calls) == 1


async def test_a_process_killed_while_holding_the_lock_does_not_wedge_the_others(
    real_time_sts: FakeSts, worker_env: dict[str, str]
) -> None:
    stuck = await start(worker_env, WORKER_HANG="1")  # prompts, then never answers
    assert (await stuck.wait_for("PROMPT")).startswith("PROMPT")  # it holds the lock now
    other = await start(worker_env, WORKER_PROBE="1")
    assert await other.wait_for("READY") == "READY"
    for _ in range(5):  # 500 ms of ticks: other is waiting on the lock, its loop running
        assert await other.next_line() == "TICK"
    stuck.process.send_signal(signal.SIGKILL)
    await stuck.process.wait()
    lines = await other.finish()
    assert "PROMPT" in lines  # asked only once the holder was gone
    assert "CREDS" in lines
    # The ticks above came while it waited for the lock: its event loop kept running (a wait
    # on the loop would have held every tick back until the holder was gone). How late the
    # ticks were is speed, and a loaded machine's: the benchmarks measure speed, not tests.
    assert len(real_time_sts.token_calls) == 1


async def test_a_waiter_gives_up_after_the_lock_timeout_with_a_clear_error(
    worker_env: dict[str, str],
) -> None:
    stuck = await start(worker_env, WORKER_HANG="1")
    try:
        await stuck.wait_for("PROMPT")
        waiter = await start(worker_env, WORKER_LOCK_TIMEOUT="0.5")
        line = await waiter.wait_for("ERROR")
        assert line.startswith("ERROR CacheLockTimeoutError")
        assert "another process refreshing the same credentials" in line
        await waiter.process.wait()
        assert waiter.process.returncode == 1
    finally:
        stuck.process.kill()
        await stuck.process.wait()


_WRITER = """
import asyncio, datetime as dt, os, sys, time
from aio_sts_session import CachedToken, EncryptedFileCache, SessionCredentials

def token(expires_at):
    return CachedToken(SessionCredentials("ASIAKILLED", "s3cret", "t0ken",
        dt.datetime.fromtimestamp(expires_at, dt.timezone.utc)), expires_at, 3600)

async def main():
    cache = EncryptedFileCache(sys.argv[1], key=sys.argv[2])
    def stuck_fsync(fd):
        print("WRITING", flush=True)
        time.sleep(3600)  # killed here: the new entry is half on disk, not yet renamed
    os.fsync = stuck_fsync
    await cache.store("v1|entry", token(time.time() + 7200))

asyncio.run(main())
"""


async def test_a_process_killed_while_writing_leaves_the_old_entry_readable(
    tmp_path: Path,
) -> None:
    import datetime as dt
    import subprocess

    from aio_sts_session import CachedToken, EncryptedFileCache, SessionCredentials

    key = EncryptedFileCache.generate_key()
    directory = tmp_path / "cache"
    old = CachedToken(
        SessionCredentials(
            "ASIAOLDENTRY",
            "old-secret",
            "old-token",
            dt.datetime.fromtimestamp(time.time() + 3600, dt.timezone.utc),
        ),
        time.time() + 3600,
        3600,
    )
    await EncryptedFileCache(directory, key=key).store("v1|entry", old)
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER, str(directory), key, stdout=subprocess.PIPE
    )
    assert writer.stdout is not None
    assert (await asyncio.wait_for(writer.stdout.readline(), 60)).strip() == b"WRITING"
    writer.send_signal(signal.SIGKILL)
    await writer.wait()
    leftovers = [p for p in directory.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers  # the killed write really was half-way
    reader = EncryptedFileCache(directory, key=key)
    assert await reader.load("v1|entry") == old  # the old entry, intact
    await reader.store("v1|other", old)  # the cache keeps working around the leftover
    assert await reader.load("v1|other") == old
