"""Flight: one task, many waiters, driven with gates."""

from __future__ import annotations

import asyncio

import pytest

from aio_sts_session import CachedToken, ProviderClosedError
from aio_sts_session._flight import Flight

from .test_cache import token


async def test_every_waiter_gets_the_one_result_and_a_cancelled_waiter_changes_nothing() -> None:
    gate, runs, done = asyncio.Event(), [], []

    async def refresh() -> CachedToken:
        runs.append(1)
        await gate.wait()
        return token()

    flight = Flight(refresh, done.append, eager=True).start()
    waiters = [asyncio.ensure_future(flight.wait()) for _ in range(1000)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    gate.set()
    results = await asyncio.gather(*waiters[1:])
    assert all(r is results[0] for r in results)
    assert waiters[0].cancelled()
    assert runs == [1]
    assert done == [flight]


async def test_an_error_is_shared_not_rerun() -> None:
    gate, runs = asyncio.Event(), []

    async def refresh() -> CachedToken:
        runs.append(1)
        await gate.wait()
        raise RuntimeError("boom")

    flight = Flight(refresh, lambda f: None, eager=False).start()
    waiters = [flight.wait() for _ in range(100)]
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert runs == [1]


async def test_cancelling_the_flight_tells_waiters_the_provider_closed() -> None:
    async def refresh() -> CachedToken:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    flight = Flight(refresh, lambda f: None, eager=True).start()
    waiter = flight.wait()
    await flight.cancel()
    with pytest.raises(ProviderClosedError):
        await waiter
