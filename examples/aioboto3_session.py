"""Using the provider with aioboto3 (which pins aiobotocore 2.25.x): attach to the
``aioboto3.Session`` and every client and resource it creates uses the session credentials.
Needs an AWS account (an IAM user's long-term keys and an MFA device):

    pip install aioboto3
    python examples/aioboto3_session.py arn:aws:iam::123456789012:mfa/alice
"""

from __future__ import annotations

import asyncio
import sys

import aioboto3

from aio_sts_session import MfaRequest, SessionTokenProvider


def ask(request: MfaRequest) -> str:
    # A plain function is fine too: the provider runs it in a worker thread.
    return input(f"MFA code for {request.serial_number}: ")


async def main(serial: str) -> None:
    session = aioboto3.Session()  # long-term keys from the environment or ~/.aws
    async with SessionTokenProvider(mfa_serial=serial, mfa_callback=ask) as provider:
        provider.attach(session)
        async with session.resource("s3") as s3:
            async for bucket in s3.buckets.all():
                print(bucket.name)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
