import math

import pytest

from aio_sts_session._policy import (
    Action,
    Decision,
    State,
    Windows,
    backoff_delay,
    classify,
    decide,
    effective_windows,
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
    ("failures", "transient", "delay"),
    [
        (0, True, 0.0),
        (1, True, 1.0),
        (2, True, 2.0),
        (3, True, 4.0),
        (5, True, 16.0),
        (6, True, 30.0),  # capped
        (50, True, 30.0),
        (1, False, 10.0),  # a person or a fix is needed: slower
        (2, False, 20.0),
        (5, False, 160.0),
        (6, False, 300.0),  # capped
        (80, False, 300.0),
    ],
)
def test_backoff_delay(failures: int, transient: bool, delay: float) -> None:
    assert backoff_delay(failures, transient=transient) == delay


@pytest.mark.parametrize("jitter", [0.0, 0.3, 0.999, 1.0, 5.0, -1.0])
def test_backoff_jitter_takes_at_most_a_fifth_off(jitter: float) -> None:
    delay = backoff_delay(3, transient=False, jitter=jitter)
    assert 40.0 * 0.8 <= delay <= 40.0


S, F, W_, E_ = Action.SERVE, Action.FAIL, Action.WAIT, Action.SERVE_AND_PREFETCH
INF = math.inf
#  expires_at 1000, windows prefetch 300 / stale 60: FRESH < 700 <= PREFETCH < 940 <= STALE <
#  1000 <= EXPIRED


@pytest.mark.parametrize(
    ("now", "has_token", "pending", "retry_at", "action", "serve_until"),
    [
        # FRESH: served until the prefetch window opens, whatever else holds
        (0, True, False, -INF, S, 700),
        (0, True, True, -INF, S, 700),
        (0, True, False, 500, S, 700),
        # PREFETCH: served; one background refresh unless one is pending or backing off
        (800, True, False, -INF, E_, 801),  # served; re-checked within RECHECK_SECONDS (1 s)
        (800, True, True, -INF, S, 801),  # ... so a refresh lost with its loop is noticed
        (939.5, True, True, -INF, S, 940),  # never past the stale boundary
        (800, True, False, 850, S, 850),  # backing off: until the retry point ...
        (800, True, False, 990, S, 940),  # ... but never past the stale boundary
        # STALE: wait for the refresh; while backing off, the still-valid credentials
        (950, True, False, -INF, W_, -INF),
        (950, True, True, -INF, W_, -INF),
        (950, True, False, 960, S, 960),
        (950, True, False, 5000, S, 1000),  # served until they expire, not past
        # EXPIRED or none: wait; while backing off, fail at once with the last error
        (1000, True, False, -INF, W_, -INF),
        (1000, True, False, 1010, F, -INF),
        (1000, True, True, 1010, W_, -INF),  # a forced refresh is under way: join it
        (0, False, False, -INF, W_, -INF),
        (0, False, False, 10, F, -INF),
        (0, False, True, 10, W_, -INF),
    ],
)
def test_decide(
    now: float,
    has_token: bool,
    pending: bool,
    retry_at: float,
    action: Action,
    serve_until: float,
) -> None:
    decision = decide(
        now,
        1000.0 if has_token else None,
        W,
        refresh_pending=pending,
        retry_at=retry_at,
    )
    assert decision == Decision(action, serve_until)
