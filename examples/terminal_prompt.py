"""Ask for the MFA code in the terminal without blocking the event loop (needs a real AWS
account: an IAM user's long-term keys in the environment or ~/.aws, and an MFA device).

    python examples/terminal_prompt.py arn:aws:iam::123456789012:mfa/alice

While you type, the loop keeps running: the ticker below goes on printing.
"""

from __future__ import annotations

import asyncio
import getpass
import sys

from aiobotocore.session import AioSession

from aio_sts_session import MfaRequest, SessionTokenProvider


async def ask_in_terminal(request: MfaRequest) -> str:
    hint = "" if request.reason == "initial" else f" ({request.reason}, try {request.attempt})"
    prompt = f"MFA code for {request.serial_number}{hint}: "
    # getpass blocks; run it in a worker thread so the loop stays responsive.
    return await asyncio.to_thread(getpass.getpass, prompt)


async def ticker() -> None:
    while True:
        await asyncio.sleep(5)
        print("  (event loop still running)", file=sys.stderr)


async def main(serial: str) -> None:
    tick = asyncio.create_task(ticker())
    try:
        async with SessionTokenProvider(
            mfa_serial=serial, mfa_callback=ask_in_terminal, mfa_timeout=120
        ) as provider:
            session = provider.attach(AioSession())
            async with session.create_client("sts") as sts:
                identity = await sts.get_caller_identity()
            expiration = (await provider.credentials()).expiration
            print(f"signed in as {identity['Arn']}; session credentials until {expiration:%c} UTC")
    finally:
        tick.cancel()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
