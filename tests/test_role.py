"""AssumeRoleProvider against the strict fake STS: roles on one MFA session, the chaining cap,
MaxSessionDuration, trust policies, expired sessions, caching, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import AioSession

from aio_sts_session import (
    AssumeRoleProvider,
    ConfigurationError,
    EncryptedFileCache,
    SessionTokenProvider,
    StsError,
)
from aio_sts_session._role import default_session_name
from aio_sts_session.testing import FakeSts, Fault

from .conftest import ACCESS_KEY, SERIAL, Device, FakeClock

MakeProvider = Callable[..., SessionTokenProvider]
KEY = EncryptedFileCache.generate_key()


async def caller_arn(session: AioSession, fake: FakeSts) -> str:
    async with session.create_client("sts", endpoint_url=fake.url, region_name="us-east-1") as sts:
        identity = await sts.get_caller_identity()
    return str(identity["Arn"])


@pytest.fixture
def admin(fake_sts: FakeSts) -> str:
    return fake_sts.add_role("admin", max_session=43200)


async def test_a_role_on_the_mfa_session_signs_real_clients(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, admin: str
) -> None:
    session_provider = make_provider(duration_seconds=43200)
    role = session_provider.assume_role(admin, role_session_name="ci")
    client_session = role.attach(AioSession())
    assert await caller_arn(client_session, fake_sts) == (
        "arn:aws:sts::123456789012:assumed-role/admin/ci"
    )
    [call] = fake_sts.role_calls
    assert call.outcome == "ok"
    assert call.signed_with_session  # chained on the MFA session...
    assert call.serial is None  # ...which carries MFA: no code of its own
    assert call.duration == 3600
    assert len(device.requests) == 1
    assert len(fake_sts.token_calls) == 1
    await role.close()


async def test_five_roles_one_prompt_and_refreshes_cost_none(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    session_provider = make_provider(duration_seconds=43200)
    roles = [
        session_provider.assume_role(fake_sts.add_role(f"r{i}"), duration_seconds=3600)
        for i in range(5)
    ]
    first = await asyncio.gather(*(r.credentials() for r in roles))
    assert len({c.access_key_id for c in first}) == 5
    assert len(device.requests) == 1
    assert len(fake_sts.token_calls) == 1
    assert len(fake_sts.role_calls) == 5
    # Ten hours of one-hour roles: each renewed ~10 times, the MFA session never.
    for _ in range(10 * 6):
        clock.advance(600)
        await asyncio.gather(*(r.credentials() for r in roles))
        await asyncio.sleep(0)
    for r in roles:
        await r.refresh()  # no prefetch pending at the end
    assert len(device.requests) == 1
    assert len(fake_sts.token_calls) == 1
    assert len(fake_sts.role_calls) >= 5 * 10
    assert all(c.outcome == "ok" for c in fake_sts.calls)
    for r in roles:
        await r.close()


async def test_a_role_outliving_its_session_renews_the_session_once(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    session_provider = make_provider(duration_seconds=7200)
    role = session_provider.assume_role(fake_sts.add_role("job"))
    for _ in range(4 * 6):  # four hours
        await role.credentials()
        clock.advance(600)
        await asyncio.sleep(0)
    await role.credentials()
    # A 2-hour session: 2 or 3 prompts in 4 h, never one per role refresh.
    assert 2 <= len(device.requests) <= 3
    assert len(fake_sts.token_calls) == len(device.requests)
    assert len(fake_sts.role_calls) >= 4
    assert all(c.outcome == "ok" for c in fake_sts.calls)
    await role.close()


async def test_a_thousand_cold_callers_one_prompt_one_session_one_role_call(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, admin: str
) -> None:
    role = make_provider().assume_role(admin)
    fake_sts.gate = asyncio.Event()
    callers = [asyncio.ensure_future(role.credentials()) for _ in range(1000)]
    await fake_sts.arrived.wait()
    fake_sts.gate.set()
    results = await asyncio.gather(*callers)
    assert len({c.access_key_id for c in results}) == 1
    assert len(device.requests) == 1
    assert len(fake_sts.token_calls) == 1
    assert len(fake_sts.role_calls) == 1
    await role.close()


async def test_two_roles_of_one_session_asked_together_share_the_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    session_provider = make_provider()
    a = session_provider.assume_role(fake_sts.add_role("a"))
    b = session_provider.assume_role(fake_sts.add_role("b"))
    fake_sts.gate = asyncio.Event()
    waiting = asyncio.gather(a.credentials(), b.credentials())
    await fake_sts.arrived.wait()
    fake_sts.gate.set()
    await waiting
    assert len(device.requests) == 1
    assert len(fake_sts.token_calls) == 1
    await a.close()
    await b.close()


async def test_longer_than_an_hour_is_assumed_directly_with_a_code(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock, admin: str
) -> None:
    role = make_provider().assume_role(admin, duration_seconds=8 * 3600)
    creds = await role.credentials()
    assert creds.expiration.timestamp() - clock() == pytest.approx(8 * 3600, abs=2)  # not cut
    [call] = fake_sts.role_calls
    assert not call.signed_with_session  # the long-term keys...
    assert call.access_key_id == ACCESS_KEY
    assert call.serial == SERIAL  # ...with the code
    assert call.outcome == "ok"
    assert fake_sts.token_calls == []  # no MFA session needed
    assert [r.role_arn for r in device.requests] == [admin]
    assert device.requests[0].duration_seconds == 8 * 3600
    clock.advance(8 * 3600)
    await role.credentials()
    assert len(device.requests) == 2  # one prompt per role refresh, as documented
    await role.close()


async def test_above_max_session_duration_is_a_clear_error_and_never_asked_again(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    short = fake_sts.add_role("short", max_session=3600)
    role = make_provider().assume_role(short, duration_seconds=7200)
    with pytest.raises(ConfigurationError, match=r"7200 exceeds the MaxSessionDuration of .*short"):
        await role.credentials()
    # The code went with the call (STS alone knows the maximum); it is never asked again.
    clock.advance(3600)
    with pytest.raises(ConfigurationError, match="MaxSessionDuration"):
        await role.credentials()
    with pytest.raises(ConfigurationError, match="MaxSessionDuration"):
        await role.refresh()
    assert len(device.requests) == 1
    assert [c.outcome for c in fake_sts.role_calls] == ["too-long"]
    await role.close()


async def test_chaining_a_role_on_a_role_longer_than_an_hour_is_refused_at_once(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    first = make_provider().assume_role(fake_sts.add_role("first"))
    with pytest.raises(ConfigurationError, match="role chaining"):
        first.assume_role(fake_sts.add_role("second"), duration_seconds=7200)
    await first.close()


async def test_a_chain_of_roles(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    first_arn = fake_sts.add_role("first")
    first = make_provider().assume_role(first_arn, role_session_name="one")
    second_arn = fake_sts.add_role("second", trusted={"role/first"})
    second = first.assume_role(second_arn, role_session_name="two")
    session = second.attach(AioSession())
    assert await caller_arn(session, fake_sts) == (
        "arn:aws:sts::123456789012:assumed-role/second/two"
    )
    assert len(device.requests) == 1
    assert [c.role for c in fake_sts.role_calls] == [first_arn, second_arn]
    assert [c.outcome for c in fake_sts.role_calls] == ["ok", "ok"]
    await second.close()
    await first.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"role_arn": "arn:aws:iam::123456789012:user/alice"}, "role_arn must be"),
        ({"role_arn": "admin"}, "role_arn must be"),
        ({"duration_seconds": 899}, "900..43200"),
        ({"duration_seconds": 43201}, "900..43200"),
        ({"duration_seconds": "3600"}, "must be an int"),
        ({"role_session_name": "a b"}, "role_session_name"),
        ({"role_session_name": "x" * 65}, "role_session_name"),
        ({"external_id": "x"}, "external_id"),
        ({"stale_seconds": 400}, "must not exceed"),
        ({"cache": object()}, "TokenCache"),
    ],
)
async def test_bad_role_arguments_fail_at_construction(
    make_provider: MakeProvider, fake_sts: FakeSts, kwargs: dict[str, Any], match: str
) -> None:
    options: dict[str, Any] = {"role_arn": "arn:aws:iam::123456789012:role/admin"}
    options.update(kwargs)
    session_provider = make_provider()
    with pytest.raises(ConfigurationError, match=match):
        session_provider.assume_role(**options)
    assert fake_sts.calls == []


async def test_an_expired_session_at_sts_is_renewed_once_and_the_role_retried(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock, admin: str
) -> None:
    session_provider = make_provider(duration_seconds=43200)
    role = session_provider.assume_role(admin)
    await role.credentials()
    for issued in fake_sts.issued.values():  # STS ends the MFA session early
        if not issued.arn:
            issued.expires_at = clock() - 1
    clock.advance(3600)
    await role.credentials()
    assert len(device.requests) == 2  # one prompt to renew the session
    assert len(fake_sts.token_calls) == 2
    outcomes = [c.outcome for c in fake_sts.calls if c.action == "AssumeRole"]
    assert outcomes == ["ok", "bad-signature", "ok"]  # refused as ExpiredToken, then retried
    await role.close()


async def test_access_denied_names_the_role_and_the_identity_and_keeps_the_session(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    locked = fake_sts.add_role("locked", trusted={"bob"})
    role = make_provider().assume_role(locked)
    with pytest.raises(StsError) as info:
        await role.credentials()
    message = str(info.value)
    assert locked in message
    assert "arn:aws:iam::123456789012:user/alice" in message  # who was refused
    assert "trust policy" in message
    fake_sts.roles[locked].trusted = {"alice"}  # the administrator fixes the policy
    clock.advance(600)  # past the backoff
    await role.credentials()
    assert len(device.requests) == 1  # the MFA session was kept: no second code
    assert [c.outcome for c in fake_sts.role_calls] == ["denied", "ok"]
    await role.close()


async def test_a_role_demanding_mfa_on_a_session_without_it_says_so(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    role = make_provider(mfa_serial=None, mfa_callback=None).assume_role(
        fake_sts.add_role("guarded")
    )
    with pytest.raises(StsError, match="need mfa_serial"):
        await role.credentials()
    await role.close()


async def test_external_id(make_provider: MakeProvider, fake_sts: FakeSts) -> None:
    vendor = fake_sts.add_role("vendor", external_id="tenant-42")
    session_provider = make_provider()
    wrong = session_provider.assume_role(vendor, external_id="tenant-41")
    with pytest.raises(StsError, match="external id"):
        await wrong.credentials()
    right = session_provider.assume_role(vendor, external_id="tenant-42")
    await right.credentials()
    assert [c.outcome for c in fake_sts.role_calls] == ["denied", "ok"]
    await wrong.close()
    await right.close()


async def test_a_warm_cache_gives_role_credentials_with_no_call_and_no_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, clock: FakeClock, tmp_path: Path
) -> None:
    def cache() -> EncryptedFileCache:
        return EncryptedFileCache(tmp_path / "cache", key=KEY, clock=clock)

    admin = fake_sts.add_role("admin")
    first = make_provider(cache=cache()).assume_role(admin)
    creds = await first.credentials()
    await first.close()
    calls = len(fake_sts.calls)
    second = make_provider(cache=cache()).assume_role(admin)  # a new process
    assert await second.credentials() == creds
    assert len(fake_sts.calls) == calls
    assert len(device.requests) == 1
    await second.close()


@pytest.mark.parametrize("part", ["role", "session name", "external id", "source key", "mode"])
async def test_every_part_of_the_role_entry_key_keeps_credentials_apart(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    clock: FakeClock,
    tmp_path: Path,
    part: str,
) -> None:
    bob_key = "AKIAFAKESTSBOB000002"
    fake_sts.users[bob_key] = "bob-secret-0000000000000000000000000000"
    fake_sts.user_names[bob_key] = "bob"
    bob_serial = "arn:aws:iam::123456789012:mfa/bob"
    fake_sts.devices[bob_serial] = fake_sts.devices[SERIAL]
    for arn in ("a", "b"):
        fake_sts.add_role(arn, external_id="ext-1" if part == "external id" else None)
    fake_sts.roles["arn:aws:iam::123456789012:role/b"].external_id = (
        "ext-2" if part == "external id" else None
    )
    fake_sts.roles["arn:aws:iam::123456789012:role/a"].max_session = 43200
    cache = EncryptedFileCache(tmp_path / "cache", key=KEY, clock=clock)
    base: dict[str, Any] = {"role_arn": "arn:aws:iam::123456789012:role/a"}
    other = dict(base)
    if part == "role":
        other["role_arn"] = "arn:aws:iam::123456789012:role/b"
    elif part == "session name":
        other["role_session_name"] = "other"
    elif part == "external id":
        base["external_id"] = "ext-1"
        other["external_id"] = "ext-2"
        other["role_arn"] = "arn:aws:iam::123456789012:role/b"
    elif part == "mode":
        other["duration_seconds"] = 7200
    first = make_provider(cache=cache).assume_role(**base)
    one = await first.credentials()
    if part == "source key":
        from .conftest import source_session

        second = make_provider(
            cache=cache,
            source_session=source_session(bob_key, fake_sts.users[bob_key]),
            mfa_serial=bob_serial,
        ).assume_role(**other)
    else:
        second = make_provider(cache=cache).assume_role(**other)
    two = await second.credentials()
    assert one != two
    assert len(fake_sts.role_calls) == 2
    await first.close()
    await second.close()


def test_the_default_session_name_is_stable_and_valid() -> None:
    name = default_session_name()
    assert name == default_session_name()
    assert name.startswith("aio-sts-session")
    assert 2 <= len(name) <= 64


async def test_a_role_closes_its_client_but_not_the_shared_session(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    session_provider = make_provider()
    a = session_provider.assume_role(fake_sts.add_role("a"))
    b = session_provider.assume_role(fake_sts.add_role("b"))
    await a.credentials()
    await a.close()
    await b.credentials()  # the session provider is still open and serves b
    assert len(device.requests) == 1
    assert "role_arn='arn:aws:iam::123456789012:role/b'" in repr(b)
    await b.close()


async def test_a_transient_fault_on_assume_role_costs_no_prompt(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, admin: str
) -> None:
    fake_sts.faults.extend([Fault(action="AssumeRole")] * 4)  # outlasts botocore's 4 attempts
    role = make_provider().assume_role(admin)
    with pytest.raises(StsError):
        await role.credentials()
    await role.refresh()
    assert len(device.requests) == 1
    assert isinstance(role, AssumeRoleProvider)
    await role.close()


# -- session tags, source identity, session policies ----------------------------------------------

POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'


async def test_session_tags_source_identity_and_policies_reach_sts_as_sent(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, admin: str
) -> None:
    role = make_provider().assume_role(
        admin,
        tags={"team": "payments", "Cost Center": "42"},
        transitive_tag_keys=["team"],
        source_identity="alice",
        policy=POLICY,
        policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    )
    await role.credentials()
    [call] = fake_sts.role_calls
    assert call.outcome == "ok"
    assert call.options == {
        "tags": {"team": "payments", "Cost Center": "42"},
        "transitive_tag_keys": ["team"],
        "source_identity": "alice",
        "policy": POLICY,
        "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    }
    assert "session tags team, Cost Center" in repr(role)
    assert "payments" not in repr(role)  # tag values are not shown
    await role.close()


@pytest.mark.parametrize(
    "options",
    [
        {"tags": {"aws:team": "x"}},
        {"tags": {"team": "x"}, "transitive_tag_keys": ["env"]},
        {"source_identity": "a"},
        {"policy": "{"},
        {"policy_arns": ["not-an-arn"]},
    ],
)
async def test_a_bad_session_option_is_refused_before_anyone_is_asked(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, admin: str, options: Any
) -> None:
    session = make_provider()
    with pytest.raises(ConfigurationError):
        session.assume_role(admin, **options)
    assert device.requests == []
    assert fake_sts.calls == []


async def test_other_tags_or_another_policy_is_another_session_never_the_cached_one(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    device: Device,
    clock: FakeClock,
    tmp_path: Path,
    admin: str,
) -> None:
    cache = EncryptedFileCache(tmp_path / "cache", key=KEY, clock=clock)
    variants: list[dict[str, Any]] = [
        {},
        {"tags": {"team": "a"}},
        {"tags": {"team": "b"}},
        {"tags": {"team": "a"}, "transitive_tag_keys": ["team"]},
        {"source_identity": "alice"},
        {"policy": POLICY},
        {"policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]},
    ]
    session = make_provider(cache=cache)
    got = []
    for options in variants:
        role = session.assume_role(admin, **options)
        got.append((await role.credentials()).access_key_id)
    assert len(set(got)) == len(variants)  # seven sessions, seven AssumeRole calls
    assert len(fake_sts.role_calls) == len(variants)
    # Another process, the same options: the cached session, no call.
    again = make_provider(cache=cache).assume_role(admin, tags={"team": "b"})
    assert (await again.credentials()).access_key_id == got[2]
    assert len(fake_sts.role_calls) == len(variants)
    assert len(device.requests) == 1


async def test_along_a_chain_transitive_tags_and_the_source_identity_hold(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, admin: str
) -> None:
    """STS keeps a transitive tag and the source identity for the rest of a chain of roles:
    setting them again differently is refused, and the error says why, once (no retry, no
    prompt)."""
    audit = fake_sts.add_role("audit", trusted={"role/admin", "alice"})
    first = make_provider().assume_role(
        admin, tags={"team": "payments"}, transitive_tag_keys=["team"], source_identity="alice"
    )
    fine = first.assume_role(audit, source_identity="alice")
    await fine.credentials()
    assert fake_sts.role_calls[-1].outcome == "ok"
    retag = first.assume_role(audit, tags={"team": "other"}, role_session_name="retag")
    with pytest.raises(ConfigurationError, match="transitive cannot be set again"):
        await retag.credentials()
    other = first.assume_role(audit, source_identity="mallory", role_session_name="other")
    with pytest.raises(ConfigurationError, match="source identity cannot change"):
        await other.credentials()
    with pytest.raises(ConfigurationError):
        await other.credentials()  # remembered: STS is not asked again
    assert [c.outcome for c in fake_sts.role_calls].count("bad-session-options") == 2
    assert len(device.requests) == 1
    for provider in (fine, retag, other):
        await provider.close()


async def test_a_trust_policy_without_tag_session_is_named(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    arn = fake_sts.add_role("strict", allow_tag_session=False, allow_source_identity=False)
    role = make_provider().assume_role(arn, tags={"team": "a"}, source_identity="alice")
    with pytest.raises(StsError, match=r"sts:TagSession .* sts:SetSourceIdentity"):
        await role.credentials()
    await role.close()


async def test_packed_too_large_is_a_configuration_error_naming_the_options(
    make_provider: MakeProvider, fake_sts: FakeSts, admin: str
) -> None:
    fake_sts.packed_policy_limit = 10
    role = make_provider().assume_role(admin, tags={"team": "payments"}, policy=POLICY)
    says = r"session tags team; an inline session policy\) are too large once packed"
    with pytest.raises(ConfigurationError, match=says):
        await role.credentials()
    await role.close()
