import math

import pytest

from aio_sts_session._policy import (
    MAX_BLOCKING_RETRY_DELAY,
    State,
    Windows,
    blocking_retry_delay,
    classify,
    effective_windows,
    next_decision_at,
    prefetch_retry_at,
)


@pytest.mark.parametrize(
    ("lifetime", "prefetch", "stale", "expected"),
    [
        (43200, 300, 60, Windows(300, 60)),  # long credential: windows as configured
        (900, 300, 60, Windows(300, 60)),  # STS minimum: still as configured
        (3600, 300, 60, Windows(300, 60)),  # root's 1 h cap
        (20, 300, 60, Windows(10, 5)),  # 20 s credential: half fresh, a quarter stale
        (100, 300, 0, Windows(50, 0)),
        (0, 300, 60, Windows(0, 0)),  # already expired when received
        (-5, 300, 60, Windows(0, 0)),
        (600, 100, 100, Windows(100, 100)),  # stale == prefetch is allowed
    ],
)
def test_effective_windows(
    lifetime: float, prefetch: float, stale: float, expected: Windows
) -> None:
    assert effective_windows(lifetime, prefetch, stale) == expected


W = Windows(prefetch=300, stale=60)


@pytest.mark.parametrize(
    ("remaining", "state"),
    [
        (3600, State.FRESH),
        (300.001, State.FRESH),
        (300, State.PREFETCH),
        (61, State.PREFETCH),
        (60, State.STALE),
        (0.001, State.STALE),
        (0, State.EXPIRED),
        (-86400, State.EXPIRED),  # a laptop that slept past expiry
    ],
)
def test_classify(remaining: float, state: State) -> None:
    assert classify(now=1000.0, expires_at=1000.0 + remaining, windows=W) is state


def test_twenty_second_credential_is_fresh_for_ten_seconds() -> None:
    w = effective_windows(20, 300, 60)
    states = [classify(now=t, expires_at=20, windows=w) for t in range(0, 21)]
    assert states.count(State.FRESH) == 10
    assert states[:10] == [State.FRESH] * 10
    assert states[-1] is State.EXPIRED


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0.0, 120.0),  # 240 s left before the stale window: retry half-way
        (239.0, 240.0),  # less than 2 s left: not sooner than 1 s from now
    ],
)
def test_prefetch_retry_at(now: float, expected: float) -> None:
    assert prefetch_retry_at(now, expires_at=300, windows=W) == expected


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, MAX_BLOCKING_RETRY_DELAY), (50, 30.0)],
)
def test_blocking_retry_delay(failures: int, delay: float) -> None:
    assert blocking_retry_delay(failures) == delay


@pytest.mark.parametrize(
    ("state", "pending", "attempts", "retry_at", "expected"),
    [
        (State.FRESH, False, 0, -math.inf, 700.0),  # until the prefetch window opens
        (State.PREFETCH, True, 1, -math.inf, 940.0),  # refresh under way: until stale
        (State.PREFETCH, False, 1, 800.0, 800.0),  # failed once: until the retry point
        (State.PREFETCH, False, 1, 990.0, 940.0),  # ...but never past the stale boundary
        (State.PREFETCH, False, 2, 800.0, 940.0),  # no retry left: until stale
        (State.STALE, False, 0, -math.inf, -math.inf),  # waiting states decide every call
        (State.EXPIRED, True, 0, -math.inf, -math.inf),
    ],
)
def test_next_decision_at(
    state: State, pending: bool, attempts: int, retry_at: float, expected: float
) -> None:
    at = next_decision_at(
        state,
        expires_at=1000.0,
        windows=W,
        refresh_pending=pending,
        prefetch_attempts=attempts,
        retry_at=retry_at,
    )
    assert at == expected
