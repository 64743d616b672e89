"""A week in seconds: the refresh engine under steady load and random STS faults.

    python benchmarks/bench_week.py            # 7 days, 1,000 tasks, 20 clients, 1% faults
    python benchmarks/bench_week.py --quick    # 1 day, 50 tasks, 2 clients (a smoke run)

The injected clock moves in steps (5 min by default); at every step each of the long-lived
tasks asks ``provider.credentials()`` once, and each attached client makes a real signed call
(GetCallerIdentity) to the strict fake STS once an hour, which refuses expired session tokens.
STS answers 503 to a random 1% of all requests. Targets (issue 6): prompts = one per 12-hour
token (plus at most one per outage), 0 requests signed with expired credentials, memory flat
(tracemalloc, end of the first day vs end of the last), no growth in tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyotp
from aiobotocore.session import AioSession
from botocore.exceptions import ClientError
from botocore.retries import standard

from aio_sts_session import MfaRequest, SessionTokenProvider
from aio_sts_session.testing import FakeSts

SERIAL = "arn:aws:iam::123456789012:mfa/week"
KEY, SECRET = "AKIAWEEKSIMULATION01", "week-simulation-secret"
DAY = 86400.0
LIFETIME = 43200


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class WeekReport:
    days: float
    tasks: int
    clients: int
    steps: int
    calls: int  # provider.credentials() calls by the tasks
    requests: int  # signed requests sent by the clients
    prompts: int
    expected_prompts: int  # one per token the simulated time needs
    outages: int  # refreshes that failed (STS unavailable after botocore's retries)
    expired_served: int  # credentials handed to a task after their expiry
    expired_signed: int  # client requests that STS refused as ExpiredToken
    sts_faults: int  # 503s injected
    memory_first_day: int  # bytes traced at the end of the first day (whole process)
    memory_last_day: int
    library_first_day: int  # of those, allocated in aio_sts_session's own code
    library_last_day: int
    tasks_first_day: int
    tasks_last_day: int
    wall_seconds: float

    def lines(self) -> list[str]:
        growth = self.memory_last_day - self.memory_first_day
        return [
            f"simulated {self.days:g} days in {self.steps} steps: {self.tasks} tasks, "
            f"{self.clients} clients, wall {self.wall_seconds:.1f} s",
            f"credentials() calls {self.calls:,}; signed requests {self.requests:,}; "
            f"STS faults injected {self.sts_faults}",
            f"prompts {self.prompts} (one per {LIFETIME // 3600} h token: "
            f"{self.expected_prompts}; outages {self.outages})",
            f"credentials served after expiry {self.expired_served}; requests signed with "
            f"expired credentials {self.expired_signed}",
            f"memory traced end of day 1 {self.memory_first_day / 1024:.0f} KiB, end of last "
            f"day {self.memory_last_day / 1024:.0f} KiB (growth {growth / 1024:+.0f} KiB, "
            "including the in-process fake STS's call log)",
            f"  of which allocated by aio_sts_session: {self.library_first_day} B, then "
            f"{self.library_last_day} B",
            f"tasks end of day 1 {self.tasks_first_day}, end of last day {self.tasks_last_day}",
        ]


async def simulate(
    *,
    days: float = 7,
    tasks: int = 1000,
    clients: int = 20,
    fault_rate: float = 0.01,
    step: float = 300.0,
    request_every: float = 3600.0,
) -> WeekReport:
    clock = Clock()
    fake = FakeSts(clock, users={KEY: SECRET}, devices={SERIAL: pyotp.random_base32()})
    fake.fault_rate = fault_rate
    await fake.start()
    prompts = 0

    async def device(request: MfaRequest) -> str:
        nonlocal prompts
        prompts += 1
        return fake.fresh_code(SERIAL)

    source = AioSession()
    source.set_credentials(KEY, SECRET)
    provider = SessionTokenProvider(
        mfa_serial=SERIAL,
        mfa_callback=device,
        duration_seconds=LIFETIME,
        source_session=source,
        region_name="us-east-1",
        endpoint_url=fake.url,
        clock=clock,
    )
    session = provider.attach(AioSession())
    client_cms = [
        session.create_client("sts", region_name="us-east-1", endpoint_url=fake.url)
        for _ in range(clients)
    ]
    sts_clients = [await cm.__aenter__() for cm in client_cms]

    expired_served = expired_signed = calls = requests = 0
    generation = 0
    arrived = 0
    step_done = asyncio.Event()
    wake = asyncio.Condition()

    async def worker() -> None:
        nonlocal expired_served, calls, arrived
        seen = 0
        while True:
            async with wake:
                await wake.wait_for(lambda seen=seen: generation > seen)  # type: ignore[misc]
            seen = generation
            creds = await provider.credentials()
            calls += 1
            if creds.expiration.timestamp() <= clock():
                expired_served += 1
            arrived += 1
            if arrived == tasks:
                step_done.set()

    async def client_request(client: Any) -> None:
        nonlocal expired_signed, requests
        requests += 1
        try:
            await client.get_caller_identity()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExpiredToken":
                expired_signed += 1

    workers = [asyncio.ensure_future(worker()) for _ in range(tasks)]
    steps = int(days * DAY / step)
    steps_per_day = int(DAY / step)
    per_request = max(1, int(request_every / step))
    tracemalloc.start()
    memory_first = memory_last = tasks_first = tasks_last = library_first = library_last = 0
    started = time.perf_counter()
    try:
        for index in range(steps):
            arrived = 0
            step_done.clear()
            async with wake:
                generation += 1
                wake.notify_all()
            await step_done.wait()
            due = [c for i, c in enumerate(sts_clients) if (index + i) % per_request == 0]
            await asyncio.gather(*(client_request(c) for c in due))
            flight = provider._slot.current()
            if flight is not None:  # a background refresh: let it land within the step
                await asyncio.gather(flight.wait(), return_exceptions=True)  # its outcome, recorded
            if index + 1 == steps_per_day:
                memory_first, library_first = _traced()
                tasks_first = len(asyncio.all_tasks())
            clock.now += step
        memory_last, library_last = _traced()
        tasks_last = len(asyncio.all_tasks())
    finally:
        tracemalloc.stop()
        wall = time.perf_counter() - started
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for cm in client_cms:
            await cm.__aexit__(None, None, None)
        await provider.close()
        await fake.stop()
    renew_every = LIFETIME - 300  # renewed in the prefetch window, 5 min before expiry
    return WeekReport(
        days=days,
        tasks=tasks,
        clients=clients,
        steps=steps,
        calls=calls,
        requests=requests,
        prompts=prompts,
        expected_prompts=math.ceil(steps * step / renew_every),
        outages=provider.stats.failures,
        expired_served=expired_served,
        expired_signed=expired_signed,
        sts_faults=sum(1 for c in fake.calls if c.outcome.startswith("fault")),
        memory_first_day=memory_first,
        memory_last_day=memory_last,
        library_first_day=library_first,
        library_last_day=library_last,
        tasks_first_day=tasks_first,
        tasks_last_day=tasks_last,
        wall_seconds=wall,
    )


def _traced() -> tuple[int, int]:
    """Bytes traced in the whole process, and in aio_sts_session's own code."""
    import gc

    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(True, "*aio_sts_session*"),
            tracemalloc.Filter(False, "*aio_sts_session/testing/*"),  # the fake STS's call log
        ]
    )
    return tracemalloc.get_traced_memory()[0], sum(s.size for s in snapshot.statistics("filename"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 day, 50 tasks, 2 clients")
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.days, args.tasks, args.clients = 2, 50, 2
    # botocore's standard retry mode, without its real sleeps (simulated time)
    standard.ExponentialBackoff.delay_amount = lambda self, ctx: 0.0  # type: ignore[method-assign]
    report = asyncio.run(simulate(days=args.days, tasks=args.tasks, clients=args.clients))
    if args.json:
        figures = {k: v for k, v in dataclasses.asdict(report).items() if _plain(v)}
        print(json.dumps({"benchmark": "week", "python": sys.version.split()[0], **figures}))
        return
    for line in report.lines():
        print(line)


def _plain(value: object) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


if __name__ == "__main__":
    main()
