"""SessionTokenProvider against the strict fake STS over real HTTP, with an injected clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from aiobotocore.session import AioSession

from aio_sts_session import (
    ConfigurationError,
    MfaError,
    MfaRequest,
    ProviderClosedError,
    SessionTokenProvider,
    SourceCredentialsError,
    State,
    StsSessionError,
    StsUnavailableError,
)
from aio_sts_session._sts import SourceKeys
from aio_sts_session.testing import FakeSts, Fault, issued_secrets

from .conftest import SERIAL, T0, Device, FakeClock, provider_for_threaded_fake, source_session

MakeProvider = Callable[..., SessionTokenProvider]


async def settle(provider: SessionTokenProvider) -> None:
    """Let a background refresh finish (yields to the loop; never sleeps)."""
    flight = provider._slot.current()
    if flight is not None:
        await asyncio.gather(flight.wait(), return_exceptions=True)  # its outcome, recorded


# -- configuration -----------------------------------------------------------------------------


async def _cb(r: MfaRequest) -> str:
    return "123456"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"duration_seconds": 899}, "900..129600"),
        ({"duration_seconds": 129601}, "900..129600"),
        ({"duration_seconds": 3600.0}, "must be an int"),
        ({"mfa_serial": "short"}, "mfa_serial must be"),
        ({"mfa_serial": "arn:aws:iam::123456789012:mfa/bad name"}, "mfa_serial must be"),
        ({"mfa_serial": "x" * 257}, "mfa_serial must be"),
        ({"mfa_callback": None}, "mfa_callback is not"),
        ({"mfa_callback": "123456"}, "must be callable"),
        ({"stale_seconds": -1}, "stale_seconds must be >= 0"),
        ({"stale_seconds": 400, "prefetch_seconds": 300}, "must not exceed"),
        ({"mfa_attempts": 0}, "mfa_attempts"),
        ({"mfa_timeout": 0}, "mfa_timeout"),
        ({"endpoint_url": "127.0.0.1:9"}, "endpoint_url"),
        ({"cache": object()}, "TokenCache"),
    ],
)
def test_bad_configuration_raises_in_constructor(kwargs: dict[str, Any], match: str) -> None:
    options: dict[str, Any] = {"mfa_serial": SERIAL, "mfa_callback": _cb}
    options.update(kwargs)
    with pytest.raises(ConfigurationError, match=match) as info:
        SessionTokenProvider(**options)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StsSessionError)


async def test_a_callback_without_any_serial_fails_before_any_call(
    fake_sts: FakeSts, clock: FakeClock
) -> None:
    """With no mfa_serial given, the source profile may name one, so the check waits for the
    first credentials(); it still comes before any prompt and any STS call."""
    asked: list[MfaRequest] = []

    async def ask(request: MfaRequest) -> str:
        asked.append(request)
        return "123456"

    provider = SessionTokenProvider(
        mfa_callback=ask, endpoint_url=fake_sts.url, source_session=source_session(), clock=clock
    )
    with pytest.raises(ConfigurationError, match="no mfa_serial"):
        await provider.credentials()
    assert asked == []
    assert fake_sts.calls == []
    await provider.close()


def test_hardware_serial_and_no_mfa_are_valid() -> None:
    hardware = SessionTokenProvider(mfa_serial="GAHT12345678", mfa_callback=_cb)
    assert "GAHT12345678" in repr(hardware)
    assert hardware.state() is State.EXPIRED  # nothing fetched at construction
    plain = SessionTokenProvider()  # plain GetSessionToken, no MFA
    assert "mfa_serial=None" in repr(plain)


# -- first fetch and cache hit -----------------------------------------------------------------


async def test_first_call_prompts_once_then_serves_from_memory(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    provider = make_provider()
    creds = await provider.credentials()
    assert creds.access_key_id.startswith("ASIA")
    assert creds.expiration.timestamp() == T0 + 3600
    assert creds.expiration.utcoffset() is not None
    assert [(r.serial_number, r.attempt, r.reason) for r in device.requests] == [
        (SERIAL, 1, "initial")
    ]
    call = fake_sts.token_calls[0]
    assert (call.serial, call.duration, call.outcome) == (SERIAL, 3600, "ok")
    for _ in range(100):
        assert await provider.credentials() is creds
    assert len(fake_sts.token_calls) == 1
    assert provider.state() is State.FRESH


async def test_without_mfa_plain_get_session_token(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    provider = make_provider(mfa_serial=None, mfa_callback=None)
    await provider.credentials()
    assert fake_sts.token_calls[0].serial is None
    assert fake_sts.token_calls[0].outcome == "ok"


# -- single flight -----------------------------------------------------------------------------


async def test_10000_concurrent_first_callers_one_call_one_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    provider = make_provider()
    fake_sts.gate = asyncio.Event()
    tasks = [asyncio.ensure_future(provider.credentials()) for _ in range(10_000)]
    await fake_sts.arrived.wait()
    assert not any(t.done() for t in tasks)
    fake_sts.gate.set()
    results = await asyncio.gather(*tasks)
    assert len({id(r) for r in results}) == 1
    assert len(fake_sts.token_calls) == 1
    assert len(device.requests) == 1


async def test_cancelling_the_caller_that_started_the_refresh_does_not_cancel_it(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    provider = make_provider()
    fake_sts.gate = asyncio.Event()
    starter = asyncio.ensure_future(provider.credentials())
    await fake_sts.arrived.wait()
    other = asyncio.ensure_future(provider.credentials())
    await asyncio.sleep(0)
    starter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starter
    fake_sts.gate.set()
    creds = await other
    assert creds.access_key_id.startswith("ASIA")
    assert len(fake_sts.token_calls) == 1
    assert len(device.requests) == 1


# -- windows -----------------------------------------------------------------------------------


async def test_prefetch_window_serves_current_while_one_background_refresh_runs(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock, device: Device
) -> None:
    provider = make_provider()
    old = await provider.credentials()
    clock.advance(3600 - 200)  # inside the 300 s prefetch window
    assert provider.state() is State.PREFETCH
    fake_sts.gate, fake_sts.arrived = asyncio.Event(), asyncio.Event()
    for _ in range(1000):
        assert await provider.credentials() is old  # at once, never waiting for STS
    await fake_sts.arrived.wait()
    assert len(fake_sts.token_calls) == 2
    fake_sts.gate.set()
    await settle(provider)
    new = await provider.credentials()
    assert new is not old
    assert new.expiration > old.expiration
    assert len(fake_sts.token_calls) == 2
    assert len(device.requests) == 2


@pytest.mark.parametrize("remaining", [30.0, -86400.0], ids=["stale", "slept-past-expiry"])
async def test_stale_or_expired_callers_wait_for_the_one_refresh(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    clock: FakeClock,
    device: Device,
    remaining: float,
) -> None:
    provider = make_provider()
    old = await provider.credentials()
    clock.advance(3600 - remaining)
    fake_sts.gate, fake_sts.arrived = asyncio.Event(), asyncio.Event()
    waiters = [asyncio.ensure_future(provider.credentials()) for _ in range(50)]
    await fake_sts.arrived.wait()
    assert not any(w.done() for w in waiters)
    fake_sts.gate.set()
    results = await asyncio.gather(*waiters)
    assert all(r is results[0] for r in results)
    assert results[0] is not old
    assert len(fake_sts.token_calls) == 2
    assert len(device.requests) == 2


async def test_a_20_second_credential_does_not_refresh_per_call(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock, device: Device
) -> None:
    fake_sts.duration_cap = 20  # STS grants less than asked (as for root: 1 h)
    provider = make_provider(duration_seconds=900)
    calls = 0
    for _ in range(400):  # 40 s of steady use, a call every 100 ms
        creds = await provider.credentials()
        await settle(provider)
        calls += 1
        assert creds.expiration.timestamp() > clock()
        clock.advance(0.1)
    # one refresh every ~10 s (half the lifetime), not one per call
    assert 4 <= len(fake_sts.token_calls) <= 6
    assert calls == 400


async def test_expiry_follows_sts_date_when_local_clock_is_slow(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    fake_sts.server_offset = 600.0  # our clock is 10 min behind STS (STS accepts up to 15)
    provider = make_provider()
    creds = await provider.credentials()
    assert creds.expiration.timestamp() == T0 + 600 + 3600  # as STS said
    assert provider.state() is State.FRESH
    clock.advance(3600 - 250)  # 250 s left by STS's clock (and ours, corrected): prefetch
    assert provider.state() is State.PREFETCH
    clock.advance(250)
    assert provider.state() is State.EXPIRED


async def test_expiry_follows_sts_date_when_local_clock_is_fast(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    fake_sts.server_offset = -840.0  # our clock is 14 min ahead of STS
    provider = make_provider()
    await provider.credentials()
    assert provider.state() is State.FRESH
    clock.advance(3600 - 301)
    assert provider.state() is State.FRESH  # naively 299 s left; by STS's clock 301
    await provider.credentials()
    assert len(fake_sts.token_calls) == 1


async def test_a_date_header_an_hour_off_is_not_trusted(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    """A genuine STS answer cannot be 15+ min off (STS refuses such requests): a Date that far
    off comes from something in between, and correcting by it would misjudge the expiry."""
    fake_sts.date_header_offset = 3600.0
    provider = make_provider()
    creds = await provider.credentials()
    assert creds.expiration.timestamp() == T0 + 3600
    clock.advance(3600 - 200)
    assert provider.state() is State.PREFETCH  # not shifted by an hour


async def test_a_local_clock_off_by_more_than_15_minutes_is_reported_before_any_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    fake_sts.server_offset = 1800.0  # STS refuses signatures 15+ min off its clock
    provider = make_provider()
    with pytest.raises(SourceCredentialsError, match="clock"):
        await provider.credentials()
    assert device.requests == []
    assert [c.outcome for c in fake_sts.calls] == ["signature-expired"]


# -- MFA ---------------------------------------------------------------------------------------


async def test_malformed_codes_never_reach_sts(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    device.answers = ["12345", "12a456"]
    provider = make_provider()
    await provider.credentials()
    assert [r.reason for r in device.requests] == ["initial", "malformed", "malformed"]
    assert [r.attempt for r in device.requests] == [1, 2, 3]
    assert [c.outcome for c in fake_sts.token_calls] == ["ok"]


async def test_rejected_code_asks_again_with_next_attempt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    device.answers = [fake_sts.wrong_code(SERIAL)]
    provider = make_provider()
    await provider.credentials()
    assert [(r.attempt, r.reason) for r in device.requests] == [(1, "initial"), (2, "rejected")]
    assert [c.outcome for c in fake_sts.token_calls] == ["bad-code", "ok"]


async def test_every_code_rejected_is_mfa_error(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    device.answers = [fake_sts.wrong_code(SERIAL)] * 2 + ["x"]
    provider = make_provider()
    with pytest.raises(MfaError, match=r"in 3 attempt\(s\) \(2 rejected by STS, 1 not six"):
        await provider.credentials()
    assert len(fake_sts.token_calls) == 2


async def test_code_accepted_once_is_never_sent_again(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    """A code held through an outage (STS never judged it) is reused once STS is back; once
    STS accepted it, the next refresh must ask for a new code even within the reuse period.
    The device never repeats a code, so only the provider could resend one."""
    provider = make_provider()
    fake_sts.faults.extend(Fault(503) for _ in range(4))
    with pytest.raises(StsUnavailableError):
        await provider.credentials()
    clock.advance(2)
    await provider.credentials()  # the held code, accepted now
    await provider.refresh()  # 2 s later: well within the 30 s reuse period
    clock.advance(3600 - 10)
    await provider.credentials()
    calls = fake_sts.token_calls
    accepted = [c.code for c in calls if c.outcome == "ok"]
    assert len(accepted) == 3
    assert len(set(accepted)) == 3
    for index, call in enumerate(calls):  # no code is sent after STS accepted it
        if call.outcome == "ok":
            assert call.code not in [c.code for c in calls[index + 1 :]]
    assert len(device.requests) == 3


async def test_unknown_serial_fails_without_asking_again(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    device.answers = ["123456"]
    provider = make_provider(mfa_serial="arn:aws:iam::123456789012:mfa/mallory")
    with pytest.raises(MfaError, match="check that mfa_serial"):
        await provider.credentials()
    assert len(device.requests) == 1


async def test_failed_prompt_is_shared_by_all_waiters(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    release, prompted, asked = asyncio.Event(), asyncio.Event(), []

    async def dismissed(request: MfaRequest) -> str:
        asked.append(request)
        prompted.set()
        await release.wait()
        raise RuntimeError("user closed the dialog")

    provider = make_provider(mfa_callback=dismissed)
    waiters = [asyncio.ensure_future(provider.credentials()) for _ in range(100)]
    await prompted.wait()
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert len(asked) == 1
    assert all(isinstance(r, MfaError) for r in results)
    assert isinstance(results[0].__cause__, RuntimeError)  # type: ignore[union-attr]
    assert fake_sts.token_calls == []


async def test_callback_timeout_is_mfa_error(make_provider: MakeProvider) -> None:
    never = asyncio.Event()

    async def slow(request: MfaRequest) -> str:
        await never.wait()
        return "123456"

    provider = make_provider(mfa_callback=slow, mfa_timeout=0.01)
    with pytest.raises(MfaError, match=r"within 0\.01 s"):
        await provider.credentials()


async def test_sync_callback_accepted(make_provider: MakeProvider, fake_sts: FakeSts) -> None:
    provider = make_provider(mfa_callback=lambda request: fake_sts.fresh_code(SERIAL))
    await provider.credentials()
    assert fake_sts.token_calls[0].outcome == "ok"


# -- source credentials ------------------------------------------------------------------------


async def test_missing_source_credentials_fail_before_any_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    provider = make_provider(source_session=None)  # default chain; the environment is empty
    with pytest.raises(SourceCredentialsError, match="No long-term AWS credentials"):
        await provider.credentials()
    assert device.requests == []
    assert fake_sts.calls == []


async def test_temporary_source_credentials_fail_before_any_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    session = AioSession()
    session.set_credentials("ASIATEMPORARY0000001", "temp-secret", "temp-token-value")
    provider = make_provider(source_session=session)
    with pytest.raises(SourceCredentialsError, match="carry a session token") as info:
        await provider.credentials()
    assert "temp-secret" not in str(info.value)
    assert "temp-token-value" not in str(info.value)
    assert device.requests == []
    assert fake_sts.calls == []


async def test_source_keys_from_environment(
    make_provider: MakeProvider, fake_sts: FakeSts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import ACCESS_KEY, SECRET_KEY

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    provider = make_provider(source_session=None)
    await provider.credentials()
    assert fake_sts.token_calls[0].access_key_id == ACCESS_KEY


async def test_wrong_long_term_secret_is_source_error(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    from .conftest import ACCESS_KEY

    provider = make_provider(source_session=source_session(ACCESS_KEY, "not-the-secret"))
    with pytest.raises(SourceCredentialsError, match="SignatureDoesNotMatch") as info:
        await provider.credentials()
    assert "not-the-secret" not in str(info.value)
    assert info.value.__cause__ is not None
    assert device.requests == []  # STS refused the keys before anyone typed a code
    assert fake_sts.token_calls == []


async def test_serial_of_another_account_fails_before_any_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    """A ConfigurationError (it can never work), not an MfaError with a 300 s backoff; asked
    again, it is the same error at once, with no STS call."""
    provider = make_provider(mfa_serial="arn:aws:iam::999999999999:mfa/alice")
    with pytest.raises(ConfigurationError, match="belongs to account 999999999999"):
        await provider.credentials()
    calls = len(fake_sts.calls)
    with pytest.raises(ConfigurationError, match="belongs to account 999999999999"):
        await provider.refresh()
    assert len(fake_sts.calls) == calls
    assert device.requests == []
    assert fake_sts.token_calls == []


async def test_prepare_checks_keys_without_prompting(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    provider = make_provider()
    await provider.prepare()
    assert [c.action for c in fake_sts.calls] == ["GetCallerIdentity"]
    await provider.credentials()
    assert [c.action for c in fake_sts.calls] == ["GetCallerIdentity", "GetSessionToken"]
    assert len(device.requests) == 1
    bad = make_provider(source_session=source_session("AKIAUNKNOWNKEY000001", "x"))
    with pytest.raises(SourceCredentialsError, match="InvalidClientTokenId"):
        await bad.prepare()


# -- STS faults --------------------------------------------------------------------------------


async def test_transient_faults_retried_with_the_same_code(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    fake_sts.faults.extend([Fault(500), Fault(400, "Throttling", "Rate exceeded"), Fault(503)])
    provider = make_provider()
    await provider.credentials()
    calls = fake_sts.token_calls
    assert [c.outcome for c in calls] == [
        "fault:InternalFailure",
        "fault:Throttling",
        "fault:InternalFailure",
        "ok",
    ]
    assert len({c.code for c in calls}) == 1
    assert len(device.requests) == 1


async def test_outage_raises_then_recovers_without_a_new_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    fake_sts.faults.extend(Fault(503) for _ in range(4))  # all of botocore's 4 attempts
    provider = make_provider()
    with pytest.raises(StsUnavailableError, match="after retries") as info:
        await provider.credentials()
    assert info.value.__cause__ is not None
    assert len(fake_sts.token_calls) == 4
    # Right after the failure callers fail fast instead of hammering STS.
    with pytest.raises(StsUnavailableError, match="retrying in"):
        await provider.credentials()
    assert len(fake_sts.token_calls) == 4
    clock.advance(2)  # STS is back; the code typed 2 s ago was never judged: reuse it
    await provider.credentials()
    assert len(device.requests) == 1
    assert fake_sts.token_calls[-1].outcome == "ok"
    assert fake_sts.token_calls[-1].code == fake_sts.token_calls[0].code


async def test_failures_in_prefetch_and_stale_windows_keep_serving_and_back_off(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    device: Device,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = make_provider()
    old = await provider.credentials()
    clock.advance(3600 - 290)  # prefetch window: 290 s left, stale at 60
    fake_sts.faults.extend(Fault(503) for _ in range(1000))
    for _ in range(500):
        assert await provider.credentials() is old
    await settle(provider)
    assert len(fake_sts.token_calls) == 1 + 4  # one background refresh, botocore's 4 attempts
    assert len(device.requests) == 2
    clock.advance(0.5)  # inside the first backoff (1 s)
    for _ in range(500):
        assert await provider.credentials() is old
    assert not provider._slot.pending()
    assert len(fake_sts.token_calls) == 5
    clock.advance(1)  # past it: one retry, with the code typed 1.5 s ago (STS never judged it)
    assert await provider.credentials() is old
    await settle(provider)
    assert len(fake_sts.token_calls) == 9
    assert len(device.requests) == 2
    assert len({c.code for c in fake_sts.token_calls[1:]}) == 1
    caplog.clear()
    clock.advance(240)  # stale (48.5 s left): the refresh fails again, callers keep the valid ones
    results = await asyncio.gather(*(provider.credentials() for _ in range(100)))
    assert all(r is old for r in results)
    assert len(fake_sts.token_calls) == 13
    assert len(device.requests) == 3  # the held code was too old: one new prompt, for all 100
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "serving" in r.msg]
    assert len(warnings) == 1  # one failure, one warning
    for _ in range(100):  # backing off (4 s): served at once, no STS call, no prompt
        assert await provider.credentials() is old
    assert len(fake_sts.token_calls) == 13
    fake_sts.faults.clear()
    clock.advance(4)
    new = await provider.credentials()  # the retry succeeds with the held code
    assert new is not old
    assert provider.state() is State.FRESH
    assert len(device.requests) == 3


# -- secrets, close ----------------------------------------------------------------------------


async def test_no_secret_in_logs_reprs_or_errors(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    device: Device,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aio_sts_session")
    fake_sts.server_offset = 100.0
    device.answers = ["bad", fake_sts.wrong_code(SERIAL)]
    provider = make_provider()
    creds = await provider.credentials()
    clock.advance(3600 - 200)
    fake_sts.faults.extend(Fault(503) for _ in range(4))
    await provider.credentials()
    await settle(provider)
    texts = [r.getMessage() for r in caplog.records]
    texts += [repr(provider), repr(creds), str(creds), repr(provider._snap.token)]
    texts += [repr(provider.attach(AioSession()).get_component("credential_provider").providers)]
    with pytest.raises(StsSessionError) as info:
        await make_provider(
            source_session=source_session("AKIAFAKESTSALICE0001", "not-the-real-secret-9f8e")
        ).credentials()
    texts += [str(info.value), repr(info.value)]
    assert len(caplog.records) >= 3  # the malformed, rejected and failed-refresh warnings
    blob = "\n".join(texts)
    for secret in [*issued_secrets(fake_sts), "not-the-real-secret-9f8e"]:
        assert secret not in blob


async def test_close_stops_refresh_and_refuses_further_use(
    make_provider: MakeProvider, fake_sts: FakeSts, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiohttp

    opened: list[aiohttp.ClientSession] = []
    init = aiohttp.ClientSession.__init__

    def recording_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", recording_init)
    provider = make_provider()
    fake_sts.gate = asyncio.Event()
    waiter = asyncio.ensure_future(provider.credentials())
    await fake_sts.arrived.wait()
    await provider.close()
    with pytest.raises(ProviderClosedError):
        await waiter
    with pytest.raises(ProviderClosedError, match="closed"):
        await provider.credentials()
    await provider.close()  # idempotent
    fake_sts.gate.set()
    assert [t for t in asyncio.all_tasks() if "Flight._run" in t.get_coro().__qualname__] == []
    assert provider._sts._clients == {}
    assert opened  # the STS client's HTTP session existed ...
    assert all(s.closed for s in opened)  # ... and was closed, with its connections


async def test_async_context_manager_closes(make_provider: MakeProvider) -> None:
    async with make_provider() as provider:
        await provider.credentials()
    with pytest.raises(ProviderClosedError):
        await provider.credentials()


def test_one_provider_across_several_asyncio_runs(
    threaded_fake_sts: FakeSts, clock: FakeClock
) -> None:
    """A CLI that calls asyncio.run() per command keeps one provider (and its token)."""
    fake = threaded_fake_sts
    provider = provider_for_threaded_fake(fake, clock)
    first = asyncio.run(provider.credentials())
    assert asyncio.run(provider.credentials()) is first  # no new prompt in a new loop
    clock.advance(3600)
    second = asyncio.run(provider.credentials())  # a refresh on a third loop: a new client
    assert second != first
    asyncio.run(provider.close())
    assert [c.outcome for c in fake.token_calls] == ["ok", "ok"]


async def test_close_leaves_no_warning_or_unclosed_session(
    make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    import gc
    import warnings

    caplog.set_level(logging.DEBUG, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        provider = make_provider()
        await provider.credentials()
        session = provider.attach(AioSession())
        await session.get_credentials()
        await provider.close()
        del provider, session
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


async def test_a_hanging_sts_fails_within_the_configured_timeouts(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    from botocore.config import Config

    provider = make_provider(sts_config=Config(read_timeout=0.25, connect_timeout=2))
    await provider.prepare()  # the key check answers; then STS stops answering
    fake_sts.gate = asyncio.Event()  # never set: every GetSessionToken hangs
    with pytest.raises(StsUnavailableError, match="ReadTimeoutError") as info:
        await provider.credentials()
    assert info.value.__cause__ is not None
    assert len(fake_sts.token_calls) == 4  # botocore's standard mode: 4 attempts, then give up
    assert len(device.requests) == 1  # the same code each time
    fake_sts.gate.set()


async def test_a_device_of_another_user_is_refused_without_asking_again(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    """STS binds an MFA device to its user: alice's keys with bob's device fail."""
    fake_sts.device_owner[SERIAL] = "AKIAFAKESTSBOB000002"
    provider = make_provider()
    with pytest.raises(MfaError, match="check that mfa_serial"):
        await provider.credentials()
    assert len(device.requests) == 1
    assert [c.outcome for c in fake_sts.token_calls] == ["bad-serial"]


@pytest.mark.parametrize(
    ("env", "session_region", "region", "endpoint"),
    [
        ({}, None, "us-east-1", "https://sts.us-east-1.amazonaws.com"),
        (
            {"AWS_DEFAULT_REGION": "eu-west-2"},
            None,
            "eu-west-2",
            "https://sts.eu-west-2.amazonaws.com",
        ),
        (
            {"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-west-2"},
            None,
            "eu-west-3",
            "https://sts.eu-west-3.amazonaws.com",
        ),
        (  # the source's region first
            {"AWS_REGION": "eu-west-3"},
            "ap-south-1",
            "ap-south-1",
            "https://sts.ap-south-1.amazonaws.com",
        ),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, None, "us-east-1", "http://127.0.0.1:9"),
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ENDPOINT_URL_STS": "http://[::1]:9"},
            None,
            "us-east-1",
            "http://[::1]:9",
        ),
        (  # botocore's switch to ignore configured endpoints is honoured too
            {
                "AWS_ENDPOINT_URL_STS": "http://[::1]:9",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
            },
            None,
            "us-east-1",
            "https://sts.us-east-1.amazonaws.com",
        ),
    ],
)
async def test_region_and_endpoint_defaults(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    session_region: str | None,
    region: str,
    endpoint: str,
) -> None:
    """Resolved by botocore when the STS client is made (no request is sent here)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = None
    if session_region is not None:
        session = AioSession()
        session.set_config_variable("region", session_region)
    provider = SessionTokenProvider(source_session=session)
    await provider._sts.get(SourceKeys("AKIAEXAMPLE", "secret", None, "test"))
    assert provider._sts.region_name == region
    assert provider._sts.endpoint_url == endpoint
    await provider.close()


async def test_the_endpoint_from_the_environment_is_used(
    fake_sts: FakeSts, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fake_sts.url)
    async with SessionTokenProvider(
        mfa_serial=None, source_session=source_session(), clock=clock
    ) as provider:
        await provider.credentials()
    assert [c.outcome for c in fake_sts.token_calls] == ["ok"]


@pytest.mark.parametrize(("timeout", "attempts"), [(None, 1), (None, 3), (30.0, 3), (600.0, 5)])
def test_default_lock_timeout_outlasts_another_process_prompting(
    timeout: float | None, attempts: int
) -> None:
    provider = SessionTokenProvider(
        mfa_serial=SERIAL, mfa_callback=_cb, mfa_timeout=timeout, mfa_attempts=attempts
    )
    # a waiting process must not give up while the holder may still be showing its prompts
    bound = (timeout if timeout is not None else 300.0) * attempts
    assert provider._lock_timeout > bound
