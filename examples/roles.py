"""Profiles and roles with one MFA code, with no AWS account.

Starts a local STS/IAM (moto, on 127.0.0.1) with an IAM user, a virtual MFA device and three
roles, writes a ``~/.aws/config`` for them in a temporary directory, then:

1. ``from_profile("admin")``: a role profile, assumed on the MFA session of its source
   profile (one prompt);
2. ``from_profile("reader")``: another role profile, sharing the encrypted cache: no prompt;
3. five roles on one session provider: one prompt for all five;
4. an 8-hour role (longer than AWS's 1-hour cap for role chaining): assumed directly with the
   long-term keys and a code.

Run it with:

    python examples/roles.py

moto accepts these calls without checking MFA or the 1-hour cap; the test suite runs the same
flows against a strict fake STS that checks both.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path

import pyotp
from aiobotocore.session import AioSession
from moto.server import ThreadedMotoServer
from quickstart import create_iam_user  # the same local IAM user as the quick start

import aio_sts_session as ass
from aio_sts_session import EncryptedFileCache, MfaRequest

TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole",'
    '"Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}'
)


async def create_user_and_roles(endpoint: str) -> tuple[str, str, str, pyotp.TOTP]:
    """The quick start's IAM user (keys and a virtual MFA device), and roles it may assume
    with MFA, for up to 12 hours."""
    user = await create_iam_user(endpoint)
    async with AioSession().create_client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAADMINEXAMPLE0000",
        aws_secret_access_key="admin-secret",
    ) as iam:
        for name in ("admin", "reader", "deploy", "audit", "billing", "network"):
            await iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=TRUST, MaxSessionDuration=43200
            )
    return user


def write_aws_files(home: Path, endpoint: str, access_key: str, secret: str, serial: str) -> None:
    """The user's own files: long-term keys in credentials, profiles in config."""
    (home / "credentials").write_text(
        f"[alice]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret}\n"
    )
    (home / "config").write_text(
        f"""[profile alice]
mfa_serial = {serial}
region = us-east-1
services = local

[profile admin]
role_arn = arn:aws:iam::123456789012:role/admin
source_profile = alice

[profile reader]
role_arn = arn:aws:iam::123456789012:role/reader
source_profile = alice
duration_seconds = 1800

[services local]
sts =
  endpoint_url = {endpoint}
"""
    )
    os.environ["AWS_CONFIG_FILE"] = str(home / "config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(home / "credentials")


async def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    print(f"local STS/IAM (moto) listening on {endpoint}")
    sent: list[str] = []
    try:
        access_key, secret, serial, totp = await create_user_and_roles(endpoint)

        async def ask(request: MfaRequest) -> str:
            # The virtual device answers; a code is never typed twice.
            now = time.time()
            code = next(c for c in (totp.at(now + 30 * k) for k in (0, 1, -1)) if c not in sent)
            sent.append(code)
            target = f"role {request.role_arn}" if request.role_arn else "the MFA session"
            print(f"  MFA prompt for {target} -> {code}")
            return code

        with tempfile.TemporaryDirectory() as home:
            write_aws_files(Path(home), endpoint, access_key, secret, serial)
            key = EncryptedFileCache.generate_key()

            print("\n1. from_profile('admin'): a role on the MFA session of profile 'alice'")
            cache = EncryptedFileCache(Path(home) / "cache", key=key)
            async with ass.from_profile("admin", mfa_callback=ask, cache=cache) as admin:
                session = admin.attach(AioSession())
                async with session.create_client(
                    "sts", endpoint_url=endpoint, region_name="us-east-1"
                ) as sts:
                    arn = (await sts.get_caller_identity())["Arn"]
                print(f"  the attached session's clients act as {arn}")

            print("\n2. from_profile('reader'), another process sharing the encrypted cache")
            cache = EncryptedFileCache(Path(home) / "cache", key=key)
            async with ass.from_profile("reader", mfa_callback=ask, cache=cache) as reader:
                creds = await reader.credentials()
                print(f"  {creds} (the MFA session came from the cache: no prompt)")

            print("\n3. five roles on one session provider")
            async with ass.SessionTokenProvider.from_profile("alice", mfa_callback=ask) as mfa:
                names = ("deploy", "audit", "billing", "network", "admin")
                roles = [mfa.assume_role(f"arn:aws:iam::123456789012:role/{n}") for n in names]
                await asyncio.gather(*(role.credentials() for role in roles))
                print(f"  5 roles, {mfa.stats.prompts} prompt for all of them")
                for role in roles:
                    await role.close()

                print("\n4. an 8-hour role: longer than the 1-hour chaining cap, so direct")
                async with mfa.assume_role(
                    "arn:aws:iam::123456789012:role/admin", duration_seconds=8 * 3600
                ) as long_role:
                    creds = await long_role.credentials()
                    hours = (creds.expiration.timestamp() - time.time()) / 3600
                    print(f"  valid {hours:.1f} h; {long_role.stats.prompts} prompt of its own")

        print(f"\nwhat happened: {len(sent)} codes typed for 4 steps and 8 role sessions")
        assert len(sent) == len(set(sent)) == 3  # steps 1, 3 and 4; step 2 reused step 1's
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
