"""Renewal before anyone asks (the keeper behind ``keep_fresh()`` and ``exec --server``):
ahead of expiry, the MFA prompt for a new session well before the session ends while the work
goes on (simulated hours, one injected clock), each credential on its own schedule, and a
keeper that never dies of a failure."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from aio_sts_session import MfaRequest, SessionTokenProvider
from aio_sts_session._keeper import Keeper
from aio_sts_session.testing import FakeSts, Fault
from aio_sts_session.testing._fake_sts import NS

from .conftest import SERIAL, T0, FakeClock

MakeProvider = Callable[..., SessionTokenProvider]
WINDOWS = {"prefetch_seconds": 1500, "stale_seconds": 960}  # what exec --server uses
NO_RESULT = f'<GetSessionTokenResponse xmlns="{NS}"><ResponseMetadata/></GetSessionTokenResponse>'


async def run_job(
    hours: float,
    session_hours: float,
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    clock: FakeClock,
) -> list[float]:
    """Run a job of ``hours`` against a 1-hour role on a ``session_hours`` MFA session, the
    SDK fetching every minute; returns when (seconds into the job) each prompt appeared."""
    start = clock()
    prompts: list[float] = []

    async def ask(request: MfaRequest) -> str:
        prompts.append(clock() - start)
        return fake_sts.fresh_code(SERIAL)

    session = make_provider(mfa_callback=ask, duration_seconds=int(session_hours * 3600), **WINDOWS)
    role = session.assume_role(fake_sts.add_role("job"), **WINDOWS)
    keeper = Keeper([role, session], clock)
    await role.credentials()  # before the command starts
    while clock() - start < hours * 3600:
        wait = await keeper.step()
        clock.advance(min(wait, 60))
        creds = await role.credentials()  # what the endpoint hands the SDK
        left = creds.expiration.timestamp() - clock()
        assert left > 15 * 60, f"served credentials with {left:.0f} s left"
    await role.close()
    await session.close()
    assert all(c.outcome == "ok" for c in fake_sts.calls)
    return prompts


async def test_a_ten_hour_job_on_a_twelve_hour_session_costs_one_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    prompts = await run_job(10, 12, make_provider, fake_sts, clock)
    assert prompts == [0.0]
    assert len(fake_sts.role_calls) >= 10  # the 1-hour role renewed all along


async def test_the_prompt_for_a_new_session_appears_ahead_of_its_end(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    prompts = await run_job(10, 4, make_provider, fake_sts, clock)
    # One prompt per session, each 25 minutes before the session in hand ends.
    assert len(prompts) == 3
    for issued_at, next_prompt in itertools.pairwise(prompts):
        session_end = issued_at + 4 * 3600
        assert session_end - next_prompt >= 20 * 60, (next_prompt, session_end)
    assert prompts[1] == pytest.approx(4 * 3600 - 1500, abs=120)


async def test_keeper_run_sleeps_until_the_next_renewal(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    provider = make_provider(duration_seconds=3600, **WINDOWS)
    await provider.credentials()
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        clock.advance(seconds)
        if len(naps) == 40:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await Keeper([provider], clock, sleep).run()
    assert max(naps) <= 60  # wakes at least every minute (a suspended laptop)
    # renewed once, when the 25-minute prefetch window of the 1-hour session opened
    assert [c.at - T0 for c in fake_sts.token_calls] == [0, pytest.approx(2100, abs=60)]
    await provider.close()


async def test_the_keeper_survives_an_unreadable_answer_and_retries(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    """A body without GetSessionTokenResult (a KeyError inside botocore) once killed the
    keeper: now it is an StsError, logged, backed off and retried."""
    provider = make_provider(duration_seconds=3600, **WINDOWS)
    await provider.credentials()
    fake_sts.faults.append(Fault(kind="body", body=NO_RESULT))
    keeper = Keeper([provider], clock)
    clock.advance(3600 - 1400)  # in the prefetch window
    wait = await keeper.renew_if_due(provider)
    assert fake_sts.token_calls[-1].outcome == "fault:body"
    assert 1 <= wait <= 20  # the backoff, not the next window
    clock.advance(wait)
    await keeper.renew_if_due(provider)
    assert fake_sts.token_calls[-1].outcome == "ok"
    assert provider._snap.token is not None
    assert provider._snap.token.expires_at - clock() > 3000
    await provider.close()


async def test_the_keeper_survives_a_bug(
    make_provider: MakeProvider, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider(duration_seconds=3600, **WINDOWS)
    await provider.credentials()

    async def broken(**kwargs: object) -> object:
        raise KeyError("surprise")

    monkeypatch.setattr(provider, "_renew", broken)
    clock.advance(3600 - 1400)
    assert await Keeper([provider], clock).renew_if_due(provider) >= 1.0
    await provider.close()


async def test_a_prompt_waiting_for_a_human_holds_up_no_other_renewal(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    answer = asyncio.Event()
    asked = asyncio.Event()
    prompts = 0

    async def ask(request: MfaRequest) -> str:
        nonlocal prompts
        prompts += 1
        if prompts > 1:  # the renewal's prompt: the human is away for now
            asked.set()
            await answer.wait()
        return fake_sts.fresh_code(SERIAL)

    session = make_provider(mfa_callback=ask, duration_seconds=4 * 3600, **WINDOWS)
    role = session.assume_role(fake_sts.add_role("job"), **WINDOWS)
    keeper = Keeper([role, session], clock)
    first = await role.credentials()
    clock.advance(4 * 3600 - 1200)  # the session is in its prefetch window; the role expired
    waiting = asyncio.ensure_future(keeper.renew_if_due(session))
    await asked.wait()
    await keeper.renew_if_due(role)  # renewed on the current session while the prompt waits
    renewed = await role.credentials()
    assert renewed != first
    assert renewed.expiration.timestamp() - clock() > 3000
    assert not waiting.done()
    answer.set()
    await waiting
    assert prompts == 2
    await role.close()
    await session.close()
