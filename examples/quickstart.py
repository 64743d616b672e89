"""aio-sts-session in two minutes, with no AWS account.

Starts a local STS (moto, on 127.0.0.1), creates an IAM user and a virtual MFA device in it,
then: fetches session credentials (one MFA prompt), shows the cache hit, attaches the provider
to an aiobotocore session and makes a real S3 call with it, forces a refresh, restarts with an
encrypted on-disk cache (no prompt), and prints what happened. Run it with:

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from typing import Any

import pyotp
from aiobotocore.session import AioSession
from moto.server import ThreadedMotoServer

from aio_sts_session import EncryptedFileCache, MfaRequest, SessionTokenProvider


async def create_iam_user(endpoint: str) -> tuple[str, str, str, pyotp.TOTP]:
    """An IAM user with long-term keys and a virtual MFA device, in the local STS/IAM."""
    admin = AioSession()
    async with admin.create_client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAADMINEXAMPLE0000",
        aws_secret_access_key="admin-secret",
    ) as iam:
        await iam.create_user(UserName="alice")
        key = (await iam.create_access_key(UserName="alice"))["AccessKey"]
        device = (await iam.create_virtual_mfa_device(VirtualMFADeviceName="alice"))[
            "VirtualMFADevice"
        ]
        totp = pyotp.TOTP(device["Base32StringSeed"].decode())
        await iam.enable_mfa_device(
            UserName="alice",
            SerialNumber=device["SerialNumber"],
            AuthenticationCode1=totp.now(),
            AuthenticationCode2=totp.at(time.time() + 30),
        )
    return key["AccessKeyId"], key["SecretAccessKey"], device["SerialNumber"], totp


async def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    print(f"local STS (moto) listening on {endpoint}")
    try:
        access_key, secret_key, serial, totp = await create_iam_user(endpoint)
        # The provider finds long-term keys like botocore does: here, the environment.
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = (
            access_key,
            secret_key,
        )
        print(f"IAM user alice: access key {access_key}, MFA device {serial}")

        sent: list[str] = []  # every code typed, to show none is used twice

        async def ask_for_code(request: MfaRequest) -> str:
            # A real app awaits its UI here; the virtual device answers for the demo. STS
            # refuses a code it has accepted before, and accepts the codes of the neighbouring
            # 30-second windows: so the demo types one it has not used yet, as a person who
            # waits for the next code would.
            now = time.time()
            code = next(c for c in (totp.at(now + 30 * k) for k in (0, 1, -1)) if c not in sent)
            sent.append(code)
            print(f"  MFA prompt (attempt {request.attempt}) for {request.serial_number} -> {code}")
            return code

        async with SessionTokenProvider(
            mfa_serial=serial,
            mfa_callback=ask_for_code,
            duration_seconds=3600,
            endpoint_url=endpoint,
        ) as provider:
            print("\n1. first credentials (asks for one code):")
            creds = await provider.credentials()
            print(f"  {creds}")

            print("\n2. cache hit (no prompt, no STS call):")
            start = time.perf_counter()
            for _ in range(10_000):
                assert await provider.credentials() is creds
            per_call = (time.perf_counter() - start) / 10_000 * 1e6
            print(f"  10,000 calls, {per_call:.2f} us each")

            print("\n3. attach to an aiobotocore session and call S3 with it:")
            session = provider.attach(AioSession())
            async with session.create_client(
                "s3", endpoint_url=endpoint, region_name="us-east-1"
            ) as s3:
                await s3.create_bucket(Bucket="quickstart")
                buckets = [b["Name"] for b in (await s3.list_buckets())["Buckets"]]
            print(f"  buckets: {buckets} (signed with {creds.access_key_id}, the session key)")

            print("\n4. force a refresh (asks for one more code):")
            creds = await provider.refresh()
            print(f"  {creds}")

            print("\n5. an encrypted on-disk cache shared by processes (no prompt on restart):")
            with tempfile.TemporaryDirectory() as directory:
                key = EncryptedFileCache.generate_key()  # keep yours in a secret store
                options: dict[str, Any] = {
                    "mfa_serial": serial,
                    "mfa_callback": ask_for_code,
                    "duration_seconds": 3600,
                    "endpoint_url": endpoint,
                }
                async with SessionTokenProvider(
                    cache=EncryptedFileCache(directory, key=key), **options
                ) as first_process:
                    await first_process.credentials()
                    print(
                        f"  first process: {first_process.stats.prompts} prompt, "
                        f"{first_process.stats.sts_calls} GetSessionToken call"
                    )
                async with SessionTokenProvider(
                    cache=EncryptedFileCache(directory, key=key), **options
                ) as second_process:
                    await second_process.credentials()
                    print(
                        f"  restarted process: {second_process.stats.prompts} prompts, "
                        f"{second_process.stats.sts_calls} GetSessionToken calls, "
                        f"{second_process.stats.cache_loads} cache load"
                    )

            stats = provider.stats
            print(
                f"\nwhat happened: the main provider asked {stats.prompts} codes and made "
                f"{stats.sts_calls} GetSessionToken calls; the two processes of step 5 asked "
                f"{first_process.stats.prompts + second_process.stats.prompts}: "
                f"{len(sent)} codes typed in all, each sent once"
            )
            assert (stats.prompts, stats.sts_calls) == (2, 2)
            total = stats.prompts + first_process.stats.prompts + second_process.stats.prompts
            assert len(sent) == len(set(sent)) == total == 3
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
