"""The fast version of ``benchmarks/bench_week.py``: two simulated days under 1% STS faults."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_week import simulate


async def test_two_days_of_steady_use_with_faults() -> None:
    report = await simulate(days=2, tasks=50, clients=2, fault_rate=0.01)
    assert report.calls == report.steps * 50
    assert report.sts_faults > 0  # the faults really were injected
    assert report.expired_served == 0
    assert report.expired_signed == 0
    assert report.requests > 0
    # one prompt per 12-hour token, plus at most one per outage
    assert report.expected_prompts <= report.prompts <= report.expected_prompts + report.outages
    assert report.tasks_last_day == report.tasks_first_day
    assert report.library_last_day - report.library_first_day < 4096  # flat: one flight at most
