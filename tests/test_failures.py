"""The README's failure table, row by row, against the strict fake STS over real HTTP.

Every test counts prompts: a human is asked at most once per backoff period, whatever the
request rate, and never twice for what one code could serve.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable

import pytest
from aiobotocore.session import AioSession

from aio_sts_session import (
    ConfigurationError,
    MfaError,
    MfaRequest,
    ReentrantRefreshError,
    SessionTokenProvider,
    State,
    StsError,
    StsUnavailableError,
)
from aio_sts_session._engine import HANDOVER_SECONDS
from aio_sts_session.testing import FakeSts, Fault

from .conftest import (
    ACCESS_KEY,
    SECRET_KEY,
    SERIAL,
    Device,
    FakeClock,
    logs_warning,
    provider_for_threaded_fake,
    source_session,
)

MakeProvider = Callable[..., SessionTokenProvider]
DENIED = Fault(
    403,
    "AccessDenied",
    "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: sts:GetSessionToken",
)


async def settle(provider: SessionTokenProvider) -> None:
    flight = provider._slot.current()
    if flight is not None:
        await asyncio.gather(flight.wait(), return_exceptions=True)  # its outcome, recorded


def attached_sts_client(provider: SessionTokenProvider, fake: FakeSts) -> object:
    session = provider.attach(source_session())
    return session.create_client("sts", region_name="us-east-1", endpoint_url=fake.url)


# -- every failure kind backs off: no prompt storm ----------------------------------------------


async def test_access_denied_does_not_become_a_prompt_storm(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    """The user may not call GetSessionToken: 500 requests through an attached client cost one
    prompt and one GetSessionToken, not one each (132 prompts in 1.5 s were measured on 0.1)."""
    fake_sts.faults.extend(Fault(DENIED.status, DENIED.code, DENIED.message) for _ in range(100))
    provider = make_provider()
    async with attached_sts_client(provider, fake_sts) as sts:  # type: ignore[attr-defined]
        errors = []
        for _ in range(500):
            try:
                await sts.get_caller_identity()
            except StsError as exc:
                errors.append(exc)
        assert len(errors) == 500
        assert len(device.requests) == 1
        assert len(fake_sts.token_calls) == 1
        assert "retrying in" in str(errors[-1])  # the last error, at once
        assert isinstance(errors[-1].__cause__, StsError)
        clock.advance(10)  # the first persistent backoff (10 s, less jitter) is over
        for _ in range(200):
            with pytest.raises(StsError):
                await sts.get_caller_identity()
        assert len(device.requests) == 2  # one more prompt per backoff period
        assert len(fake_sts.token_calls) == 2
        clock.advance(10)  # the second backoff is 20 s: not over yet
        for _ in range(200):
            with pytest.raises(StsError):
                await sts.get_caller_identity()
        assert len(device.requests) == 2


async def test_a_failing_callback_is_asked_once_per_backoff_period(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    asked: list[MfaRequest] = []

    async def dismissed(request: MfaRequest) -> str:
        asked.append(request)
        raise RuntimeError("the user closed the dialog")

    provider = make_provider(mfa_callback=dismissed)
    for second in range(120):  # two minutes at 50 requests a second
        for _ in range(50):
            with pytest.raises(MfaError):
                await provider.credentials()
        clock.advance(1)
        assert len(asked) <= 1 + (second + 1) // 10
    # backoff 10, 20, 40 s (jitter takes up to a fifth off): 4 prompts in 120 s
    assert 3 <= len(asked) <= 4
    assert fake_sts.token_calls == []


async def test_refresh_is_the_explicit_way_to_try_again_now(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    fake_sts.faults.append(Fault(DENIED.status, DENIED.code, DENIED.message))
    provider = make_provider()
    with pytest.raises(StsError, match="allow sts:GetSessionToken"):
        await provider.credentials()
    with pytest.raises(StsError, match="retrying in"):
        await provider.credentials()  # backing off
    creds = await provider.refresh()  # ignores the backoff
    assert await provider.credentials() is creds
    assert len(device.requests) == 2


# -- still-valid credentials are served ----------------------------------------------------------


async def test_an_sts_outage_in_the_stale_window_serves_the_valid_credentials(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    provider = make_provider()
    old = await provider.credentials()
    clock.advance(3600 - 59)  # stale: 59 s left
    fake_sts.faults.extend(Fault(503) for _ in range(10_000))  # STS down for a minute
    for _ in range(58):
        results = await asyncio.gather(*(provider.credentials() for _ in range(20)))
        assert all(r is old for r in results)  # never an error while they are valid
        clock.advance(1)
    assert len(device.requests) <= 3  # one code, held while STS never judged it, then ~30 s
    clock.advance(1.5)  # expired, STS still down: now callers get the error
    clock.advance(30)
    with pytest.raises(StsUnavailableError):
        await provider.credentials()
    fake_sts.faults.clear()
    clock.advance(31)
    new = await provider.credentials()
    assert new is not old


async def test_a_stale_caller_never_waits_past_the_credentials_in_hand(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    """STS hangs (a gate that stays shut): a caller in the stale window gets the credentials
    in hand just before they expire, instead of waiting for the refresh until they have; the
    refresh goes on, and a later caller gets its result."""
    provider = make_provider()
    old = await provider.credentials()
    clock.advance(3600 - HANDOVER_SECONDS - 0.3)  # stale, 0.3 s before the hand-over
    fake_sts.gate = asyncio.Event()
    served = await asyncio.wait_for(provider.credentials(), 60)  # a hang detector only
    assert served is old
    flight = provider._slot.current()
    assert flight is not None
    assert not flight.finished  # the refresh is still on its way
    fake_sts.gate.set()
    await settle(provider)
    new = await provider.credentials()
    assert new is not old
    assert len(device.requests) == 2
    assert len(fake_sts.token_calls) == 2


async def test_a_stale_caller_inside_the_handover_margin_gets_what_is_in_hand_at_once(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    """Red-team review 2: with less than HANDOVER_SECONDS left, a caller waited for the whole
    refresh (STS hanging: until long after the credentials in hand expired). Now it gets them
    in its first step, with no wait at all; the refresh goes on."""
    provider = make_provider()
    old = await provider.credentials()
    clock.advance(3600 - HANDOVER_SECONDS + 2)  # 3 s left: inside the margin
    fake_sts.gate = asyncio.Event()  # STS hangs
    caller = asyncio.ensure_future(provider.credentials())
    for _ in range(3):
        await asyncio.sleep(0)  # a few loop iterations, no wall-clock time
    assert caller.done()
    assert caller.result() is old
    flight = provider._slot.current()
    assert flight is not None
    assert not flight.finished
    fake_sts.gate.set()
    await settle(provider)
    assert (await provider.credentials()) is not old
    assert len(device.requests) == 2


async def test_expired_and_backing_off_fails_at_once_without_sts_or_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    provider = make_provider()
    await provider.credentials()
    clock.advance(3600)
    fake_sts.faults.extend(Fault(503) for _ in range(4))
    with pytest.raises(StsUnavailableError):
        await provider.credentials()
    calls = len(fake_sts.calls)
    for _ in range(1000):
        with pytest.raises(StsUnavailableError, match="retrying in"):
            await provider.credentials()
    assert len(fake_sts.calls) == calls
    assert len(device.requests) == 2


async def test_fail_fast_escalates_1_2_4_to_30_s_and_resets_after_a_success(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    provider = make_provider(mfa_serial=None, mfa_callback=None)
    fake_sts.faults.extend(Fault(503) for _ in range(4 * 8))
    delays = []
    for _ in range(8):
        with pytest.raises(StsUnavailableError, match="after retries"):
            await provider.credentials()
        snap = provider._snap
        delays.append(snap.retry_at - clock())
        clock.advance(snap.retry_at - clock())
    expected = [1, 2, 4, 8, 16, 30, 30, 30]
    assert all(e * 0.8 <= d <= e for d, e in zip(delays, expected, strict=True)), delays
    await provider.credentials()  # STS is back
    assert provider._snap.failures == 0
    clock.advance(3600)
    fake_sts.faults.extend(Fault(503) for _ in range(4))
    with pytest.raises(StsUnavailableError):
        await provider.credentials()
    assert provider._snap.retry_at - clock() <= 1.0  # back to the first step


# -- refresh(rejected=...) -------------------------------------------------------------------


async def test_two_tasks_that_saw_the_same_credentials_refused_cause_one_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    provider = make_provider()
    refused = await provider.credentials()
    first = await provider.refresh(rejected=refused)
    second = await provider.refresh(rejected=refused)  # the other task, a moment later
    assert first is second
    assert first.access_key_id != refused.access_key_id
    assert len(device.requests) == 2
    concurrent = await asyncio.gather(*(provider.refresh(rejected=first) for _ in range(50)))
    assert all(c is concurrent[0] for c in concurrent)
    assert len(device.requests) == 3


# -- re-entrancy -----------------------------------------------------------------------------


async def test_a_callback_that_needs_the_providers_own_credentials_fails_at_once(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    """An MFA callback that fetches the code through a client of the attached session (Secrets
    Manager, SNS …) would wait for the refresh it is part of: a clear error, never a hang."""
    session: AioSession | None = None

    async def from_a_service(request: MfaRequest) -> str:
        assert session is not None
        async with session.create_client(
            "sts", region_name="us-east-1", endpoint_url=fake_sts.url
        ) as sts:
            await sts.get_caller_identity()  # signed with the provider's credentials
        return fake_sts.fresh_code(SERIAL)

    provider = make_provider(mfa_callback=from_a_service)
    session = provider.attach(source_session())
    async with asyncio.timeout(10) if hasattr(asyncio, "timeout") else _nullcontext():
        with pytest.raises(MfaError) as info:
            await provider.credentials()
    assert isinstance(info.value.__cause__, ReentrantRefreshError)
    assert "another session" in str(info.value.__cause__)
    assert fake_sts.token_calls == []


class _nullcontext:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *args: object) -> None:
        return None


async def test_refresh_from_inside_the_refresh_is_refused(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    provider: SessionTokenProvider | None = None

    async def reentrant(request: MfaRequest) -> str:
        assert provider is not None
        await provider.refresh()
        return "123456"

    provider = make_provider(mfa_callback=reentrant)
    with pytest.raises(MfaError) as info:
        await provider.credentials()
    assert isinstance(info.value.__cause__, ReentrantRefreshError)


# -- cancellation ----------------------------------------------------------------------------


def test_a_prefetch_cancelled_by_the_end_of_its_loop_does_not_switch_prefetch_off(
    threaded_fake_sts: FakeSts, clock: FakeClock
) -> None:
    fake = threaded_fake_sts
    provider = provider_for_threaded_fake(fake, clock)
    old = asyncio.run(provider.credentials())
    clock.advance(3600 - 200)  # prefetch window

    async def one_command() -> None:
        assert await provider.credentials() is old  # starts the background refresh ...
        await asyncio.sleep(0)
        assert provider._slot.pending()
        # ... and asyncio.run ends here, cancelling it mid-flight

    asyncio.run(one_command())

    async def next_command() -> None:
        assert await provider.credentials() is old  # prefetch window: served at once
        assert provider._slot.pending()  # and a new background refresh started
        await settle(provider)
        assert provider.state() is State.FRESH
        assert await provider.credentials() is not old

    asyncio.run(next_command())
    asyncio.run(provider.close())


def test_a_prefetch_lost_with_its_loop_is_started_again_within_a_second(
    threaded_fake_sts: FakeSts, clock: FakeClock
) -> None:
    """A program running its own loop returns right after triggering the prefetch and closes
    the loop (no asyncio.run to cancel what is left): the prefetch never reports back. The fast
    path re-checks within RECHECK_SECONDS, sees the flight's loop closed, and prefetches
    again."""
    fake = threaded_fake_sts
    provider = provider_for_threaded_fake(fake, clock)
    old = asyncio.run(provider.credentials())
    clock.advance(3600 - 200)

    async def triggers_and_returns() -> None:
        assert await provider.credentials() is old

    loop = asyncio.new_event_loop()
    loop.run_until_complete(triggers_and_returns())
    flight = provider._slot._flight
    assert flight is not None
    assert flight.task is not None
    assert not flight.task.done()  # started, never to finish
    loop.close()
    flight.task.get_coro().close()  # what the closed loop abandoned (asyncio warns of it)
    assert flight._refresh is not None
    flight._refresh.close()
    clock.advance(1.0)

    async def next_command() -> None:
        assert await provider.credentials() is old
        assert provider._slot.pending()  # started again on this loop
        await settle(provider)
        assert provider.state() is State.FRESH

    asyncio.run(next_command())
    asyncio.run(provider.close())


async def test_a_cancelled_blocking_refresh_leaves_the_provider_ready(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    provider = make_provider()
    fake_sts.gate = asyncio.Event()
    waiter = asyncio.ensure_future(provider.credentials())
    await fake_sts.arrived.wait()
    flight = provider._slot.current()
    assert flight is not None
    await flight.cancel()  # as the end of an event loop does
    with pytest.raises(Exception, match="cancelled"):
        await waiter
    fake_sts.gate.set()
    creds = await provider.credentials()
    assert creds.access_key_id.startswith("ASIA")
    assert provider.state() is State.FRESH


async def test_a_cancelled_callback_is_not_a_failure_for_the_waiters_it_did_not_cancel(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    """A callback whose own await is cancelled (a UI torn down) fails that refresh with
    MfaError for its waiters; the next refresh asks again."""
    calls: list[int] = []

    async def torn_down(request: MfaRequest) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise asyncio.CancelledError
        return fake_sts.fresh_code(SERIAL)

    provider = make_provider(mfa_callback=torn_down)
    waiters = [asyncio.ensure_future(provider.credentials()) for _ in range(10)]
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)
    assert len(calls) == 1
    creds = await provider.refresh()
    assert creds.access_key_id.startswith("ASIA")
    assert len(calls) == 2


# -- STS client creation, attached sessions, no-MFA round trips --------------------------------


async def test_prepare_and_first_credentials_concurrently_create_one_client(
    make_provider: MakeProvider, fake_sts: FakeSts, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider()
    created = []
    original = provider._sts._create

    async def counting(*args: object) -> object:
        created.append(1)
        await asyncio.sleep(0)  # let the other caller in while this one creates
        return await original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(provider._sts, "_create", counting)
    await asyncio.gather(provider.prepare(), provider.credentials(), provider.prepare())
    assert created == [1]
    assert [c.action for c in fake_sts.calls].count("GetCallerIdentity") == 1


async def test_a_second_attached_session_is_refused_without_source_session(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    provider = make_provider(source_session=None)
    a = AioSession()
    a.set_credentials(ACCESS_KEY, SECRET_KEY)
    assert provider.attach(a) is a
    assert provider.attach(a) is a  # the same session again: fine
    b = AioSession()
    b.set_credentials("AKIAFAKESTSBOB000002", "bob-secret")
    with pytest.raises(ConfigurationError, match="source_session="):
        provider.attach(b)
    # b was not changed: it still signs with its own keys
    assert (await b.get_credentials()).access_key == "AKIAFAKESTSBOB000002"
    shared = make_provider()  # with source_session=: any number of sessions
    for _ in range(3):
        shared.attach(AioSession())


async def test_without_mfa_one_round_trip(make_provider: MakeProvider, fake_sts: FakeSts) -> None:
    provider = make_provider(mfa_serial=None, mfa_callback=None)
    await provider.credentials()
    assert [c.action for c in fake_sts.calls] == ["GetSessionToken"]


# -- faults from STS -------------------------------------------------------------------------


async def test_a_connection_reset_mid_response_is_retried_with_the_same_code(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    fake_sts.faults.append(Fault(kind="reset"))
    provider = make_provider()
    await provider.credentials()
    assert [c.outcome for c in fake_sts.token_calls] == ["fault:reset", "ok"]
    assert len({c.code for c in fake_sts.token_calls}) == 1
    assert len(device.requests) == 1


CREDENTIALS = (
    '<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    "<GetSessionTokenResult><Credentials><AccessKeyId>ASIAX</AccessKeyId>"
    "<SecretAccessKey>broken-answer-secret</SecretAccessKey><SessionToken>t</SessionToken>"
    "<Expiration>{expiration}</Expiration></Credentials>"
    "</GetSessionTokenResult></GetSessionTokenResponse>"
)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("<GetSessionTokenResponse><oops", "could not be read"),
        (
            '<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<GetSessionTokenResult><Credentials><AccessKeyId>ASIAX</AccessKeyId>"
            "<Expiration>2027-01-15T09:00:00Z</Expiration></Credentials>"
            "</GetSessionTokenResult></GetSessionTokenResponse>",
            "lacks SecretAccessKey, SessionToken",
        ),
        (
            '<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<GetSessionTokenResult></GetSessionTokenResult></GetSessionTokenResponse>",
            "lacks AccessKeyId",
        ),
        (CREDENTIALS.format(expiration="abc"), "a timestamp that is not a date"),
        (CREDENTIALS.format(expiration="99999999999999999999"), "a timestamp that is not a date"),
        (
            '<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            "<ResponseMetadata><RequestId>x</RequestId></ResponseMetadata>"
            "</GetSessionTokenResponse>",
            "no GetSessionTokenResult element",
        ),
    ],
    ids=[
        "malformed-xml",
        "missing-fields",
        "no-credentials",
        "expiration-abc",
        "expiration-huge",
        "no-result",
    ],
)
async def test_a_broken_answer_is_a_clear_error_and_backs_off(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, body: str, match: str
) -> None:
    fake_sts.faults.append(Fault(kind="body", body=body))
    provider = make_provider()
    with pytest.raises(StsError, match=match) as raised:
        await provider.credentials()
    assert "broken-answer-secret" not in "".join(traceback.format_exception(raised.value))
    with pytest.raises(StsError, match="retrying in"):
        await provider.credentials()
    assert len(device.requests) == 1


@pytest.mark.parametrize("action", ["AssumeRole", "GetCallerIdentity"])
async def test_an_answer_without_its_result_element_is_an_sts_error_for_every_action(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, action: str
) -> None:
    """GetCallerIdentity checks the keys before the first prompt; AssumeRole follows the MFA
    session. A body without ``<ActionResult>`` was a KeyError from botocore's parser."""
    body = (
        f'<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></{action}Response>"
    )
    fake_sts.faults.append(Fault(kind="body", body=body, action=action))
    session = make_provider()
    role = session.assume_role(fake_sts.add_role("broken"))
    with pytest.raises(StsError, match=f"answer to {action} could not be read") as raised:
        await role.credentials()
    assert raised.value.__cause__ is None  # botocore's exception quotes the body: not chained
    assert len(device.requests) == (0 if action == "GetCallerIdentity" else 1)
    await role.close()


async def test_an_expiration_far_beyond_the_request_is_capped_with_a_warning(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for expiration in ("9999-12-31T23:59:59Z", "2126-01-01T00:00:00Z"):
        fake_sts.faults.append(Fault(kind="body", body=CREDENTIALS.format(expiration=expiration)))
        provider = make_provider(duration_seconds=3600)
        with logs_warning(caplog, "3600 s were asked for"):
            creds = await provider.credentials()
        assert creds.expiration.timestamp() == pytest.approx(clock() + 3600, abs=2)
        assert provider._snap.token is not None
        assert provider._snap.token.lifetime == pytest.approx(3600, abs=2)
        clock.advance(3600 - 60)  # the windows follow the capped lifetime: a refresh is due
        assert provider.state() is not State.FRESH
        await provider.close()


async def test_an_expiration_already_past_is_refused_not_looped_on(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    past = (
        '<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<GetSessionTokenResult><Credentials><AccessKeyId>ASIAPAST</AccessKeyId>"
        "<SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>"
        "<Expiration>2020-01-01T00:00:00Z</Expiration></Credentials>"
        "</GetSessionTokenResult></GetSessionTokenResponse>"
    )
    fake_sts.faults.append(Fault(kind="body", body=past))
    provider = make_provider()
    with pytest.raises(StsError, match="already past"):
        await provider.credentials()
    for _ in range(100):
        with pytest.raises(StsError):
            await provider.credentials()
    assert len(device.requests) == 1
    assert len(fake_sts.token_calls) == 1


async def test_an_accepted_code_whose_answer_was_lost_is_not_counted_against_the_user(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    """STS accepted the code and marked it used, then the answer was lost (500): botocore's
    retry resends that code, which STS refuses as used, so the user is asked for a new one.
    This is the one case in which a code STS accepted is sent again (README, "A code is sent
    once")."""
    fake_sts.faults.append(Fault(kind="after-accept"))
    provider = make_provider()
    await provider.credentials()
    outcomes = [c.outcome for c in fake_sts.token_calls]
    assert outcomes == ["fault:after-accept", "bad-code", "ok"]
    assert fake_sts.token_calls[0].code == fake_sts.token_calls[1].code
    assert [r.reason for r in device.requests] == ["initial", "rejected"]


async def test_an_outage_of_the_key_check_fails_before_any_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    fake_sts.faults.extend(Fault(400, "Throttling", "Rate exceeded", action=None) for _ in range(4))
    provider = make_provider()
    with pytest.raises(StsUnavailableError):
        await provider.credentials()
    assert device.requests == []
    assert [c.action for c in fake_sts.calls] == ["GetCallerIdentity"] * 4


async def test_after_an_outage_sts_is_probed_before_a_new_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    provider = make_provider()
    fake_sts.faults.extend(Fault(503) for _ in range(4))
    with pytest.raises(StsUnavailableError):
        await provider.credentials()
    clock.advance(60)  # the held code is too old; STS is still down, now for every call
    fake_sts.faults.extend(Fault(503, action=None) for _ in range(4))
    with pytest.raises(StsUnavailableError):
        await provider.refresh()
    assert len(device.requests) == 1  # STS did not answer the probe: nobody was asked
    assert [c.action for c in fake_sts.calls][-4:] == ["GetCallerIdentity"] * 4


# -- callbacks -------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["123 456", " 123456\n", "123456\r\n", "12 34 56"])
async def test_answers_are_normalised_before_judging(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, answer: str
) -> None:
    code = fake_sts.fresh_code(SERIAL)
    device.answers = [answer.replace("123456", code).replace("123 456", f"{code[:3]} {code[3:]}")]
    if answer == "12 34 56":
        device.answers = [f"{code[:2]} {code[2:4]} {code[4:]}"]
    provider = make_provider()
    await provider.credentials()
    assert [c.code for c in fake_sts.token_calls] == [code]
    assert len(device.requests) == 1


@pytest.mark.parametrize("answer", [123456, None, b"123456", 12.0])
async def test_a_non_str_answer_is_a_programming_error_that_fails_at_once(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, answer: object
) -> None:
    device.answers = [answer]
    provider = make_provider()
    with pytest.raises(MfaError, match=f"returned {type(answer).__name__}, not str"):
        await provider.credentials()
    assert len(device.requests) == 1  # not asked again: a second prompt would not help
    assert fake_sts.token_calls == []


async def test_the_final_message_gives_the_advice_that_fits(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    device.answers = ["abc", "12345", "1234567"]
    with pytest.raises(MfaError) as malformed:
        await make_provider().credentials()
    assert "not six-digit codes" in str(malformed.value)
    assert "device's clock" not in str(malformed.value)
    device.answers = [fake_sts.wrong_code(SERIAL)] * 3
    with pytest.raises(MfaError) as rejected:
        await make_provider().credentials()
    assert "device's clock" in str(rejected.value)
    assert "not six-digit codes" not in str(rejected.value)


async def test_the_previous_windows_code_once_used_is_rejected_and_asked_again(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    provider = make_provider()
    await provider.credentials()
    used = fake_sts.token_calls[0].code
    clock.advance(3600 - 30)  # stale; the user types the code they typed an hour ago
    device.answers = [used]
    await provider.credentials()
    assert [c.outcome for c in fake_sts.token_calls] == ["ok", "bad-code", "ok"]
    assert [r.reason for r in device.requests] == ["initial", "initial", "rejected"]


@pytest.mark.parametrize(
    "serial",
    [
        "arn:aws:iam::123456789012:user/dave",
        "arn:aws:iam::123456789012:role/admin",
        "arn:aws:sts::123456789012:assumed-role/admin/x",
        "arn:aws:iam::12345:mfa/dave",
    ],
)
def test_an_arn_that_is_not_an_mfa_device_is_refused_before_any_prompt(serial: str) -> None:
    async def never(request: MfaRequest) -> str:
        raise AssertionError("never asked")

    with pytest.raises(ConfigurationError, match="not of an MFA device"):
        SessionTokenProvider(mfa_serial=serial, mfa_callback=never)


def test_mfa_device_arns_of_every_partition_and_hardware_serials_are_accepted() -> None:
    for serial in [
        "arn:aws:iam::123456789012:mfa/alice",
        "arn:aws-us-gov:iam::123456789012:mfa/alice",
        "arn:aws-cn:iam::123456789012:mfa/path/alice",
        "GAHT12345678",
    ]:
        SessionTokenProvider(mfa_serial=serial, mfa_callback=lambda r: "123456")


# -- logging ---------------------------------------------------------------------------------


async def test_an_audit_trail_at_info_and_no_warning_for_errors_callers_see(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aio_sts_session")
    provider = make_provider()
    await provider.credentials()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith("Asking for an MFA code") for m in messages)
    assert any(m.startswith("New credentials") and "expire at" in m for m in messages)
    caplog.clear()
    clock.advance(3600)
    fake_sts.faults.append(Fault(DENIED.status, DENIED.code, DENIED.message))
    with pytest.raises(StsError):
        await provider.credentials()  # the caller sees it: no WARNING
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("next attempt in" in r.getMessage() for r in caplog.records)
