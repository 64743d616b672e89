"""The new AWS SDK for Python (smithy-python) with an MFA session: real ``AsyncDynamoDBClient``
calls against moto's DynamoDB on 127.0.0.1, with moto's STS (counting calls: its access key id
is the same every time) or the strict fake STS on a clock moved by hand (the windows).

These run where the SDK is installed: CI's Python 3.13 job (``.[dev,aws-sdk]`` and
``aws-sdk-dynamodb``); elsewhere only the import message is checked."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from aio_sts_session import MfaError, MfaRequest, SessionTokenProvider
from aio_sts_session.testing import FakeSts, ManualClock

NEW_PYTHON = sys.version_info >= (3, 12)
SDK = NEW_PYTHON and all(
    importlib.util.find_spec(name) for name in ("smithy_aws_core", "aws_sdk_dynamodb")
)
needs_sdk = pytest.mark.skipif(
    not SDK, reason="the new AWS SDK: Python 3.12+, .[aws-sdk] and aws-sdk-dynamodb (CI job 3)"
)

SERIAL = "arn:aws:iam::123456789012:mfa/alice"


@pytest.fixture(scope="module")
def moto_url() -> Any:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Asker:
    """An MFA callback that counts the people it asked."""

    def __init__(self, code: Callable[[], str] = lambda: "123456") -> None:
        self.code = code
        self.asked: list[MfaRequest] = []

    async def __call__(self, request: MfaRequest) -> str:
        self.asked.append(request)
        return self.code()


def moto_provider(url: str, ask: Any, **options: Any) -> SessionTokenProvider:
    from aiobotocore.session import AioSession

    source = AioSession()
    source.set_credentials("AKIAEXAMPLESDK000001", "secret")
    return SessionTokenProvider(
        mfa_serial=SERIAL,
        mfa_callback=ask,
        endpoint_url=url,
        region_name="us-east-1",
        source_session=source,
        **options,
    )


async def dynamodb(url: str, resolver: Any) -> Any:
    from aws_sdk_dynamodb.client import AsyncDynamoDBClient
    from aws_sdk_dynamodb.config import AsyncDynamoDBConfig

    config = await AsyncDynamoDBConfig.resolve(
        region="us-east-1", endpoint_uri=url, aws_credentials_identity_resolver=resolver
    )
    return AsyncDynamoDBClient(config=config)


def sts_calls(provider: SessionTokenProvider) -> int:
    return provider.stats.sts_calls


@needs_sdk
async def test_several_calls_cost_one_prompt_and_one_sts_call(moto_url: str) -> None:
    from aws_sdk_dynamodb.models import ListTablesInput

    from aio_sts_session.aws_sdk import IdentityResolver

    ask = Asker()
    async with moto_provider(moto_url, ask) as provider:
        resolver = IdentityResolver(provider)
        async with await dynamodb(moto_url, resolver) as client:
            for _ in range(5):
                await client.list_tables(ListTablesInput())
        first = await resolver.get_identity(properties={})
        assert await resolver.get_identity(properties={}) is first  # the same object
        assert first.session_token  # session credentials, not the long-term keys
        assert first.account_id == "123456789012"
        assert len(ask.asked) == 1
        assert sts_calls(provider) == 1


@needs_sdk
async def test_concurrent_tasks_on_a_cold_provider_ask_once(moto_url: str) -> None:
    from aws_sdk_dynamodb.models import ListTablesInput

    from aio_sts_session.aws_sdk import IdentityResolver

    ask = Asker()
    async with moto_provider(moto_url, ask) as provider:
        async with await dynamodb(moto_url, IdentityResolver(provider)) as client:
            await asyncio.gather(*(client.list_tables(ListTablesInput()) for _ in range(30)))
        assert len(ask.asked) == 1
        assert sts_calls(provider) == 1


@needs_sdk
async def test_invalidate_is_one_forced_refresh_for_every_caller(moto_url: str) -> None:
    from aio_sts_session.aws_sdk import IdentityResolver

    ask = Asker()
    async with moto_provider(moto_url, ask) as provider:
        resolvers = [IdentityResolver(provider) for _ in range(3)]  # clients of one provider
        before = await resolvers[0].get_identity(properties={})
        for resolver in resolvers:
            await resolver.get_identity(properties={})
            await resolver.invalidate()  # each saw ExpiredToken
        after = await asyncio.gather(
            *(r.get_identity(properties={}) for r in resolvers for _ in range(10))
        )
        assert sts_calls(provider) == 2  # one forced refresh, whoever asked
        assert len(ask.asked) == 2
        assert all(a.expiration != before.expiration or a is not before for a in after)


@needs_sdk
async def test_an_mfa_callback_error_reaches_the_caller_as_the_librarys(moto_url: str) -> None:
    """Never as the SDK's SmithyIdentityError: a chain would then fall through to the
    profile's long-term keys, without MFA."""
    from aws_sdk_dynamodb.models import ListTablesInput

    from aio_sts_session.aws_sdk import IdentityResolver

    async def broken(request: MfaRequest) -> str:
        raise RuntimeError("the phone is off")

    from smithy_core.exceptions import SmithyIdentityError

    async with (
        moto_provider(moto_url, broken) as provider,
        await dynamodb(moto_url, IdentityResolver(provider)) as client,
    ):
        with pytest.raises(MfaError, match="The MFA callback raised RuntimeError") as info:
            await client.list_tables(ListTablesInput())
    assert type(info.value).__name__ == "MfaError"  # not wrapped in the SDK's error
    assert not isinstance(info.value, SmithyIdentityError)
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.fixture
async def fake_and_clock() -> AsyncIterator[tuple[FakeSts, ManualClock]]:
    clock = ManualClock()
    async with FakeSts(clock=clock) as sts:
        yield sts, clock


@needs_sdk
async def test_the_prefetch_and_stale_windows_on_a_controlled_clock(
    moto_url: str, fake_and_clock: tuple[FakeSts, ManualClock]
) -> None:
    """STS (the strict fake) follows the clock the test moves; DynamoDB is moto's."""
    from aws_sdk_dynamodb.models import ListTablesInput

    from aio_sts_session.aws_sdk import IdentityResolver

    sts, clock = fake_and_clock
    ask = Asker(sts.code)
    provider = SessionTokenProvider(
        mfa_serial=sts.mfa_serial,
        mfa_callback=ask,
        endpoint_url=sts.url,
        region_name="us-east-1",
        source_session=sts.source_session(),
        duration_seconds=3600,
        clock=clock,
    )
    async with provider, await dynamodb(moto_url, IdentityResolver(provider)) as client:
        await client.list_tables(ListTablesInput())
        first = provider.token()
        assert first is not None
        clock.advance(3600 - 200)  # the prefetch window: served at once, renewed behind
        served = await client._config.aws_credentials_identity_resolver.get_identity(  # type: ignore[union-attr]
            properties={}
        )
        assert served.access_key_id == first.credentials.access_key_id  # no wait for STS
        await client.list_tables(ListTablesInput())
        await provider.settle()
        assert provider.token() is not first
        clock.advance(3600 - 30)  # the stale window: the next call waits for the renewal
        second = provider.token()
        await client.list_tables(ListTablesInput())
        assert provider.token() is not second
        assert len(sts.calls["GetSessionToken"]) == 3
        assert len(ask.asked) == 3


@pytest.mark.skipif(not NEW_PYTHON, reason="Python 3.12+: before it, the version is the message")
def test_without_the_sdk_the_import_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['smithy_aws_core'] = None\n"
        "try:\n    import aio_sts_session.aws_sdk\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'aio-sts-session[aws-sdk]'" in out.stdout


@pytest.mark.skipif(NEW_PYTHON, reason="before Python 3.12 only")
def test_importing_it_before_python_3_12_says_what_is_needed() -> None:
    with pytest.raises(ImportError, match=r"Python 3\.12 or newer .*aio-sts-session\[aws-sdk\]"):
        import aio_sts_session.aws_sdk  # noqa: F401


# -- the SDK's default chain, opt-in per profile -------------------------------------------------


@pytest.fixture
def profiles(moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two profiles with the same keys and MFA device: ``work`` opts in (its codes come from
    an ``mfa_process`` that logs each time it is run, to the file returned), ``plain`` does
    not."""
    from aio_sts_session.integrations import aws_sdk

    code = tmp_path / "code.sh"
    log = tmp_path / "asked"
    code.write_text(f"#!/bin/sh\necho x >> {log}\necho 123456\n")
    code.chmod(0o755)
    config = tmp_path / "config"
    config.write_text(
        f"[profile work]\nmfa_serial = {SERIAL}\naio_sts_session = true\nmfa_process = {code}\n"
        f"region = us-east-1\nservices = local\n\n"
        f"[profile plain]\nmfa_serial = {SERIAL}\nregion = us-east-1\n\n"
        f"[services local]\nsts =\n  endpoint_url = {moto_url}\n"
    )
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "".join(
            f"[{name}]\naws_access_key_id = AKIAEXAMPLESDK000001\naws_secret_access_key = s\n"
            for name in ("work", "plain")
        )
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AIO_STS_SESSION_CACHE_KEY", "vWB2J0oFm7l7yEJq3P5HuJMDs-1cXJkG4j2W6aPZ7mA=")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(aws_sdk, "_PROVIDERS", {})
    return log


async def identity_for(profile: str, url: str, calls: int = 1) -> Any:
    """What a DynamoDB client made with ``profile=`` alone signs with, after ``calls`` calls."""
    from aws_sdk_dynamodb.client import AsyncDynamoDBClient
    from aws_sdk_dynamodb.config import AsyncDynamoDBConfig
    from aws_sdk_dynamodb.models import ListTablesInput

    resolved = await AsyncDynamoDBConfig.resolve(
        profile=profile, region="us-east-1", endpoint_uri=url
    )
    async with AsyncDynamoDBClient(config=resolved) as client:
        for _ in range(calls):
            await client.list_tables(ListTablesInput())
        resolver = client._config.aws_credentials_identity_resolver
        return await resolver.get_identity(properties={})  # type: ignore[union-attr]


@needs_sdk
async def test_a_profile_that_opts_in_gets_an_mfa_session_with_its_name_alone(
    moto_url: str, profiles: Path
) -> None:
    """``profile="work"`` alone: the SDK's default chain signs with the profile's long-term
    keys and ignores mfa_serial; with ``aio_sts_session = true`` it gets the MFA session. A
    profile without it keeps the SDK's own behaviour."""
    from aio_sts_session.integrations import aws_sdk

    work = await identity_for("work", moto_url, calls=3)
    again = await identity_for("work", moto_url, calls=2)  # another client, the same provider
    plain = await identity_for("plain", moto_url, calls=2)
    assert work.session_token  # an MFA session
    assert again.session_token == work.session_token
    assert plain.session_token is None  # the SDK's own: the long-term keys
    assert profiles.read_text().count("x") == 1  # one code, for every call of the work profile
    for resolver in aws_sdk._PROVIDERS.values():
        await resolver.provider.close()


@needs_sdk
async def test_a_link_that_cannot_load_breaks_no_program_and_refuses_an_opted_in_profile(
    moto_url: str, profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry point is loaded by every program using the SDK's default chain. With a smithy
    this version cannot work with (here: its module fails to import), programs using other
    profiles run as before; a profile that opted in is refused with what to do, never served
    the long-term keys without MFA."""
    from aio_sts_session import ConfigurationError
    from aio_sts_session.integrations.aws_sdk_chain import Unavailable, chain_provider

    monkeypatch.setitem(sys.modules, "aio_sts_session.integrations.aws_sdk", None)
    assert isinstance(chain_provider(), Unavailable)
    plain = await identity_for("plain", moto_url)
    assert plain.access_key_id == "AKIAEXAMPLESDK000001"
    with pytest.raises(ConfigurationError, match=r"aio-sts-session\[aws-sdk\]"):
        await identity_for("work", moto_url)
    assert not profiles.exists()  # nobody was asked for a code
