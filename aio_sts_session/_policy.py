"""Refresh policy: pure, synchronous decisions, tested as tables.

Times are wall-clock seconds since the epoch, in the local clock's terms (expiries are already
corrected for clock skew when they get here).

Lifetime of one credential, left to right::

    obtained ─── FRESH ───┬── PREFETCH ──┬── STALE ──┬── EXPIRED
                          │ callers get  │ callers   │ callers wait
                          │ current, one │ wait for  │ for the refresh
                          │ background   │ the one   │
                          │ refresh      │ refresh   │
                 expires_at - prefetch   │           expires_at
                          expires_at - stale

The windows shrink with the lifetime STS actually granted: prefetch is at most half of it and
stale at most a quarter, so a 20-second credential still has 10 fresh seconds and can never cause
a refresh per call.
"""

from __future__ import annotations

import dataclasses
import enum
import math

__all__ = [
    "State",
    "Windows",
    "blocking_retry_delay",
    "classify",
    "effective_windows",
    "next_decision_at",
    "prefetch_retry_at",
]

#: Background refresh attempts allowed in one prefetch window (the first plus one retry).
PREFETCH_ATTEMPTS = 2
#: Cap of the fast-fail period after STS stayed unavailable for a waiting caller.
MAX_BLOCKING_RETRY_DELAY = 30.0


class State(enum.Enum):
    FRESH = "fresh"
    PREFETCH = "prefetch"
    STALE = "stale"
    EXPIRED = "expired"


@dataclasses.dataclass(frozen=True)
class Windows:
    """Seconds before expiry at which the prefetch and stale windows open."""

    prefetch: float
    stale: float


def effective_windows(lifetime: float, prefetch_seconds: float, stale_seconds: float) -> Windows:
    """Shrink the configured windows to fit a credential of ``lifetime`` seconds."""
    lifetime = max(lifetime, 0.0)
    prefetch = min(prefetch_seconds, lifetime / 2)
    stale = min(stale_seconds, lifetime / 4, prefetch)
    return Windows(prefetch=prefetch, stale=stale)


def classify(now: float, expires_at: float, windows: Windows) -> State:
    remaining = expires_at - now
    if remaining <= 0:
        return State.EXPIRED
    if remaining <= windows.stale:
        return State.STALE
    if remaining <= windows.prefetch:
        return State.PREFETCH
    return State.FRESH


def prefetch_retry_at(now: float, expires_at: float, windows: Windows) -> float:
    """When a failed background refresh may be tried again: half-way to the stale window,
    and not sooner than a second from now."""
    until_stale = expires_at - windows.stale - now
    return now + max(1.0, until_stale / 2)


def blocking_retry_delay(consecutive_failures: int) -> float:
    """Seconds during which waiting callers fail fast after STS stayed unavailable:
    1, 2, 4, ... capped at :data:`MAX_BLOCKING_RETRY_DELAY`."""
    if consecutive_failures <= 0:
        return 0.0
    return min(2.0 ** (consecutive_failures - 1), MAX_BLOCKING_RETRY_DELAY)


def next_decision_at(
    state: State,
    expires_at: float,
    windows: Windows,
    *,
    refresh_pending: bool,
    prefetch_attempts: int,
    retry_at: float,
) -> float:
    """Until when callers may be handed the current credentials with no decision at all (the
    provider's one-comparison fast path). Only for FRESH and PREFETCH; waiting states decide
    on every call.

    In the prefetch window that is the stale boundary while a refresh is pending or no retry is
    left, else the retry point: so callers in the prefetch window pay no more than fresh ones.
    """
    if state is State.FRESH:
        return expires_at - windows.prefetch
    if state is not State.PREFETCH:
        return -math.inf
    stale_at = expires_at - windows.stale
    if refresh_pending or prefetch_attempts >= PREFETCH_ATTEMPTS:
        return stale_at
    return min(retry_at, stale_at)
