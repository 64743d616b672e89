"""A separate process sharing an EncryptedFileCache: used by the cross-process tests and the
cache benchmark. Configured by environment variables; prints one line per event:

    READY                       about to ask the provider for credentials
    PROMPT <attempt>            the MFA callback was asked (then answers with a TOTP code)
    CREDS <key id> <s> <i>      credentials obtained, <s> seconds after the interpreter
                                started, of which <i> importing
    ERROR <class> <message>     the provider raised
    TICK                        (with WORKER_PROBE=1) every 100 ms while waiting for credentials:
                                the event loop is running
    LAG <ms>                    (with WORKER_PROBE=1) the longest the loop was late for a tick
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

START = time.perf_counter()

import aiobotocore.session  # noqa: E402, F401  (an application of the library imports it anyway)
import pyotp  # noqa: E402

from aio_sts_session import (  # noqa: E402
    EncryptedFileCache,
    MfaRequest,
    SessionTokenProvider,
    StsSessionError,
)

IMPORTED = time.perf_counter() - START


async def loop_lag_probe() -> float:
    """Ticks every 20 ms; returns the worst lateness in ms when cancelled."""
    worst, ticks = 0.0, 0
    try:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.02)
            worst = max(worst, (time.perf_counter() - before - 0.02) * 1e3)
            ticks += 1
            if ticks % 5 == 0:
                print("TICK", flush=True)
    except asyncio.CancelledError:
        return worst


async def main() -> int:
    totp = pyotp.TOTP(os.environ["WORKER_TOTP_SECRET"])
    hang = os.environ.get("WORKER_HANG") == "1"

    async def ask(request: MfaRequest) -> str:
        print(f"PROMPT {request.attempt}", flush=True)
        if hang:
            await asyncio.Event().wait()  # a user who never answers
        return totp.now()

    cache = EncryptedFileCache(
        os.environ["WORKER_CACHE_DIR"],
        key=os.environ["WORKER_CACHE_KEY"],
        lock_timeout=float(os.environ.get("WORKER_LOCK_TIMEOUT", "60")),
    )
    async with SessionTokenProvider(
        mfa_serial=os.environ["WORKER_SERIAL"],
        mfa_callback=ask,
        duration_seconds=3600,
        region_name="us-east-1",
        cache=cache,
    ) as provider:
        print("READY", flush=True)
        probe = asyncio.ensure_future(loop_lag_probe()) if os.environ.get("WORKER_PROBE") else None
        try:
            creds = await provider.credentials()
        except StsSessionError as exc:
            print(f"ERROR {type(exc).__name__} {exc}", flush=True)
            return 1
        finally:
            if probe is not None:
                probe.cancel()
                print(f"LAG {await probe:.1f}", flush=True)
    elapsed = time.perf_counter() - START
    print(f"CREDS {creds.access_key_id} {elapsed:.4f} {IMPORTED:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
