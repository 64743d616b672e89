"""attach(): real aiobotocore clients, created from an attached session, against the fake STS."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from aiobotocore.session import AioSession

from aio_sts_session import ConfigurationError, SessionTokenProvider
from aio_sts_session.integrations.aiobotocore import ProviderCredentials
from aio_sts_session.testing import FakeSts

from ..conftest import ACCESS_KEY, SECRET_KEY, T0, Device, FakeClock, source_session

MakeProvider = Callable[..., SessionTokenProvider]


async def whoami(session: AioSession, fake: FakeSts) -> str:
    async with session.create_client("sts", endpoint_url=fake.url, region_name="us-east-1") as sts:
        identity = await sts.get_caller_identity()
    return str(identity["UserId"])


async def test_forty_clients_created_concurrently_one_call_one_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    session = make_provider().attach(AioSession())
    fake_sts.gate = asyncio.Event()
    calls = [asyncio.ensure_future(whoami(session, fake_sts)) for _ in range(40)]
    await fake_sts.arrived.wait()
    fake_sts.gate.set()
    users = await asyncio.gather(*calls)
    assert len(set(users)) == 1
    assert users[0].startswith("ASIA")
    assert len(fake_sts.token_calls) == 1
    assert len(device.requests) == 1
    identity_calls = [
        c
        for c in fake_sts.calls
        if c.action == "GetCallerIdentity" and c.access_key_id.startswith("ASIA")
    ]
    assert len(identity_calls) == 40
    assert all(c.outcome == "ok" for c in identity_calls)


@pytest.mark.parametrize("where", ["env", "profile", "explicit", "resolved-before-attach"])
async def test_attach_to_the_session_holding_the_long_term_keys(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    if where == "env":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        session = AioSession()
    elif where == "profile":
        creds_file = tmp_path / "credentials"
        creds_file.write_text(
            f"[alice]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        )
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds_file))
        session = AioSession(profile="alice")
    elif where == "explicit":
        session = source_session()
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        session = AioSession()
        assert (await session.get_credentials()).access_key == ACCESS_KEY
    provider = make_provider(source_session=None)
    assert provider.attach(session) is session
    user = await whoami(session, fake_sts)
    assert user.startswith("ASIA")  # the client used the session credentials...
    assert fake_sts.token_calls[0].access_key_id == ACCESS_KEY  # ...signed by the user's keys
    assert isinstance(await session.get_credentials(), ProviderCredentials)


async def test_clients_refresh_through_the_provider(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock, device: Device
) -> None:
    session = make_provider().attach(AioSession())
    async with session.create_client(
        "sts", endpoint_url=fake_sts.url, region_name="us-east-1"
    ) as sts:
        first = (await sts.get_caller_identity())["UserId"]
        clock.advance(3600 + 5)  # expired while the client lived
        second = (await sts.get_caller_identity())["UserId"]
    assert first != second
    assert len(fake_sts.token_calls) == 2
    assert len(device.requests) == 2
    assert all(c.outcome == "ok" for c in fake_sts.calls)  # the fake refuses expired tokens


async def test_short_lived_credentials_through_a_client_do_not_refresh_per_call(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    fake_sts.duration_cap = 20
    provider = make_provider(duration_seconds=900)
    session = provider.attach(AioSession())
    async with session.create_client(
        "sts", endpoint_url=fake_sts.url, region_name="us-east-1"
    ) as sts:
        for _ in range(200):  # 20 s, a request every 100 ms
            await sts.get_caller_identity()
            clock.advance(0.1)
            await asyncio.sleep(0)  # a prefetch starts on the loop's next iteration
            flight = provider._slot.current()
            if flight is not None:
                await asyncio.gather(flight.wait(), return_exceptions=True)  # its outcome, recorded
    # Fresh for 10 s (half the 20 s lifetime), renewed in the prefetch window (10..15 s
    # left), not at expiry and not per call: refreshes at 0, ~10 and ~20 s.
    times = [c.at - T0 for c in fake_sts.token_calls]
    assert len(times) in (2, 3), times
    assert times[0] == 0
    assert 10 <= times[1] < 15, times  # early: the first token was still valid until 20 s
    assert all(later - earlier >= 10 for earlier, later in itertools.pairwise(times)), times
    assert all(c.outcome == "ok" for c in fake_sts.calls)


async def test_attach_twice_is_a_no_op_and_a_second_provider_is_refused(
    make_provider: MakeProvider,
) -> None:
    session = AioSession()
    provider = make_provider()
    provider.attach(session)
    provider.attach(session)
    chain = session.get_component("credential_provider").providers
    assert sum(isinstance(p, type(chain[0])) for p in chain) == 1
    with pytest.raises(ConfigurationError, match="already has another"):
        make_provider().attach(session)


def test_attach_refuses_what_is_not_a_session(make_provider: MakeProvider) -> None:
    with pytest.raises(ConfigurationError, match="AioSession"):
        make_provider().attach(object())


async def test_source_session_that_is_itself_attached_does_not_recurse(
    make_provider: MakeProvider, fake_sts: FakeSts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    session = AioSession()
    provider = make_provider(source_session=session)
    provider.attach(session)
    assert (await whoami(session, fake_sts)).startswith("ASIA")
    assert fake_sts.token_calls[0].access_key_id == ACCESS_KEY


async def test_explicit_keys_session_that_is_also_the_source(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    session = source_session()  # keys given with set_credentials: not in the chain
    make_provider(source_session=session).attach(session)
    assert (await whoami(session, fake_sts)).startswith("ASIA")
    assert fake_sts.token_calls[0].access_key_id == ACCESS_KEY


async def test_aioboto3_session(make_provider: MakeProvider, fake_sts: FakeSts) -> None:
    aioboto3 = pytest.importorskip("aioboto3")
    session = aioboto3.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
    )
    make_provider(source_session=None).attach(session)
    async with session.client("sts", endpoint_url=fake_sts.url) as sts:
        user = (await sts.get_caller_identity())["UserId"]
    assert user.startswith("ASIA")
    assert fake_sts.token_calls[0].access_key_id == ACCESS_KEY


async def test_clients_created_before_attach_keep_their_credentials(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    session = source_session()
    provider = make_provider(source_session=None)
    async with session.create_client(
        "sts", endpoint_url=fake_sts.url, region_name="us-east-1"
    ) as before:
        provider.attach(session)
        async with session.create_client(
            "sts", endpoint_url=fake_sts.url, region_name="us-east-1"
        ) as after:
            await before.get_caller_identity()
            await after.get_caller_identity()
    identity_calls = [c for c in fake_sts.calls if c.action == "GetCallerIdentity"]
    signers = [c.access_key_id for c in identity_calls]
    # the old client (long-term), the key check (long-term), the new client (session key)
    assert signers[:2] == [ACCESS_KEY, ACCESS_KEY]
    assert signers[2].startswith("ASIA")
    assert len(signers) == 3


async def test_a_botocore_session_is_a_source_of_keys_but_cannot_be_attached(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    import botocore.session

    sync_session = botocore.session.Session()
    sync_session.set_credentials(ACCESS_KEY, SECRET_KEY)
    provider = make_provider(source_session=sync_session)
    await provider.credentials()
    assert fake_sts.token_calls[0].access_key_id == ACCESS_KEY
    with pytest.raises(ConfigurationError, match="botocore \\(sync\\) session"):
        provider.attach(botocore.session.Session())
