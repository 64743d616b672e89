"""moto in server mode as the independent STS: is our GetSessionToken well-formed and signed?"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
from aiobotocore.session import AioSession
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from aio_sts_session import MfaRequest, SessionTokenProvider, SourceCredentialsError

SERIAL = "arn:aws:iam::123456789012:mfa/alice"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _post(url: str, body: bytes = b"") -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/octet-stream"}
    )
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture
async def iam_user(moto_url: str) -> AsyncIterator[tuple[str, str]]:
    """An IAM user with an access key; then moto's SigV4 checking switched on."""
    _post(f"{moto_url}/moto-api/reset")
    session = AioSession()
    async with session.create_client(
        "iam",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="AKIAADMIN",
        aws_secret_access_key="admin",
    ) as iam:
        await iam.create_user(UserName="alice")
        key = (await iam.create_access_key(UserName="alice"))["AccessKey"]
        policy = await iam.create_policy(
            PolicyName="sts",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Action":["sts:GetSessionToken","sts:AssumeRole","sts:GetCallerIdentity"],'
            '"Resource":"*"}]}',
        )
        await iam.attach_user_policy(UserName="alice", PolicyArn=policy["Policy"]["Arn"])
        await iam.create_role(
            RoleName="admin",
            AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},'
            '"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":'
            '"true"}}}]}',
        )
    _post(f"{moto_url}/moto-api/reset-auth", b"0")
    try:
        yield key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        _post(f"{moto_url}/moto-api/reset-auth", b"1000000")
        _post(f"{moto_url}/moto-api/reset")


async def code(request: MfaRequest) -> str:
    return "123456"


def keys_session(access_key: str, secret: str) -> AioSession:
    session = AioSession()
    session.set_credentials(access_key, secret)
    return session


async def test_signed_get_session_token_accepted_by_moto(
    moto_url: str, iam_user: tuple[str, str]
) -> None:
    before = time.time()
    async with SessionTokenProvider(
        mfa_serial=SERIAL,
        mfa_callback=code,
        duration_seconds=1800,
        endpoint_url=moto_url,
        source_session=keys_session(*iam_user),
    ) as provider:
        creds = await provider.credentials()
    assert creds.access_key_id
    assert creds.secret_access_key
    assert creds.session_token
    # moto's SigV4 check is really on here: the same call with a wrong secret is refused
    async with keys_session(iam_user[0], "not-the-secret").create_client(
        "sts", endpoint_url=moto_url, region_name="us-east-1"
    ) as sts:
        with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
            await sts.get_session_token(DurationSeconds=900)
    # moto: Expiration = now + DurationSeconds, so our duration reached it intact
    assert before + 1800 - 5 <= creds.expiration.timestamp() <= time.time() + 1800 + 5


async def test_wrong_secret_is_refused_by_moto_as_source_error(
    moto_url: str, iam_user: tuple[str, str]
) -> None:
    async with SessionTokenProvider(
        mfa_serial=SERIAL,
        mfa_callback=code,
        endpoint_url=moto_url,
        source_session=keys_session(iam_user[0], "not-the-secret"),
    ) as provider:
        with pytest.raises(SourceCredentialsError, match="did not accept") as info:
            await provider.credentials()
    assert "SignatureDoesNotMatch" in str(info.value)


async def test_attached_session_calls_another_service_on_moto(moto_url: str) -> None:
    _post(f"{moto_url}/moto-api/reset")
    async with SessionTokenProvider(
        mfa_serial=SERIAL,
        mfa_callback=code,
        endpoint_url=moto_url,
        source_session=keys_session("AKIAEXAMPLEEXAMPLE01", "secret"),
    ) as provider:
        session = provider.attach(AioSession())
        async with session.create_client(
            "s3", endpoint_url=moto_url, region_name="us-east-1"
        ) as s3:
            await s3.create_bucket(Bucket="demo")
            names = [b["Name"] for b in (await s3.list_buckets())["Buckets"]]
    assert names == ["demo"]
    assert provider.stats.sts_calls == 1


async def test_a_role_chained_on_the_mfa_session_is_accepted_by_moto(
    moto_url: str, iam_user: tuple[str, str]
) -> None:
    """AssumeRole on the MFA session is well-formed for moto, and the attached session's
    clients act as the role. moto hands out the same example keys for every GetSessionToken
    and cannot check signatures made with them, so its SigV4 check is off here; it checks
    neither MFA nor the 1-hour cap either: the strict fake does all three (test_role.py)."""
    _post(f"{moto_url}/moto-api/reset-auth", b"1000000")
    async with SessionTokenProvider(
        mfa_serial=SERIAL,
        mfa_callback=code,
        endpoint_url=moto_url,
        source_session=keys_session(*iam_user),
    ) as provider:
        role = provider.assume_role(
            "arn:aws:iam::123456789012:role/admin", role_session_name="moto-test"
        )
        session = role.attach(AioSession())
        async with session.create_client(
            "sts", endpoint_url=moto_url, region_name="us-east-1"
        ) as sts:
            identity = await sts.get_caller_identity()
        await role.close()
    assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/admin/moto-test"
    assert role.stats.sts_calls == 1
    assert provider.stats.sts_calls == 1
