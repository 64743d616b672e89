"""The new AWS SDK for Python: what its per-attempt ``get_identity`` costs with this library.

    python benchmarks/bench_aws_sdk.py            # the figures in the docs (Python 3.12+, with
                                                  # .[aws-sdk]; elsewhere it says so and exits)
    python benchmarks/bench_aws_sdk.py --quick    # one small round (CI smoke run)

The SDK asks its identity resolver before every attempt of every call and caches nothing.
Targets (issue 22: "costs about what ``credentials()`` costs"): ``IdentityResolver.get_identity``
on fresh credentials <= 2x ``await provider.credentials()`` (the SDK's keyword-argument call
and one more method call: tens of nanoseconds), and <= 3x the SDK's own
``StaticCredentialsResolver`` (fixed keys that never refresh).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

QUICK = "--quick" in sys.argv
JSON = "--json" in sys.argv


async def main() -> None:
    from bench_provider import ROWS, compare, report
    from smithy_aws_core.identity import AWSCredentialsIdentity
    from smithy_aws_core.identity.static import StaticCredentialsResolver

    from aio_sts_session import MfaRequest, SessionTokenProvider
    from aio_sts_session.aws_sdk import IdentityResolver
    from aio_sts_session.testing import FakeSts

    out = sys.stderr if JSON else sys.stdout
    async with FakeSts() as sts:

        async def code(request: MfaRequest) -> str:
            return sts.code()

        async with SessionTokenProvider(
            mfa_serial=sts.mfa_serial,
            mfa_callback=code,
            endpoint_url=sts.url,
            region_name="us-east-1",
            source_session=sts.source_session(),
        ) as provider:
            creds = await provider.credentials()
            resolver = IdentityResolver(provider)
            static = StaticCredentialsResolver(
                AWSCredentialsIdentity(
                    access_key_id=creds.access_key_id,
                    secret_access_key=creds.secret_access_key,
                    session_token=creds.session_token,
                )
            )
            print(f"python {sys.version.split()[0]}", file=out)

            # Each as its caller writes it: the SDK's `await resolver.get_identity(
            # properties=...)` before each attempt, a program's `await provider.credentials()`.
            properties: dict[str, object] = {}

            async def ours(n: int) -> None:
                for _ in range(n):
                    await resolver.get_identity(properties=properties)

            async def sdk_static(n: int) -> None:
                for _ in range(n):
                    await static.get_identity(properties=properties)

            async def provider_credentials(n: int) -> None:
                for _ in range(n):
                    await provider.credentials()

            value, baseline, ratios = await compare(ours, provider_credentials)
            report(
                "get_identity",
                "aws_sdk: get_identity vs await provider.credentials()",
                value,
                baseline,
                "<= 2x",
                spread=ratios,
            )
            value, baseline, ratios = await compare(ours, sdk_static)
            report(
                "vs_static",
                "aws_sdk: get_identity vs the SDK's static resolver",
                value,
                baseline,
                "<= 3x",
                spread=ratios,
            )
    if JSON:
        print(json.dumps({"benchmark": "aws_sdk", "python": sys.version.split()[0], "rows": ROWS}))


if __name__ == "__main__":
    if sys.version_info < (3, 12) or importlib.util.find_spec("smithy_aws_core") is None:
        print(
            "bench_aws_sdk: skipped (the new AWS SDK needs Python 3.12+ and "
            "pip install -e '.[aws-sdk]')"
        )
        sys.exit(0)
    asyncio.run(main())
