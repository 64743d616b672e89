"""The provider with an EncryptedFileCache: restarts, entry keys, refreshes shared by holders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from aio_sts_session import EncryptedFileCache, SessionTokenProvider
from aio_sts_session.testing import FakeSts

from .conftest import SERIAL, Device, FakeClock, source_session

MakeProvider = Callable[..., SessionTokenProvider]
KEY = EncryptedFileCache.generate_key()


@pytest.fixture
def file_cache(tmp_path: Path, clock: FakeClock) -> Callable[[], EncryptedFileCache]:
    return lambda: EncryptedFileCache(tmp_path / "cache", key=KEY, clock=clock)


async def test_a_restart_reads_the_token_without_prompting(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    device: Device,
    file_cache: Callable[[], EncryptedFileCache],
) -> None:
    first = make_provider(cache=file_cache())
    creds = await first.credentials()
    await first.close()
    second = make_provider(cache=file_cache())  # as a new process would
    assert await second.credentials() == creds
    assert second.stats.cache_loads == 1
    assert len(fake_sts.token_calls) == 1
    assert len(device.requests) == 1
    # the warm start made no STS call at all, not even the key check
    assert len(fake_sts.calls) == 2  # the first provider's GetCallerIdentity + GetSessionToken


BOB_KEY, BOB_SECRET = "AKIAFAKESTSBOB000002", "bob-long-term-secret-key-00000000000000"


@pytest.mark.parametrize(
    ("part", "mfa"),
    [
        (part, mfa)
        for part in ["access key id", "serial", "duration", "region", "endpoint"]
        for mfa in [True, False]
        if mfa or part != "serial"  # no serial without MFA
    ],
)
async def test_every_part_of_the_entry_key_keeps_tokens_apart(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    file_cache: Callable[[], EncryptedFileCache],
    part: str,
    mfa: bool,
) -> None:
    """Each part of the entry key, changed alone, must miss the cache: a dropped part would
    hand one IAM user another's token, or a token of the wrong duration or serial."""
    fake_sts.users[BOB_KEY] = BOB_SECRET
    fake_sts.devices["arn:aws:iam::123456789012:mfa/bob"] = fake_sts.devices[SERIAL]
    fake_sts.regions.add("eu-west-1")
    base: dict[str, object] = {} if mfa else {"mfa_serial": None, "mfa_callback": None}
    change: dict[str, object] = {
        "access key id": {"source_session": source_session(BOB_KEY, BOB_SECRET)},
        "serial": {"mfa_serial": "arn:aws:iam::123456789012:mfa/bob"},
        "duration": {"duration_seconds": 7200},
        "region": {"region_name": "eu-west-1"},
        "endpoint": {"endpoint_url": fake_sts.url.replace("127.0.0.1", "localhost")},
    }[part]
    first = await make_provider(cache=file_cache(), **base).credentials()
    again = make_provider(cache=file_cache(), **base)
    assert await again.credentials() == first  # the same configuration: a cache hit
    assert again.stats.cache_loads == 1
    other = make_provider(cache=file_cache(), **{**base, **change})
    assert await other.credentials() != first
    assert other.stats.cache_loads == 0
    assert len(fake_sts.token_calls) == 2
    if part == "access key id":
        assert fake_sts.token_calls[-1].access_key_id == BOB_KEY


async def test_refresh_by_one_holder_is_picked_up_by_the_other(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    device: Device,
    clock: FakeClock,
    file_cache: Callable[[], EncryptedFileCache],
) -> None:
    a = make_provider(cache=file_cache())
    b = make_provider(cache=file_cache())
    first = await a.credentials()
    assert await b.credentials() == first  # from the cache
    clock.advance(3600 - 30)  # both stale
    renewed = await a.credentials()
    assert renewed != first
    assert await b.credentials() == renewed  # b's refresh point: the cache, not a prompt
    assert b.stats.prompts == 0
    assert len(device.requests) == 2
    assert len(fake_sts.token_calls) == 2


async def test_concurrent_refreshes_of_two_holders_make_one_call(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    device: Device,
    file_cache: Callable[[], EncryptedFileCache],
) -> None:
    a = make_provider(cache=file_cache())
    b = make_provider(cache=file_cache())
    fake_sts.gate = asyncio.Event()
    ta = asyncio.ensure_future(a.credentials())
    await fake_sts.arrived.wait()  # a holds the file lock and is talking to STS
    tb = asyncio.ensure_future(b.credentials())  # b waits on the lock, loop not blocked
    await asyncio.sleep(0)
    assert not tb.done()
    fake_sts.gate.set()
    assert await ta == await tb
    assert len(fake_sts.token_calls) == 1
    assert len(device.requests) == 1
