"""The shipped test kit, used as a program's own tests would use it: ``FakeSts`` and
``ManualClock`` from ``aio_sts_session.testing``, with nothing from this project's tests."""

from __future__ import annotations

import asyncio
import doctest

import pytest
from aiobotocore.session import AioSession

import aio_sts_session.testing as testing
from aio_sts_session import SessionTokenProvider, StsUnavailableError
from aio_sts_session.testing import FakeSts, ManualClock


async def test_a_day_of_a_service_in_milliseconds() -> None:
    clock = ManualClock()
    async with FakeSts(clock=clock) as sts:
        asked: list[int] = []

        def ask(request: object) -> str:
            asked.append(1)
            return sts.code()

        async with SessionTokenProvider(
            mfa_serial=sts.mfa_serial,
            mfa_callback=ask,
            endpoint_url=sts.url,
            region_name="us-east-1",
            source_session=sts.source_session(),
            duration_seconds=3600,
            clock=clock,
        ) as provider:
            for _ in range(24 * 12):  # a request every 5 minutes for a day
                await provider.credentials()
                clock.advance(300)
                await provider.settle()
        assert len(sts.calls["GetSessionToken"]) == len(asked) == 25  # hourly, and the first
        assert all(call.outcome == "ok" for call in sts.calls["GetSessionToken"])
        assert sts.calls["GetCallerIdentity"]  # the keys were checked before the first code


async def test_faults_and_the_session_credentials_are_real_to_a_client() -> None:
    clock = ManualClock()
    async with FakeSts(clock=clock) as sts:
        provider = SessionTokenProvider(
            mfa_serial=sts.mfa_serial,
            mfa_callback=lambda request: sts.code(),
            endpoint_url=sts.url,
            region_name="us-east-1",
            source_session=sts.source_session(),
            clock=clock,
        )
        sts.fail(times=4)  # botocore's four attempts: STS stays down
        with pytest.raises(StsUnavailableError):
            await provider.credentials()
        await provider.refresh()
        session = provider.attach(AioSession())
        async with session.create_client(
            "sts", endpoint_url=sts.url, region_name="us-east-1"
        ) as client:
            who = await client.get_caller_identity()  # signed with the session's credentials
        assert who["UserId"].startswith("ASIA")
        assert [c.outcome for c in sts.calls["GetSessionToken"]][-1] == "ok"
        await provider.close()


async def test_the_fake_refuses_what_sts_refuses() -> None:
    async with FakeSts() as sts:
        provider = SessionTokenProvider(
            mfa_serial=sts.mfa_serial,
            mfa_callback=lambda request: sts.wrong_code(),
            endpoint_url=sts.url,
            region_name="us-east-1",
            source_session=sts.source_session(),
        )
        with pytest.raises(Exception, match="No MFA code was accepted"):
            await provider.credentials()
        assert {c.outcome for c in sts.calls["GetSessionToken"]} == {"bad-code"}
        await provider.close()


def test_env_points_a_program_at_the_fake() -> None:
    sts = FakeSts()
    sts.url = "http://127.0.0.1:1"
    env = sts.env()
    assert env["AWS_ENDPOINT_URL_STS"] == sts.url
    assert env["AWS_ACCESS_KEY_ID"] == sts.access_key_id


async def test_manual_clock_sleep_returns_when_advanced_far_enough() -> None:
    clock = ManualClock(1000.0)
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock())

    tasks = [asyncio.ensure_future(sleeper(s)) for s in (10, 20)]
    await asyncio.sleep(0)
    assert clock.sleepers == 2
    clock.advance(15)
    await asyncio.sleep(0)
    assert woke == [1015.0]
    clock.advance(5)
    await asyncio.gather(*tasks)
    assert woke == [1015.0, 1020.0]
    assert clock.sleepers == 0


def test_the_kits_docstring_examples_run() -> None:
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    tried = 0
    for name in testing.__all__:
        for test in finder.find(getattr(testing, name), name):
            tried += runner.run(test).attempted
            assert runner.failures == 0
    assert tried >= 1
