"""from_profile and profile-aware sessions: config files in a temporary HOME, real aiobotocore
clients over HTTP to the strict fake STS (reached through the profile's own ``services``
endpoint setting, as botocore resolves it)."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import AioSession

import aio_sts_session as ass
from aio_sts_session import (
    AssumeRoleProvider,
    ConfigurationError,
    EncryptedFileCache,
    SessionTokenProvider,
)
from aio_sts_session.testing import FakeSts

from .conftest import ACCESS_KEY, SECRET_KEY, SERIAL, Device, FakeClock

ADMIN = "arn:aws:iam::123456789012:role/admin"
READER = "arn:aws:iam::123456789012:role/reader"


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_sts: FakeSts) -> Any:
    """Write ~/.aws/config and ~/.aws/credentials (the fake STS as the configured endpoint)."""
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))

    def write(profiles: str, creds: str | None = None) -> None:
        config.write_text(
            textwrap.dedent(profiles)
            + f"\n[services fake]\nsts =\n  endpoint_url = {fake_sts.url}\n"
        )
        credentials.write_text(
            textwrap.dedent(
                creds
                if creds is not None
                else f"""
                [base]
                aws_access_key_id = {ACCESS_KEY}
                aws_secret_access_key = {SECRET_KEY}
                """
            )
        )

    return write


STANDARD = f"""
[profile base]
mfa_serial = {SERIAL}
region = us-east-1
services = fake

[profile admin]
role_arn = {ADMIN}
source_profile = base
role_session_name = alice-admin
duration_seconds = 1800

[profile reader]
role_arn = {READER}
source_profile = base
external_id = ext-7

[profile eight-hours]
role_arn = {ADMIN}
source_profile = base
duration_seconds = 28800
"""


async def caller_arn(session: AioSession, fake: FakeSts) -> str:
    async with session.create_client("sts", endpoint_url=fake.url, region_name="us-east-1") as sts:
        return str((await sts.get_caller_identity())["Arn"])


async def test_a_session_profile_uses_its_mfa_serial(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    aws_files(STANDARD)
    provider = ass.from_profile("base", mfa_callback=device, clock=clock)
    assert type(provider) is SessionTokenProvider
    await provider.credentials()
    [call] = fake_sts.token_calls
    assert call.serial == SERIAL  # the profile's mfa_serial is honoured, not ignored
    assert call.outcome == "ok"
    assert call.duration == 43200
    assert len(device.requests) == 1
    await provider.close()


async def test_a_role_profile_gives_a_role_provider_with_its_settings(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    aws_files(STANDARD)
    fake_sts.add_role("admin")
    provider = ass.from_profile("admin", mfa_callback=device, clock=clock)
    assert isinstance(provider, AssumeRoleProvider)
    session = provider.attach(AioSession())
    assert await caller_arn(session, fake_sts) == (
        "arn:aws:sts::123456789012:assumed-role/admin/alice-admin"
    )
    [call] = fake_sts.role_calls
    assert call.duration == 1800
    assert call.session_name == "alice-admin"
    assert call.signed_with_session
    assert fake_sts.token_calls[0].serial == SERIAL  # mfa_serial from the source profile
    await provider.close()
    assert provider.source._closed  # from_profile made the session for it


async def test_name_none_follows_aws_profile(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock, monkeypatch: Any
) -> None:
    aws_files(STANDARD)
    fake_sts.add_role("admin")
    monkeypatch.setenv("AWS_PROFILE", "admin")
    provider = ass.from_profile(mfa_callback=device, clock=clock)
    assert isinstance(provider, AssumeRoleProvider)
    assert provider.role_arn == ADMIN
    await provider.close()


async def test_external_id_and_overrides(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    aws_files(STANDARD)
    fake_sts.add_role("reader", external_id="ext-7")
    provider = ass.from_profile(
        "reader", mfa_callback=device, clock=clock, duration_seconds=900, mfa_attempts=1
    )
    await provider.credentials()
    [call] = fake_sts.role_calls
    assert call.outcome == "ok"  # the external id from the profile was sent
    assert call.duration == 900
    await provider.close()


async def test_an_eight_hour_role_profile_is_assumed_directly(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    aws_files(STANDARD)
    fake_sts.add_role("admin", max_session=43200)
    provider = ass.from_profile("eight-hours", mfa_callback=device, clock=clock)
    creds = await provider.credentials()
    assert creds.expiration.timestamp() - clock() == pytest.approx(28800, abs=2)
    assert fake_sts.token_calls == []
    assert fake_sts.role_calls[0].serial == SERIAL
    await provider.close()


async def test_two_role_profiles_sharing_one_cache_cost_one_prompt(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock, tmp_path: Path
) -> None:
    aws_files(STANDARD)
    fake_sts.add_role("admin")
    fake_sts.add_role("reader", external_id="ext-7")
    key = EncryptedFileCache.generate_key()
    admin = ass.from_profile(
        "admin", mfa_callback=device, clock=clock, cache=EncryptedFileCache(tmp_path / "c", key=key)
    )
    reader = ass.from_profile(
        "reader",
        mfa_callback=device,
        clock=clock,
        cache=EncryptedFileCache(tmp_path / "c", key=key),
    )
    fake_sts.gate = asyncio.Event()
    both = asyncio.gather(admin.credentials(), reader.credentials())
    await fake_sts.arrived.wait()
    fake_sts.gate.set()
    await both
    assert len(device.requests) == 1
    assert len(fake_sts.token_calls) == 1
    assert len(fake_sts.role_calls) == 2
    await admin.close()
    await reader.close()


async def test_a_role_chain_in_profiles(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    aws_files(
        STANDARD
        + "[profile deep]\nrole_arn = arn:aws:iam::123456789012:role/deep\nsource_profile = admin\n"
    )
    fake_sts.add_role("admin")
    fake_sts.add_role("deep", trusted={"role/admin"})
    provider = ass.from_profile("deep", mfa_callback=device, clock=clock)
    session = provider.attach(AioSession())
    assert (await caller_arn(session, fake_sts)).startswith(
        "arn:aws:sts::123456789012:assumed-role/deep/"
    )
    assert len(device.requests) == 1
    await provider.close()


async def test_a_source_session_with_a_profile_mfa_serial_uses_it(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    """The defect the issue reports: mfa_serial in the profile was silently ignored."""
    aws_files(STANDARD)
    provider = SessionTokenProvider(
        source_session=AioSession(profile="base"), mfa_callback=device, clock=clock
    )
    await provider.credentials()
    assert fake_sts.token_calls[0].serial == SERIAL
    await provider.close()


async def test_a_profile_mfa_serial_without_a_callback_fails_before_any_call(
    aws_files: Any, fake_sts: FakeSts, clock: FakeClock
) -> None:
    aws_files(STANDARD)
    provider = SessionTokenProvider(source_session=AioSession(profile="base"), clock=clock)
    with pytest.raises(ConfigurationError, match=r"'base' names mfa_serial .* no mfa_callback"):
        await provider.credentials()
    assert fake_sts.calls == []  # never a GetSessionToken without MFA
    await provider.close()


async def test_an_attached_sessions_region_and_profile_are_used(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    aws_files(STANDARD.replace("region = us-east-1", "region = eu-west-1"))
    fake_sts.regions = {"eu-west-1"}  # refuses a signature for any other region
    provider = SessionTokenProvider(mfa_callback=device, clock=clock)
    session = provider.attach(AioSession(profile="base"))
    async with session.create_client("sts", endpoint_url=fake_sts.url) as sts:
        await sts.get_caller_identity()
    [call] = fake_sts.token_calls
    assert call.outcome == "ok"
    assert call.serial == SERIAL
    assert provider._sts.region_name == "eu-west-1"
    await provider.close()


async def test_the_source_profiles_endpoint_settings_are_botocores(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock, monkeypatch: Any
) -> None:
    aws_files(
        STANDARD.replace("services = fake\n", "services = fake\nsts_regional_endpoints = legacy\n")
    )
    provider = ass.from_profile("base", mfa_callback=device, clock=clock)
    await provider.prepare()
    assert provider._sts.endpoint_url == fake_sts.url  # the services section
    await provider.close()
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    provider = ass.from_profile("base", mfa_callback=device, clock=clock)
    await provider._sts.get(await provider._root_source.sources.resolve())
    # configured endpoints ignored; sts_regional_endpoints = legacy gives the global endpoint
    assert provider._sts.endpoint_url == "https://sts.amazonaws.com"
    await provider.close()


@pytest.mark.parametrize(
    ("profiles", "name", "match"),
    [
        (STANDARD, "nope", r"'nope' is not in .*Profiles found: admin, base, eight-hours, reader"),
        (
            "[profile x]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = gone\n",
            "x",
            "source_profile 'gone', which is not in",
        ),
        (
            "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = b\n"
            "[profile b]\nrole_arn = arn:aws:iam::123456789012:role/b\nsource_profile = a\n",
            "a",
            r"loops \(a -> b -> a\)",
        ),
        ("[profile empty]\nregion = us-east-1\n", "empty", "neither long-term keys"),
        (
            "[profile ec2]\nrole_arn = arn:aws:iam::123456789012:role/x\n"
            "credential_source = Ec2InstanceMetadata\n",
            "ec2",
            "credential_source, which aio-sts-session does not support",
        ),
        (
            "[profile sso]\nsso_session = corp\n",
            "sso",
            "gets credentials from sso_session",
        ),
        (
            "[profile bad]\nrole_arn = arn:aws:iam::123456789012:user/x\nsource_profile = base\n",
            "bad",
            "role_arn must be a role's ARN",
        ),
        (
            "[profile bad]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = base\n"
            "duration_seconds = 1h\n",
            "bad",
            "'1h' in profile 'bad' is not a whole number",
        ),
        (
            "[profile bad]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = base\n"
            "duration_seconds = 100\n",
            "bad",
            r"Profile 'bad': duration_seconds=100",
        ),
        (
            "[profile half]\nsource_profile = base\n",
            "half",
            "source_profile but no role_arn",
        ),
        (
            "[profile tagged]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = base\n"
            "session_tags = team\n",
            "tagged",
            r"session_tags in profile 'tagged': 'team' is not key=value",
        ),
        (
            "[profile tagged]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = base\n"
            "session_tags = team=a\ntransitive_session_tags = env\n",
            "tagged",
            r"Profile 'tagged': Transitive tag key 'env' .* is not one of its session tags",
        ),
        (
            "[profile tagged]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = base\n"
            "source_identity = a\n",
            "tagged",
            r"Profile 'tagged': source_identity 'a'",
        ),
        (
            "[profile noserial]\nrole_arn = arn:aws:iam::123456789012:role/x\n",
            "noserial",
            "role_arn but no source_profile",
        ),
    ],
)
def test_bad_profiles_fail_in_from_profile(
    aws_files: Any, fake_sts: FakeSts, profiles: str, name: str, match: str
) -> None:
    if "[profile base]" not in profiles:
        profiles += f"[profile base]\nmfa_serial = {SERIAL}\n"
    aws_files(profiles)

    async def never(request: object) -> str:
        raise AssertionError("asked for a code")

    with pytest.raises(ConfigurationError, match=match):
        ass.from_profile(name, mfa_callback=never)
    assert fake_sts.calls == []


def test_mfa_serial_without_a_callback_fails_in_from_profile(aws_files: Any) -> None:
    aws_files(STANDARD)
    with pytest.raises(ConfigurationError, match="no mfa_callback was given"):
        ass.from_profile("admin")


def test_unknown_overrides_and_role_options_on_a_session_profile(
    aws_files: Any, device: Device
) -> None:
    aws_files(STANDARD)
    with pytest.raises(ConfigurationError, match="unknown option"):
        ass.from_profile("base", mfa_callback=device, colour="blue")
    with pytest.raises(ConfigurationError, match="only apply to a role profile"):
        ass.from_profile("base", mfa_callback=device, role_session_name="x")


def test_session_token_provider_from_profile(aws_files: Any, device: Device) -> None:
    aws_files(STANDARD)
    provider = SessionTokenProvider.from_profile("base", mfa_callback=device)
    assert isinstance(provider, SessionTokenProvider)
    with pytest.raises(ConfigurationError, match=r"use aio_sts_session\.from_profile"):
        SessionTokenProvider.from_profile("admin", mfa_callback=device)


async def test_no_default_profile_falls_back_to_the_environment_keys(
    aws_files: Any, fake_sts: FakeSts, clock: FakeClock, monkeypatch: Any
) -> None:
    aws_files("[profile other]\n", creds="")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    provider = ass.from_profile(endpoint_url=fake_sts.url, clock=clock)
    await provider.credentials()
    assert fake_sts.token_calls[0].access_key_id == ACCESS_KEY
    await provider.close()


async def test_mfa_process_in_the_profile_gives_the_code(
    aws_files: Any, fake_sts: FakeSts, clock: FakeClock, tmp_path: Path, monkeypatch: Any
) -> None:
    import sys

    helper = Path(__file__).parent / "cli" / "mfa_command.py"
    aws_files(
        STANDARD.replace(
            "services = fake\n", f"services = fake\nmfa_process = {sys.executable} {helper}\n", 1
        )
    )
    monkeypatch.setenv("FAKE_TOTP_SECRET", fake_sts.devices[SERIAL])
    monkeypatch.setenv("FAKE_NOW", repr(clock()))
    monkeypatch.setenv("FAKE_MFA_LOG", str(tmp_path / "mfa.log"))
    provider = ass.from_profile("admin", clock=clock)  # no mfa_callback: the profile's command
    fake_sts.add_role("admin")
    await provider.credentials()
    assert [c.outcome for c in fake_sts.token_calls] == ["ok"]
    assert len((tmp_path / "mfa.log").read_text().split()) == 1
    await provider.close()


def test_a_resolved_profile_chain_never_shows_the_secret(aws_files: Any) -> None:
    from aio_sts_session._profiles import read_chain

    aws_files(STANDARD)
    chain = read_chain("admin")
    assert chain.keys is not None
    secret = chain.keys["aws_secret_access_key"]
    assert secret
    assert secret not in repr(chain)
    assert secret not in str(chain)


async def test_session_tags_and_source_identity_in_the_profile_reach_sts(
    aws_files: Any, fake_sts: FakeSts, device: Device, clock: FakeClock
) -> None:
    """aws-vault's names: ``session_tags``, ``transitive_session_tags``, ``source_identity``;
    an override for the named profile's role wins over its setting."""
    aws_files(
        STANDARD
        + """
[profile tagged]
role_arn = arn:aws:iam::123456789012:role/admin
source_profile = base
session_tags = team=payments, Cost Center = 42
transitive_session_tags = team
source_identity = alice
"""
    )
    fake_sts.add_role("admin")
    provider = ass.from_profile("tagged", mfa_callback=device, clock=clock)
    await provider.credentials()
    [call] = fake_sts.role_calls
    assert call.options == {
        "tags": {"team": "payments", "Cost Center": "42"},
        "transitive_tag_keys": ["team"],
        "source_identity": "alice",
    }
    await provider.close()
    overridden = ass.from_profile(
        "tagged", mfa_callback=device, clock=clock, source_identity="alice.smith"
    )
    await overridden.credentials()
    assert fake_sts.role_calls[-1].options["source_identity"] == "alice.smith"
    assert len(fake_sts.role_calls) == 2
    await overridden.close()
