"""A provider in a long-running service: any event loop and thread, callers that never wait
for a person longer than ``max_wait``, renewal before anyone asks (``keep_fresh``), logging
that fits a library. Over real HTTP against the strict fake STS; one injected clock, moved by
hand; no test sleeps to let time pass."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import pytest

from aio_sts_session import (
    ConfigurationError,
    MfaRequest,
    RefreshPendingError,
    SessionTokenProvider,
    State,
)
from aio_sts_session._flight import Flight, FlightLost
from aio_sts_session.testing import FakeSts, Fault

from .conftest import SERIAL, Device, FakeClock, provider_for_threaded_fake

MakeProvider = Callable[..., SessionTokenProvider]


# -- any event loop, any thread ------------------------------------------------------------------


def test_one_provider_on_several_loops_and_threads_asks_once(
    threaded_fake_sts: FakeSts, clock: FakeClock
) -> None:
    """A module-level provider, threads each running ``asyncio.run``: while one loop's refresh
    waits for its MFA code, the others join it (it raised "attached to a different loop");
    one prompt, one STS call, the same credentials everywhere."""
    fake = threaded_fake_sts
    provider = provider_for_threaded_fake(fake, clock)
    prompts: list[int] = []
    answer = threading.Event()

    def human(request: MfaRequest) -> str:  # a plain callback: runs in a thread of its own
        prompts.append(1)
        answer.wait(60)  # until every loop's callers wait for this refresh
        return fake.fresh_code(SERIAL)

    provider._root_source._callback = human
    results: list[object] = []

    async def callers() -> None:
        results.extend(await asyncio.gather(*(provider.credentials() for _ in range(20))))

    threads = [threading.Thread(target=asyncio.run, args=(callers(),)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for _ in range(60_000):  # a hang detector bounds it, not a speed
        flight = provider._slot.current()
        if flight is not None and len(flight._waiters) == 100:
            break
        threading.Event().wait(0.001)
    waiting = provider._slot.current()
    assert waiting is not None
    assert len({loop for _, loop, _ in waiting._waiters}) == 5  # five loops, one refresh
    answer.set()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    assert len(results) == 100
    assert len({r.access_key_id for r in results}) == 1  # type: ignore[attr-defined]
    assert len(fake.token_calls) == 1
    assert len(prompts) == 1


def test_a_loop_that_ends_closes_its_sts_client_on_itself(
    threaded_fake_sts: FakeSts, clock: FakeClock
) -> None:
    """Each loop that refreshes gets its own STS client; when its ``asyncio.run`` ends, the
    client is closed on that loop as it ends: nothing is left for the garbage collector to
    report as an unclosed aiohttp session."""
    import gc
    import warnings
    import weakref

    fake = threaded_fake_sts
    provider = provider_for_threaded_fake(fake, clock)
    provider._root_source._callback = lambda request: fake.fresh_code(SERIAL)
    clients: list[weakref.ref[object]] = []

    async def one_refresh() -> None:
        await provider.refresh()
        clients.append(weakref.ref(provider._sts._clients[asyncio.get_running_loop()][0]))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            thread = threading.Thread(target=asyncio.run, args=(one_refresh(),))
            thread.start()
            thread.join(60)
        asyncio.run(provider.close())
        gc.collect()
    assert len(fake.token_calls) == 3
    assert len(clients) == 3
    assert all(client() is None for client in clients)  # collected, warning if unclosed
    unclosed = [w for w in caught if "Unclosed" in str(w.message)]
    assert unclosed == []


async def test_a_waiter_on_another_loop_learns_that_the_refreshs_loop_ended() -> None:
    """The refresh runs on its starter's loop; if that loop ends first, a waiter of another
    loop is told (``FlightLost``) and decides again on its own, instead of waiting for ever."""
    started = threading.Event()
    holder: dict[str, Flight] = {}

    async def never() -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def other_loop() -> None:
        async def main() -> None:
            holder["flight"] = Flight(never, lambda f: None, eager=True).start()  # type: ignore[arg-type]
            started.set()

        asyncio.run(main())  # ends at once: its refresh task is cancelled with it

    thread = threading.Thread(target=other_loop)
    thread.start()
    await asyncio.to_thread(started.wait, 30)
    flight = holder["flight"]
    waiter = flight.wait()
    with pytest.raises(FlightLost):
        await asyncio.wait_for(flight.result(waiter, None), 30)  # a hang detector only
    await asyncio.to_thread(thread.join, 30)


async def test_a_loop_closed_under_its_refresh_is_noticed_once_per_waiting_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A loop closed with its refresh still pending (stopped and closed, never cancelled: no
    callback ever runs there again): the other loop's waiters learn it from the one look
    their loop takes, not from a timer each."""
    from aio_sts_session import _flight

    monkeypatch.setattr(_flight, "CROSS_LOOP_CHECK", 0.01)
    loop = asyncio.new_event_loop()
    made = threading.Event()
    holder: dict[str, Flight] = {}

    async def never() -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def start() -> None:
        holder["flight"] = Flight(never, lambda f: None, eager=True).start()  # type: ignore[arg-type]
        made.set()

    def run_then_close() -> None:
        loop.run_until_complete(start())
        loop.close()  # the refresh task is left pending: its done callback never runs

    thread = threading.Thread(target=run_then_close)
    thread.start()
    await asyncio.to_thread(made.wait, 30)
    await asyncio.to_thread(thread.join, 30)
    flight = holder["flight"]
    waiters = [flight.wait() for _ in range(100)]
    assert flight._watched == {asyncio.get_running_loop()}  # one look for all 100
    for waiter in waiters:
        with pytest.raises(FlightLost):
            await asyncio.wait_for(flight.result(waiter, None), 30)  # a hang detector only
    assert flight._waiters == []
    flight.task = None  # the dead loop's task: nothing to collect


# -- max_wait: nobody waits for a person without limit -------------------------------------------


async def test_max_wait_ends_a_callers_wait_and_the_refresh_goes_on(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    answered = asyncio.Event()

    async def slow_human(request: MfaRequest) -> str:
        await answered.wait()  # a person, or a chat-ops approver, not there yet
        return fake_sts.fresh_code(SERIAL)

    provider = make_provider(mfa_callback=slow_human, max_wait=0.05)
    callers = [asyncio.ensure_future(provider.credentials()) for _ in range(20)]
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RefreshPendingError) for r in results)
    assert "max_wait=0.05 s" in str(results[0])
    assert "goes on" in str(results[0])
    flight = provider._slot.current()
    assert flight is not None and not flight.finished  # noqa: PT018 - the refresh goes on
    answered.set()
    await asyncio.gather(flight.wait(), return_exceptions=True)
    creds = await provider.credentials()  # the next caller gets its result, from memory
    assert creds.access_key_id.startswith("ASIA")
    assert len(fake_sts.token_calls) == 1


async def test_max_wait_applies_to_refresh_too(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    answered = asyncio.Event()

    async def slow_human(request: MfaRequest) -> str:
        await answered.wait()
        return fake_sts.fresh_code(SERIAL)

    provider = make_provider(mfa_callback=slow_human, max_wait=0.05)
    with pytest.raises(RefreshPendingError):
        await provider.refresh()
    answered.set()
    await provider.settle()
    assert provider.state() is State.FRESH


@pytest.mark.parametrize("bad", [0, -1, float("inf"), "5", True])
def test_max_wait_is_checked_at_construction(make_provider: MakeProvider, bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_wait"):
        make_provider(max_wait=bad)


def test_nothing_waits_for_a_person_for_ever_by_default() -> None:
    provider = SessionTokenProvider(
        mfa_serial=SERIAL, mfa_callback=lambda r: "123456", region_name="us-east-1"
    )
    assert provider._root_source._timeout == 300.0  # mfa_timeout's default


# -- keep_fresh: renewal before anyone asks -------------------------------------------------------


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds (a hang detector bounds it, not a speed)."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_keep_fresh_renews_an_idle_service_before_anyone_asks(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    """An idle service: its first request after expiry used to wait for a person. With
    keep_fresh the prompt comes when the prefetch window opens, and requests never wait."""
    provider = make_provider()  # 1-hour sessions, 300 s prefetch window
    keeper = provider.keep_fresh()
    await until(lambda: clock.sleepers == 1)  # got its first credentials, then went to sleep
    assert len(fake_sts.token_calls) == 1
    first = provider.token()
    assert first is not None
    clock.advance(3600 - 300 - 1)  # nobody asks for an hour, less the window
    await until(lambda: clock.sleepers == 1)  # it looked, and went back to sleep
    assert len(fake_sts.token_calls) == 1  # not yet
    clock.advance(2)  # the prefetch window opens
    await until(lambda: len(fake_sts.token_calls) == 2 and clock.sleepers == 1)
    assert provider.token() is not first
    assert provider.state() is State.FRESH  # a request now is served from memory
    assert len(device.requests) == 2
    await provider.close()
    assert keeper.done()  # close() ends it


async def test_keep_fresh_retries_after_the_backoff(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    provider = make_provider()
    provider.keep_fresh()
    await until(lambda: clock.sleepers == 1)
    fake_sts.faults.extend(Fault(503) for _ in range(4))  # one renewal's worth of retries
    clock.advance(3600 - 300 + 1)
    await until(lambda: fake_sts.faults == type(fake_sts.faults)() and clock.sleepers == 1)
    assert provider.next_refresh_at() is not None
    assert len([c for c in fake_sts.token_calls if c.outcome == "ok"]) == 1  # failed, backing off
    clock.advance(2)  # past the backoff (1 s, jittered): the keeper slept that long
    await until(lambda: len([c for c in fake_sts.token_calls if c.outcome == "ok"]) == 2)
    assert len(device.requests) == 2  # the code STS never judged was offered again
    await provider.close()


async def test_keep_fresh_keeps_a_role_and_its_session_each_on_its_schedule(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    session = make_provider(duration_seconds=7200)
    role = session.assume_role(fake_sts.add_role("admin"))  # 1 hour, chained
    role.keep_fresh()
    await until(lambda: clock.sleepers == 2)
    assert len(fake_sts.role_calls) == 1
    assert len(fake_sts.token_calls) == 1
    clock.advance(3600 - 300 + 1)  # the role's window
    await until(lambda: len(fake_sts.role_calls) == 2 and clock.sleepers == 2)
    assert len(fake_sts.token_calls) == 1  # the session still had an hour: no code
    clock.advance(3600)  # the session's window (and the role's again)
    await until(lambda: len(fake_sts.token_calls) == 2 and clock.sleepers == 2)
    assert len(device.requests) == 2
    await role.close()
    await session.close()


# -- logging that fits a library ----------------------------------------------------------------


def test_the_library_logger_has_a_null_handler() -> None:
    import aio_sts_session._engine  # noqa: F401 - any module that logs

    handlers = logging.getLogger("aio_sts_session").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


async def test_taking_long_is_said_once_per_refresh_not_per_waiter(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aio_sts_session._engine import HANDOVER_SECONDS

    provider = make_provider()
    await provider.credentials()
    clock.advance(3600 - HANDOVER_SECONDS - 0.05)  # stale: the hand-over 50 ms away
    fake_sts.gate = asyncio.Event()  # STS hangs
    with caplog.at_level(logging.INFO, logger="aio_sts_session"):
        await asyncio.gather(*(provider.credentials() for _ in range(20)))
    lines = [r for r in caplog.records if "taking long" in r.getMessage()]
    assert len(lines) == 1  # 20 lines for 20 waiters before
    fake_sts.gate.set()
    await provider.settle()


async def test_botocores_found_credentials_line_is_not_logged_at_every_refresh(
    fake_sts: FakeSts,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keys from an attached session's chain (the environment here) are looked up once, not
    at every refresh: botocore's "Found credentials in environment variables." came each time."""
    from aiobotocore.session import AioSession

    from .conftest import ACCESS_KEY, SECRET_KEY

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    provider = SessionTokenProvider(
        mfa_serial=SERIAL,
        mfa_callback=lambda r: fake_sts.fresh_code(SERIAL),
        endpoint_url=fake_sts.url,
        region_name="us-east-1",
        duration_seconds=900,
        clock=clock,
    )
    provider.attach(AioSession())
    with caplog.at_level(logging.INFO, logger="botocore.credentials"):
        for _ in range(3):
            await provider.refresh()
            clock.advance(60)
    found = [r for r in caplog.records if "Found credentials" in r.getMessage()]
    assert len(found) <= 1
    assert len(fake_sts.token_calls) == 3
    await provider.close()
