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

After a failed refresh the engine backs off (:func:`backoff_delay`): until ``retry_at`` no
refresh starts by itself. Meanwhile callers get the credentials in hand while they are unexpired
(in any window), and the last error at once when nothing valid is left (:func:`decide`).
"""

from __future__ import annotations

import dataclasses
import enum
import math

__all__ = [
    "Action",
    "Decision",
    "RefreshKind",
    "State",
    "Windows",
    "backoff_delay",
    "classify",
    "decide",
    "effective_windows",
]

#: Backoff after failures STS may recover from by itself (throttling, 5xx, network): 1, 2, 4 …
TRANSIENT_BACKOFF = (1.0, 30.0)
#: Backoff after failures that need a person or a fix (MFA, denied, bad keys): 10, 20, 40 …
#: A human is asked at most once per period, whatever the request rate.
PERSISTENT_BACKOFF = (10.0, 300.0)
#: While a refresh is pending, the fast path re-checks at least this often (seconds): a refresh
#: lost with its event loop (``asyncio.run`` ended before it could report back) is noticed
#: and started again, instead of leaving prefetching off until the stale window.
RECHECK_SECONDS = 1.0
#: Jitter takes up to this fraction off a backoff delay, so processes that failed together do
#: not all retry at the same instant.
JITTER = 0.2


class State(enum.Enum):
    """Where credentials are in their lifetime."""

    FRESH = "fresh"
    PREFETCH = "prefetch"
    STALE = "stale"
    EXPIRED = "expired"


class RefreshKind(enum.Enum):
    """Why a refresh runs."""

    PREFETCH = "prefetch"  # in the background; callers keep the current credentials
    BLOCKING = "blocking"  # callers wait for it (stale, expired or none yet)
    FORCED = "forced"  # asked for with ``refresh()``; ignores the backoff


class Action(enum.Enum):
    """What one caller of ``credentials()`` does."""

    SERVE = "serve"  # hand out the current credentials
    SERVE_AND_PREFETCH = "serve+prefetch"  # the same, and start the background refresh
    WAIT = "wait"  # wait for the refresh in flight (starting one if none is)
    FAIL = "fail"  # nothing valid and backing off: the last error, at once


@dataclasses.dataclass(frozen=True)
class Windows:
    """Seconds before expiry at which the prefetch and stale windows open."""

    prefetch: float
    stale: float


@dataclasses.dataclass(frozen=True)
class Decision:
    """An :class:`Action` and until when the same answer holds without deciding again (the
    engine's one-comparison fast path; ``-inf`` means decide on every call)."""

    action: Action
    serve_until: float = -math.inf


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


def backoff_delay(failures: int, *, transient: bool, jitter: float = 0.0) -> float:
    """Seconds to wait after ``failures`` consecutive failed refreshes before trying again by
    itself: doubling from 1 s (transient) or 10 s (anything else), capped at 30 s or 300 s, less
    up to :data:`JITTER` of it (``jitter`` in [0, 1))."""
    if failures <= 0:
        return 0.0
    base, cap = TRANSIENT_BACKOFF if transient else PERSISTENT_BACKOFF
    delay = min(base * 2.0 ** (failures - 1), cap)
    return delay * (1.0 - JITTER * min(max(jitter, 0.0), 1.0))


def decide(
    now: float,
    expires_at: float | None,
    windows: Windows,
    *,
    refresh_pending: bool,
    retry_at: float,
) -> Decision:
    """What a caller of ``credentials()`` does, given the credentials in hand (``expires_at``,
    ``None`` if there are none), whether a refresh is in flight, and the end of the backoff.

    ======================  ===================  ==========================  ==================
    state                   refresh in flight    backing off (now<retry_at)  otherwise
    ======================  ===================  ==========================  ==================
    FRESH                   serve                serve                       serve
    PREFETCH                serve (re-check 1 s) serve                       serve + prefetch
    STALE                   wait (or fallback)   serve                       wait
    EXPIRED / none          wait                 fail                        wait
    ======================  ===================  ==========================  ==================
    """
    state = State.EXPIRED if expires_at is None else classify(now, expires_at, windows)
    backing_off = now < retry_at
    if state is State.FRESH:
        assert expires_at is not None
        return Decision(Action.SERVE, expires_at - windows.prefetch)
    if state is State.PREFETCH:
        assert expires_at is not None
        stale_at = expires_at - windows.stale
        if refresh_pending:
            return Decision(Action.SERVE, min(stale_at, now + RECHECK_SECONDS))
        if backing_off:
            return Decision(Action.SERVE, min(retry_at, stale_at))
        return Decision(Action.SERVE_AND_PREFETCH, min(stale_at, now + RECHECK_SECONDS))
    if state is State.STALE:
        assert expires_at is not None
        if backing_off and not refresh_pending:
            return Decision(Action.SERVE, min(retry_at, expires_at))
        return Decision(Action.WAIT)
    if backing_off and not refresh_pending:
        return Decision(Action.FAIL)
    return Decision(Action.WAIT)
