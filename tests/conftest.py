"""Shared fixtures: an isolated AWS environment, one injected clock, the strict fake STS, moto."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pyotp
import pytest
from aiobotocore.session import AioSession
from botocore.retries import standard

from aio_sts_session import MfaRequest, SessionTokenProvider
from aio_sts_session.testing import FakeSts, ManualClock

SERIAL = "arn:aws:iam::123456789012:mfa/alice"
ACCESS_KEY = "AKIAFAKESTSALICE0001"
SECRET_KEY = "alice-long-term-secret-key-0000000000000"
T0 = 1_800_000_000.0  # a fixed instant: tests move the clock, never sleep


class FakeClock(ManualClock):
    """The one injected clock: wall time that tests move by hand (the shipped ManualClock,
    from T0 unless told)."""

    def __init__(self, start: float = T0) -> None:
        super().__init__(start)


@pytest.fixture(autouse=True)
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real AWS configuration, no metadata service lookups, no proxies."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return


@pytest.fixture(autouse=True)
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retry mode, with its backoff delays set to zero."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake_sts(clock: FakeClock) -> AsyncIterator[FakeSts]:
    fake = FakeSts(clock, users={ACCESS_KEY: SECRET_KEY}, devices={SERIAL: pyotp.random_base32()})
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def source_session(access_key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> AioSession:
    session = AioSession()
    session.set_credentials(access_key, secret)
    return session


class Device:
    """An MFA callback backed by the fake's TOTP device, counting prompts."""

    def __init__(self, fake: FakeSts, serial: str = SERIAL) -> None:
        self.fake = fake
        self.serial = serial
        self.requests: list[MfaRequest] = []
        self.answers: list[object] = []  # canned answers, used before real codes

    async def __call__(self, request: MfaRequest) -> object:
        self.requests.append(request)
        if self.answers:
            return self.answers.pop(0)
        return self.fake.fresh_code(self.serial)


@pytest.fixture
def device(fake_sts: FakeSts) -> Device:
    return Device(fake_sts)


@pytest.fixture
async def make_provider(
    fake_sts: FakeSts, clock: FakeClock, device: Device
) -> AsyncIterator[type[SessionTokenProvider]]:
    created: list[SessionTokenProvider] = []

    def make(**kwargs: object) -> SessionTokenProvider:
        options: dict[str, object] = {
            "mfa_serial": SERIAL,
            "mfa_callback": device,
            "endpoint_url": fake_sts.url,
            "region_name": "us-east-1",
            "source_session": source_session(),
            "clock": clock,
            "duration_seconds": 3600,
        }
        options.update(kwargs)
        provider = SessionTokenProvider(**options)  # type: ignore[arg-type]
        created.append(provider)
        return provider

    yield make  # type: ignore[misc]
    for provider in created:
        await provider.close()


def provider_for_threaded_fake(fake: FakeSts, clock: FakeClock) -> SessionTokenProvider:
    """A provider for tests that run their own event loops (asyncio.run per command), with a
    plain callback that types the device's next unused code."""
    return SessionTokenProvider(
        mfa_serial=SERIAL,
        mfa_callback=lambda request: fake.fresh_code(SERIAL),
        endpoint_url=fake.url,
        region_name="us-east-1",
        source_session=source_session(),
        clock=clock,
        duration_seconds=3600,
    )


@pytest.fixture
def threaded_fake_sts(clock: FakeClock) -> Iterator[FakeSts]:
    """The fake STS on its own thread and event loop, for tests that run their own loops."""
    import asyncio
    import threading

    fake = FakeSts(clock, users={ACCESS_KEY: SECRET_KEY}, devices={SERIAL: pyotp.random_base32()})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result()
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


@contextlib.contextmanager
def logs_warning(caplog: pytest.LogCaptureFixture, match: str = "") -> Iterator[None]:
    """Assert that the block logs a WARNING on the aio_sts_session logger matching ``match``."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aio_sts_session"):
        yield
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.name == "aio_sts_session" and r.levelno >= logging.WARNING
    ]
    assert any(re.search(match, m) for m in messages), messages
