"""Provider benchmarks: every figure is a ratio against a baseline measured in the same run.

    python benchmarks/bench_provider.py            # the figures in the README
    python benchmarks/bench_provider.py --quick    # one small round of each (CI smoke run)

Targets (issue 2): cache hit <= 3x a bare ``await``; the signer's per-request call <= 0.2x
aiobotocore's ``AioRefreshableCredentials``; 10,000 concurrent first callers with a 50 ms STS:
one STS call, wall time <= 1.2x (10,000 tasks on fresh credentials + 50 ms); prefetch window
with a 200 ms STS: the slowest of 10,000 callers waits no longer than on fresh credentials.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyotp
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import AioSession

from aio_sts_session import MfaRequest, SessionTokenProvider
from aio_sts_session.testing import FakeSts

QUICK = "--quick" in sys.argv
JSON = "--json" in sys.argv
OUT = sys.stderr if JSON else sys.stdout  # with --json, stdout is the JSON alone
ROWS: list[dict[str, object]] = []
SERIAL = "arn:aws:iam::123456789012:mfa/bench"
KEY, SECRET = "AKIABENCHMARK0000001", "bench-secret"


def quiet_gc() -> None:
    """Collect, then freeze what survives: the next timed run is not charged for a full
    collection of botocore's loaded models (which otherwise lands on a random run)."""
    gc.collect()
    gc.freeze()


def report(
    key: str,
    name: str,
    value: float,
    baseline: float,
    target: str,
    unit: str = "us",
    spread: list[float] | None = None,
    **extra: object,
) -> None:
    """One figure: ``value`` against ``baseline`` measured in the same run; ``spread`` the
    range of the round-by-round ratios; ``extra`` what else the row counted (STS calls, …).
    ``key`` names it for the docs (docs/figures.py)."""
    scale = 1e6 if unit == "us" else 1e3
    ratio = value / baseline
    lo, hi = (min(spread), max(spread)) if spread else (ratio, ratio)
    ROWS.append(
        {
            "key": key,
            "name": name,
            "value": value * scale,
            "baseline": baseline * scale,
            "unit": unit,
            "ratio": ratio,
            "spread": [lo, hi],
            "target": target,
            **extra,
        }
    )
    counted = "".join(f", {k.replace('_', ' ')}: {v}" for k, v in extra.items())
    print(
        f"{name:<58} {value * scale:10.3f} {unit}  baseline {baseline * scale:10.3f} {unit}  "
        f"ratio {ratio:6.3f} (rounds {lo:.2f}-{hi:.2f}{counted})  (target {target})",
        file=OUT,
    )


Loop = Callable[[int], Awaitable[None]]


def calling(fn: Callable[[], Awaitable[Any]]) -> Loop:
    """A loop of ``n`` awaited calls of ``fn``."""

    async def loop(n: int) -> None:
        for _ in range(n):
            await fn()

    return loop


async def compare(
    loop: Loop, baseline: Loop, n: int = 200_000, rounds: int = 7
) -> tuple[float, float, list[float]]:
    """Seconds per call of ``loop`` and of ``baseline``, each the best of ``rounds``, the
    rounds interleaved (drift on the machine hits both alike); and each round's ratio."""
    if QUICK:
        n, rounds = 2_000, 1
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        for fn, into in ((loop, ours), (baseline, theirs)):
            quiet_gc()
            start = time.perf_counter()
            await fn(n)
            into.append((time.perf_counter() - start) / n)
    return min(ours), min(theirs), [a / b for a, b in zip(ours, theirs, strict=True)]


class OffsetClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def main() -> None:
    clock = OffsetClock()
    fake = FakeSts(clock, users={KEY: SECRET}, devices={SERIAL: pyotp.random_base32()})
    # STS runs on its own thread and event loop, as a remote service would: its latency
    # overlaps with the work of the callers' loop instead of queueing behind it.
    sts_loop = asyncio.new_event_loop()
    sts_thread = threading.Thread(target=sts_loop.run_forever, daemon=True)
    sts_thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), sts_loop).result()
    fake.single_use_codes = False  # thousands of refreshes within one TOTP step
    source = AioSession()
    source.set_credentials(KEY, SECRET)

    async def code(request: MfaRequest) -> str:
        return fake.totp(SERIAL)

    def make(**extra: Any) -> SessionTokenProvider:
        return SessionTokenProvider(
            mfa_serial=SERIAL,
            mfa_callback=code,
            duration_seconds=3600,
            endpoint_url=fake.url,
            region_name="us-east-1",
            source_session=source,
            clock=clock,
            **extra,
        )

    print(
        f"python {sys.version.split()[0]}, aiobotocore {__import__('aiobotocore').__version__}"
        f"{' (--quick: figures for a smoke test only)' if QUICK else ''}",
        file=OUT,
    )

    # 1. cache hit vs a bare await
    provider = make()
    creds = await provider.credentials()
    constant = object()

    async def bare() -> object:
        return constant

    hit, bare_cost, ratios = await compare(calling(provider.credentials), calling(bare))
    report("hit", "cache hit: await provider.credentials()", hit, bare_cost, "<= 3x", spread=ratios)

    # 2. what the signer awaits per request, vs aiobotocore's refreshable credentials
    session = provider.attach(AioSession())
    ours = await session.get_credentials()
    expiry = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)).isoformat()
    theirs = AioRefreshableCredentials.create_from_metadata(
        {
            "access_key": creds.access_key_id,
            "secret_key": creds.secret_access_key,
            "token": creds.session_token,
            "expiry_time": expiry,
        },
        refresh_using=lambda: None,
        method="bench",
    )
    signer, refreshable, ratios = await compare(
        calling(ours.get_frozen_credentials), calling(theirs.get_frozen_credentials)
    )
    report(
        "signer",
        "signer: get_frozen_credentials() vs AioRefreshableCredentials",
        signer,
        refreshable,
        "<= 0.2x",
        spread=ratios,
    )
    await provider.close()

    # 3. 10,000 concurrent first callers, 50 ms STS; also with a kept-alive STS connection
    n = 1_000 if QUICK else 10_000
    herd_rounds, prefetch_rounds = (1, 1) if QUICK else (5, 7)

    async def herd(key: str, label: str, make_cold: Callable[[], SessionTokenProvider]) -> None:
        fresh_walls, cold_walls, calls = [], [], []
        for _ in range(herd_rounds):
            warm = make()
            await warm.credentials()
            quiet_gc()
            start = time.perf_counter()
            await asyncio.gather(*(warm.credentials() for _ in range(n)))
            fresh_walls.append(time.perf_counter() - start + 0.050)
            await warm.close()

            fake.delay = 0.050
            cold = make_cold()
            await cold.prepare()  # STS client creation (~50 ms of model loading) at start-up
            before = len(fake.token_calls)
            quiet_gc()
            start = time.perf_counter()
            await asyncio.gather(*(cold.credentials() for _ in range(n)))
            cold_walls.append(time.perf_counter() - start)
            calls.append(len(fake.token_calls) - before)
            fake.delay = 0.0
            await cold.close()
        ratios = [c / f for c, f in zip(cold_walls, fresh_walls, strict=True)]
        report(
            key,
            f"{n:,} first callers, 50 ms STS{label} (median of {herd_rounds})",
            statistics.median(cold_walls),
            statistics.median(fresh_walls),
            "<= 1.2x",
            unit="ms",
            spread=ratios,
            callers=n,
            sts_calls=max(calls),
        )

    await herd("herd", "", make)

    from aiobotocore.config import AioConfig

    await herd(
        "herd_keepalive", ", keep-alive", lambda: make(sts_config=AioConfig(connector_args={}))
    )

    # 3b. what waking waiters costs: 10,000 tasks each awaiting a future, all resolved at once,
    # vs the same tasks' first steps (a gather of coroutines that return at once)
    loop = asyncio.get_running_loop()

    async def returns() -> None:
        return None

    async def waits(future: asyncio.Future[None]) -> None:
        await future

    steps, wakes = [], []
    for _ in range(herd_rounds):
        quiet_gc()
        start = time.perf_counter()
        await asyncio.gather(*(returns() for _ in range(n)))
        steps.append(time.perf_counter() - start)
        futures = [loop.create_future() for _ in range(n)]
        waiting = asyncio.gather(*(waits(f) for f in futures))
        await asyncio.sleep(0)  # every task is now parked on its future
        quiet_gc()
        start = time.perf_counter()
        for future in futures:
            future.set_result(None)
        await waiting
        wakes.append(time.perf_counter() - start)
    report(
        "wake",
        f"waking {n:,} waiting tasks vs their first steps",
        statistics.median(wakes),
        statistics.median(steps),
        "-",
        unit="ms",
        spread=[w / s for w, s in zip(wakes, steps, strict=True)],
    )

    # 4. prefetch window, 200 ms STS: each caller's own wait, vs on fresh credentials
    async def latencies(p: SessionTokenProvider) -> list[float]:
        async def timed() -> float:
            t = time.perf_counter()
            await p.credentials()
            return time.perf_counter() - t

        # The collector is paused while callers run, in both runs alike: otherwise the slowest
        # caller is whichever one a collection pause happened to land on.
        gc.disable()
        try:
            return sorted(await asyncio.gather(*(timed() for _ in range(n))))
        finally:
            gc.enable()

    fresh_lat, prefetch_lat = [], []
    for _ in range(prefetch_rounds):
        clock.offset = 0.0
        p = make()
        await p.credentials()
        quiet_gc()
        fresh_lat.append(await latencies(p))
        clock.offset = 3600 - 200  # inside the 300 s prefetch window
        fake.delay = 0.200
        quiet_gc()
        prefetch_lat.append(await latencies(p))
        assert p.state().value == "prefetch"  # every caller was served before the refresh ended
        fake.delay = 0.0
        await p.close()
        clock.offset = 0.0

    def percentiles(
        key: str, name: str, ours: list[list[float]], fresh: list[list[float]], at: list[str]
    ) -> None:
        """Each percentile: the median over rounds, against the same percentile on fresh
        credentials; the spread, the round-by-round ratios."""
        m = len(fresh[0])
        where = {"p50": m // 2, "p99": m * 99 // 100, "p99.9": m * 999 // 1000, "slowest": m - 1}
        for label in at:
            index = where[label]
            report(
                f"{key}_{label.replace('.', '')}",
                f"{name}: {label}",
                statistics.median(lat[index] for lat in ours),
                statistics.median(lat[index] for lat in fresh),
                "<= 1x" if label == "slowest" else "-",
                spread=[a[index] / b[index] for a, b in zip(ours, fresh, strict=True)],
            )

    percentiles(
        "prefetch",
        f"prefetch window, 200 ms STS, {n:,} callers at once",
        prefetch_lat,
        fresh_lat,
        ["p50", "p99", "p99.9", "slowest"],
    )

    # 4b. the same, with callers arriving while the refresh is in flight: 15 waves 10 ms apart
    # across the 200 ms STS latency, each caller timed from its own arrival
    waves = 15

    async def spread(p: SessionTokenProvider) -> tuple[list[float], int]:
        async def timed() -> float:
            t = time.perf_counter()
            await p.credentials()
            return time.perf_counter() - t

        lat: list[float] = []
        in_flight = 0
        gc.disable()
        try:
            for _ in range(waves):
                lat += await asyncio.gather(*(timed() for _ in range(n // waves)))
                in_flight += p._slot.pending()
                await asyncio.sleep(0.010)
        finally:
            gc.enable()
        return sorted(lat), in_flight

    fresh_lat, prefetch_lat, pending_waves = [], [], []
    for _ in range(prefetch_rounds):
        clock.offset = 0.0
        p = make()
        await p.credentials()
        quiet_gc()
        fresh_lat.append((await spread(p))[0])
        clock.offset = 3600 - 200
        fake.delay = 0.200
        quiet_gc()
        lat, in_flight = await spread(p)
        prefetch_lat.append(lat)
        pending_waves.append(in_flight)
        fake.delay = 0.0
        await p.close()
        clock.offset = 0.0
    percentiles(
        "waves",
        f"prefetch, callers in {waves} waves across the refresh "
        f"({min(pending_waves)} while in flight)",
        prefetch_lat,
        fresh_lat,
        ["p50", "p99", "slowest"],
    )
    # 5. several event loops (threads each with asyncio.run) on one cold provider, 50 ms STS:
    # one refresh and one prompt for all of them; the wall time vs the same callers on fresh
    # credentials (+ 50 ms); and a cache hit's cost per call with every loop calling at once,
    # vs a bare await measured the same way.
    loops, per_loop = (2, 200) if QUICK else (4, 2_500)

    def on_loops(work: Callable[[], Awaitable[Any]]) -> float:
        """Run ``work`` on ``loops`` event loops at once, one thread each (they share the
        GIL); the seconds from the first loop's start to the last loop's end, each timed
        inside its own thread once every thread is ready."""
        barrier = threading.Barrier(loops)
        starts: list[float] = []
        ends: list[float] = []

        async def one() -> None:
            barrier.wait()
            starts.append(time.perf_counter())
            await work()
            ends.append(time.perf_counter())

        threads = [threading.Thread(target=asyncio.run, args=(one(),)) for _ in range(loops)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return max(ends) - min(starts)

    def herd_of(p: SessionTokenProvider) -> Awaitable[Any]:
        return asyncio.gather(*(p.credentials() for _ in range(per_loop)))

    cold_walls, fresh_walls, calls, prompts = [], [], [], []
    for _ in range(herd_rounds):
        warm = make()
        await warm.credentials()
        fresh_walls.append(on_loops(partial(herd_of, warm)) + 0.050)
        await warm.close()
        fake.delay = 0.050
        cold = make()
        await cold.prepare()
        before, prompts_before = len(fake.token_calls), cold.stats.prompts
        cold_walls.append(on_loops(partial(herd_of, cold)))
        calls.append(len(fake.token_calls) - before)
        prompts.append(cold.stats.prompts - prompts_before)
        fake.delay = 0.0
        await cold.close()
    ratios = [c / f for c, f in zip(cold_walls, fresh_walls, strict=True)]
    report(
        "loops",
        f"{loops} loops x {per_loop:,} first callers, 50 ms STS (median of {herd_rounds})",
        statistics.median(cold_walls),
        statistics.median(fresh_walls),
        "1 call, 1 prompt",
        unit="ms",
        spread=ratios,
        loops=loops,
        sts_calls=max(calls),
        prompts=max(prompts),
    )

    shared = make()
    await shared.credentials()
    calls_each = 2_000 if QUICK else 100_000

    def per_call_on_loops(fn: Callable[[], Awaitable[Any]]) -> float:
        """Every loop calling at once: the seconds per call, all loops together (they share
        the GIL: this is the throughput of the process)."""

        async def timed() -> None:
            for _ in range(calls_each):
                await fn()

        return on_loops(timed) / (calls_each * loops)

    hits, bares = [], []
    for _ in range(1 if QUICK else 5):  # interleaved rounds
        hits.append(per_call_on_loops(shared.credentials))
        bares.append(per_call_on_loops(bare))
    report(
        "hit_loops",
        f"cache hit on {loops} loops at once, per call (all loops), vs a bare await",
        min(hits),
        min(bares),
        "<= 3x",
        spread=[h / b for h, b in zip(hits, bares, strict=True)],
        loops=loops,
    )
    await shared.close()

    # 6. keep_fresh renewing in the background (200 ms STS) while 10,000 callers arrive:
    # their own waits, vs on fresh credentials
    fresh_lat, kept_lat = [], []
    for _ in range(prefetch_rounds):
        clock.offset = 0.0
        p = make()
        await p.credentials()
        quiet_gc()
        fresh_lat.append(await latencies(p))
        clock.offset = 3600 - 200  # the prefetch window is open: the keeper renews at once
        fake.delay = 0.200
        keeper = p.keep_fresh()
        await asyncio.sleep(0)  # it looked, and started the renewal
        quiet_gc()
        kept_lat.append(await latencies(p))
        fake.delay = 0.0
        keeper.cancel()
        await p.close()
        clock.offset = 0.0
    percentiles(
        "keep_fresh",
        f"keep_fresh renewing, 200 ms STS, {n:,} callers at once",
        kept_lat,
        fresh_lat,
        ["p50", "p99", "slowest"],
    )
    asyncio.run_coroutine_threadsafe(fake.stop(), sts_loop).result()
    sts_loop.call_soon_threadsafe(sts_loop.stop)
    sts_thread.join()


if __name__ == "__main__":
    asyncio.run(main())
    if JSON:
        print(json.dumps({"benchmark": "provider", "python": sys.version.split()[0], "rows": ROWS}))
