"""Encrypted cache benchmarks (issue 3): all figures measured in this run.

    python benchmarks/bench_cache.py

- the warm-cache load itself (read + decrypt one entry): target under 2 ms;
- a process's cold start to its first credentials with a warm cache (no STS call) vs with an
  empty cache and a 0 ms STS (a GetCallerIdentity key check, one prompt, one GetSessionToken).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402

from aio_sts_session import CachedToken, EncryptedFileCache, SessionCredentials  # noqa: E402
from aio_sts_session.testing import FakeSts  # noqa: E402

SERIAL = "arn:aws:iam::123456789012:mfa/bench"
KEY, SECRET = "AKIABENCHMARK0000001", "bench-secret"
RUNS = 1 if "--quick" in sys.argv else 7
JSON = "--json" in sys.argv
OUT = sys.stderr if JSON else sys.stdout  # with --json, stdout is the JSON alone


async def load_cost(directory: Path) -> tuple[float, float, float]:
    """Median seconds of one warm ``load`` (async, thread hop included), of the read+decrypt
    itself (the synchronous part), and of the same-run baseline: botocore's own
    ``JSONFileCache`` (what the AWS CLI uses for assumed-role credentials) reading the same
    credentials, unencrypted."""
    import datetime as dt

    from botocore.utils import JSONFileCache

    cache = EncryptedFileCache(directory, key=EncryptedFileCache.generate_key())
    expires = time.time() + 3600
    token = CachedToken(
        SessionCredentials(
            "ASIABENCH", "s" * 40, "t" * 400, dt.datetime.fromtimestamp(expires, dt.timezone.utc)
        ),
        expires_at=expires,
        lifetime=3600,
    )
    await cache.store("bench-key", token)
    botocore_cache = JSONFileCache(str(directory / "botocore"))
    botocore_cache["bench-key"] = {
        "Credentials": {
            "AccessKeyId": "ASIABENCH",
            "SecretAccessKey": "s" * 40,
            "SessionToken": "t" * 400,
            "Expiration": token.credentials.expiration.isoformat(),
        }
    }
    full, sync, baseline = [], [], []
    for _ in range(1000):
        start = time.perf_counter()
        assert botocore_cache["bench-key"]["Credentials"]
        baseline.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert await cache.load("bench-key") is not None
        full.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert cache._read_sync("bench-key") is not None
        sync.append(time.perf_counter() - start)
    return statistics.median(full), statistics.median(sync), statistics.median(baseline)


def run_worker(env: dict[str, str]) -> tuple[float, float, float, str]:
    """(seconds from spawn to exit, from interpreter start to credentials, of which spent
    importing, output)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "cache_worker.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    wall = time.perf_counter() - start
    creds = next(line for line in out.splitlines() if line.startswith("CREDS")).split()
    return wall, float(creds[2]), float(creds[3]), out


def say(*parts: object) -> None:
    print(*parts, file=OUT)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        full, sync, baseline = asyncio.run(load_cost(Path(tmp) / "load"))
        say(
            f"warm-cache load (median of 1,000): read + decrypt {sync * 1e3:.3f} ms; "
            f"await cache.load() {full * 1e3:.3f} ms (target < 2 ms); baseline botocore "
            f"JSONFileCache read {baseline * 1e3:.3f} ms: ratio {sync / baseline:.2f}"
        )

        fake = FakeSts(time.time, users={KEY: SECRET}, devices={SERIAL: pyotp.random_base32()})
        fake.single_use_codes = False
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result()
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_ENDPOINT_URL_STS": fake.url,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "WORKER_TOTP_SECRET": fake.devices[SERIAL],
            "WORKER_SERIAL": SERIAL,
            "WORKER_CACHE_KEY": EncryptedFileCache.generate_key(),
        }
        empty_wall, empty_in, warm_wall, warm_in, imports = [], [], [], [], []
        for i in range(RUNS):
            env = base | {"WORKER_CACHE_DIR": str(Path(tmp) / f"empty-{i}")}
            calls = len(fake.token_calls)
            wall, inside, imported, out = run_worker(env)  # empty cache: prompt + STS
            assert "PROMPT" in out
            assert len(fake.token_calls) == calls + 1
            empty_wall.append(wall)
            empty_in.append(inside)
            wall, inside, imported, out = run_worker(env)  # the same cache, warm: no STS call
            assert "PROMPT" not in out
            assert len(fake.token_calls) == calls + 1
            warm_wall.append(wall)
            warm_in.append(inside)
            imports.append(imported)
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    if JSON:
        print(
            json.dumps(
                {
                    "benchmark": "cache",
                    "python": sys.version.split()[0],
                    "load_ms": sync * 1e3,
                    "load_async_ms": full * 1e3,
                    "load_baseline_ms": baseline * 1e3,
                    "runs": RUNS,
                    "warm_start_ms": statistics.median(warm_in) * 1e3,
                    "warm_start_range_ms": [min(warm_in) * 1e3, max(warm_in) * 1e3],
                    "empty_start_ms": statistics.median(empty_in) * 1e3,
                    "empty_start_range_ms": [min(empty_in) * 1e3, max(empty_in) * 1e3],
                    "imports_ms": statistics.median(imports) * 1e3,
                }
            )
        )

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:7.1f} ms"

    say(
        f"cold start, warm cache  : spawn->exit {ms(warm_wall)}, "
        f"interpreter start->credentials {ms(warm_in)}  (no STS call)"
    )
    say(
        f"cold start, empty cache : spawn->exit {ms(empty_wall)}, "
        f"interpreter start->credentials {ms(empty_in)}  (0 ms STS, 1 prompt)"
    )
    say(f"  (of which importing aio_sts_session, aiobotocore, cryptography: {ms(imports)})")
    say(
        f"after imports           : warm "
        f"{(statistics.median(warm_in) - statistics.median(imports)) * 1e3:.1f} ms, empty "
        f"{(statistics.median(empty_in) - statistics.median(imports)) * 1e3:.1f} ms"
    )
    say(
        f"ratio warm/empty        : spawn->exit "
        f"{statistics.median(warm_wall) / statistics.median(empty_wall):.2f}, "
        f"start->credentials {statistics.median(warm_in) / statistics.median(empty_in):.2f}"
    )


if __name__ == "__main__":
    main()
