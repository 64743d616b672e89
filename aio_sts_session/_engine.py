"""The refresh engine: fast path, windows, single flight, prefetch, backoff, cache.

It knows nothing of STS: what fetches credentials is a :class:`CredentialSource` (GetSessionToken
with MFA in :mod:`._provider`). Public providers subclass :class:`RefreshEngine` and hand it
their source; everything callers use (``credentials()``, ``refresh()``, ``attach()`` …) lives
here, once.

The engine's state is one immutable :class:`Snapshot`, replaced whole after each decision or
refresh (as the AWS SDK for Go's credential cache does), so no two fields can disagree. At most
one refresh runs at a time (:class:`~._flight.FlightSlot`); every decision is a pure function
in :mod:`._policy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as _dt
import logging
import math
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from . import _policy
from ._cache import TokenCache
from ._clock import Clock
from ._flight import Flight, FlightSlot
from ._models import CachedToken, SessionCredentials
from ._policy import Action, RefreshKind, State, Windows
from ._sts import KeysChanged
from .exceptions import (
    CacheLockTimeoutError,
    ProviderClosedError,
    SourceCredentialsError,
    StsError,
    StsSessionError,
    StsUnavailableError,
)
from .integrations import aiobotocore as _aiobotocore

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["CredentialSource", "Plan", "ProviderStats", "RefreshEngine", "Snapshot"]

logger = logging.getLogger("aio_sts_session")

SessionT = TypeVar("SessionT")


@dataclasses.dataclass
class ProviderStats:
    """Counters for what a provider did (for logs, demos and tests)."""

    prompts: int = 0  #: times the MFA callback was asked
    sts_calls: int = 0  #: STS calls that fetch credentials (botocore retries count once)
    refreshes: int = 0  #: refreshes that produced new credentials from STS
    cache_loads: int = 0  #: refreshes answered by the (shared) cache instead of STS
    failures: int = 0  #: refreshes that failed


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one refresh will do, decided before anyone is asked for a code: the cache entry it
    reads and writes, and how to fetch new credentials if the cache has none."""

    cache_key: str
    fetch: Callable[[], Awaitable[CachedToken]]


class CredentialSource(Protocol):
    """What an engine refreshes from. ``plan`` validates everything it can (keys, config) and
    must never prompt; ``fetch`` (in the plan) may prompt and call STS."""

    def describe(self) -> str: ...

    async def prepare(self) -> None: ...

    async def plan(self) -> Plan: ...

    def use_attached(self, session: Any) -> None: ...

    async def close(self) -> None: ...


NO_WINDOWS = Windows(0.0, 0.0)
#: A caller waiting in the stale window for a refresh gets the credentials in hand this many
#: seconds before they expire, if the refresh has not ended by then.
HANDOVER_SECONDS = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the engine knows, replaced whole.

    ``serve_until``: until then callers get ``fresh`` with no decision (one clock read);
    ``retry_at``: no refresh starts by itself before then (backoff after ``failures``
    consecutive failures, the last being ``error``).
    """

    token: CachedToken | None = None
    windows: Windows = NO_WINDOWS
    serve_until: float = -math.inf
    fresh: SessionCredentials | None = None
    failures: int = 0
    retry_at: float = -math.inf
    error: BaseException | None = None

    def serving(self, until: float) -> Snapshot:
        """The same state, with the fast path serving the token until ``until`` (``-inf``:
        decide on the next call). Spelled out rather than ``dataclasses.replace``, which costs
        several times more on the path of the caller that starts a prefetch."""
        fresh = self.token.credentials if self.token is not None else None
        return Snapshot(
            self.token, self.windows, until, fresh, self.failures, self.retry_at, self.error
        )


class RefreshEngine:
    """Credentials refreshed before they expire, one refresh at a time (base of the providers).

    ``await credentials()`` answers from memory while they are fresh; in the prefetch window it
    answers at once and starts one background refresh; in the stale window or after expiry
    callers wait for the one refresh in flight. A failed refresh backs off (jittered) and,
    while the credentials in hand are unexpired, callers keep getting them.
    """

    def __init__(
        self,
        source: CredentialSource,
        *,
        cache: TokenCache,
        clock: Clock,
        prefetch_seconds: float,
        stale_seconds: float,
        lock_timeout: float,
        stats: ProviderStats | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._source = source
        self._cache = cache
        self._clock = clock
        self._prefetch_seconds = float(prefetch_seconds)
        self._stale_seconds = float(stale_seconds)
        self._lock_timeout = lock_timeout
        self._jitter = jitter
        self.stats = stats if stats is not None else ProviderStats()
        self._set(Snapshot())
        self._slot = FlightSlot()
        self._attached_credentials = _aiobotocore.ProviderCredentials(self)
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.state().value
        return f"{type(self).__name__}({self._source.describe()}, state={state!r})"

    # -- public API ----------------------------------------------------------------------------

    async def credentials(self) -> SessionCredentials:
        """The current credentials, refreshing them first (once, for every caller) if needed.

        Fresh: from memory. Prefetch window: at once, and one background refresh starts.
        Stale window or expired: waits for the one refresh in flight (while backing off after a
        failure: the still-valid credentials, or the last error at once if none are left).
        """
        # The fast path: one clock read, one comparison (serve_until is -inf whenever a
        # decision is due, so fresh is set whenever the comparison holds).
        if self._clock() < self._serve_until:
            return self._fresh  # type: ignore[return-value]
        served = self._decide()
        if isinstance(served, SessionCredentials):
            return served
        in_hand = self._valid_token()
        if in_hand is not None:  # the stale window: never wait past what is in hand
            return await self._wait_until_handover(served, in_hand)
        return (await served).credentials

    async def _wait_until_handover(
        self, served: asyncio.Future[CachedToken], in_hand: CachedToken
    ) -> SessionCredentials:
        """Wait for the refresh in flight, but hand out the credentials in hand, still valid,
        rather than wait until they expire (STS hanging: connect and read timeouts, four
        attempts). The refresh goes on for the next caller."""
        timeout = in_hand.expires_at - HANDOVER_SECONDS - self._clock()
        if timeout <= 0:  # the margin is already reached: what is in hand, at once
            if served.done() and not served.cancelled() and served.exception() is None:
                return served.result().credentials  # the refresh ended eagerly
            served.cancel()  # only this caller's wait; the refresh goes on
            return in_hand.credentials
        try:
            return (await asyncio.wait_for(served, timeout)).credentials
        except asyncio.TimeoutError:
            logger.info(
                "The refresh of %s is taking long; serving the current credentials (%.0f s "
                "left) meanwhile.",
                self._source.describe(),
                in_hand.expires_at - self._clock(),
            )
            return in_hand.credentials

    async def refresh(self, *, rejected: SessionCredentials | None = None) -> SessionCredentials:
        """Get new credentials now, whatever the state and the backoff (joins a refresh already
        in flight). Raises if that refresh fails.

        ``rejected``: the credentials a service refused (``ExpiredToken``, a policy change). If
        newer ones were obtained since, they are returned without asking anyone for a code, so
        several tasks that saw the same refusal cause one refresh and one prompt.
        """
        self._check_open()
        snap = self._snap
        current = snap.token
        if (
            rejected is not None
            and current is not None
            and current.credentials != rejected
            and current.expires_at > self._clock()
        ):
            return current.credentials
        flight = self._slot.current()
        if flight is None:
            if rejected is None and current is not None:
                rejected = current.credentials  # "new" means: not the ones in hand
            flight = self._start(RefreshKind.FORCED, rejected)
        return (await flight.wait()).credentials

    async def prepare(self) -> None:
        """Check what can be checked without a prompt, and warm up (see the provider's doc).
        Optional; call it at start-up to fail fast and take this work off the first request."""
        self._check_open()
        await self._source.prepare()

    def peek(self) -> SessionCredentials | None:
        """The current credentials if they can be handed out right now with no decision to
        make (fresh, or in the prefetch window with the refresh under way), else ``None``."""
        fresh = self._fresh
        if fresh is not None and self._clock() < self._serve_until:
            return fresh
        return None

    def state(self) -> State:
        """Where the current credentials are in their lifetime (``EXPIRED`` if none)."""
        snap = self._snap
        if snap.token is None:
            return State.EXPIRED
        return _policy.classify(self._clock(), snap.token.expires_at, snap.windows)

    def attach(self, session: SessionT) -> SessionT:
        """Make every client created from ``session`` (an ``AioSession`` or an
        ``aioboto3.Session``) afterwards sign with this provider's credentials and refresh
        through it. Returns the same session. Clients created before keep what they had."""
        self._check_open()
        _aiobotocore.attach(self, self._attached_credentials, self._source.use_attached, session)
        return session

    async def close(self) -> None:
        """Cancel any refresh in flight and close the STS client. Idempotent."""
        self._closed = True
        self._set(Snapshot())  # the fast path must see the close
        await self._slot.cancel()
        await self._source.close()

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- for tools built on a provider (the command line) -------------------------------------

    async def entry_key(self) -> str:
        """The key of this provider's entry in its cache, as the refresh reads and writes it
        (a role's is built on its MFA session's). Checks the configuration and finds the
        long-term key's id; never prompts, never calls STS. With an
        :class:`EncryptedFileCache`, ``await cache.remove(await provider.entry_key())``
        forgets the cached credentials."""
        self._check_open()
        return (await self._source.plan()).cache_key

    def token(self) -> CachedToken | None:
        """The credentials in hand with their expiry in this machine's clock and the lifetime
        STS granted, as they are now (no decision, no refresh); ``None`` before the first
        refresh."""
        return self._snap.token

    @property
    def clock(self) -> Clock:
        """The clock this provider reads (wall-clock seconds; the ``clock=`` it was given)."""
        return self._clock

    def next_refresh_at(self) -> float | None:
        """When this provider will next want to refresh by itself, in its clock: when the
        prefetch window of the credentials in hand opens, or after a failure when the backoff
        ends; ``None`` before the first refresh."""
        snap = self._snap
        if snap.token is None:
            return None
        due = snap.token.expires_at - snap.windows.prefetch
        return max(due, snap.retry_at) if snap.failures else due

    async def settle(self) -> None:
        """Wait for a refresh in flight, if any; its outcome is recorded as usual (a failure
        is not raised here). A one-shot program calls it before exiting, so that a refresh
        started in the background is not cut off half-way."""
        flight = self._slot.current()
        if flight is not None:
            with contextlib.suppress(Exception):
                await flight.wait()

    # -- deciding ------------------------------------------------------------------------------

    def _set(self, snap: Snapshot) -> None:
        """Replace the state whole. The fast path reads two plain attributes, copies of the
        snapshot's, written here only (an attribute lookup fewer per call: see Benchmarks)."""
        self._snap = snap
        self._serve_until = snap.serve_until
        self._fresh = snap.fresh

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderClosedError(
                f"This {type(self).__name__} is closed; create a new one (or don't close it "
                "while clients still use it)."
            )

    def _decide(self) -> SessionCredentials | asyncio.Future[CachedToken]:
        """The slow path of :meth:`credentials`: the credentials a caller may have at once,
        or a future to wait on. Synchronous, so serving costs no extra coroutine."""
        self._check_open()
        snap = self._snap
        flight = self._slot.current()
        token = snap.token
        if token is None and flight is not None:
            return flight.wait(fallback=True)  # a herd of first callers: nothing to decide
        now = self._clock()
        decision = _policy.decide(
            now,
            None if token is None else token.expires_at,
            snap.windows,
            refresh_pending=flight is not None,
            retry_at=snap.retry_at,
        )
        action = decision.action
        if action is Action.SERVE or action is Action.SERVE_AND_PREFETCH:
            assert token is not None
            if action is Action.SERVE_AND_PREFETCH:
                self._start(RefreshKind.PREFETCH, None)
            self._set(snap.serving(decision.serve_until))
            return token.credentials
        if action is Action.FAIL:
            raise self._backoff_error(snap, now)
        if flight is None:
            flight = self._start(RefreshKind.BLOCKING, None)
        return flight.wait(fallback=True)

    def _backoff_error(self, snap: Snapshot, now: float) -> BaseException:
        """The last failure again, for a caller arriving during the backoff (a new instance
        of the same class, the original chained, so tracebacks do not pile up)."""
        error = snap.error
        wait = max(snap.retry_at - now, 0.0)
        later = f"[The last refresh failed; retrying in {wait:.0f} s by itself.]"
        if isinstance(error, StsSessionError) and type(error).__init__ is StsSessionError.__init__:
            # The same class, what happened and its topic (for the command line's advice).
            again: StsSessionError = type(error)(
                f"{error.what} {later}",
                hint=f"{error.hint} Or call refresh() to try now.".strip(),
                topic=error.topic,
                **error.facts,
            )
        else:  # a bug, or a class with another constructor: our base class
            again = StsSessionError(f"{error} {later}", hint="Or call refresh() to try now.")
        again.__cause__ = error
        return again

    def _start(self, kind: RefreshKind, rejected: SessionCredentials | None) -> Flight:
        return self._slot.start(
            lambda: self._refresh(kind, rejected),
            self._flight_done,
            kind=kind,
            fallback=self._valid_token,
        )

    def _valid_token(self) -> CachedToken | None:
        token = self._snap.token
        if token is not None and token.expires_at > self._clock():
            return token
        return None

    # -- refreshing ----------------------------------------------------------------------------

    async def _refresh(self, kind: RefreshKind, rejected: SessionCredentials | None) -> CachedToken:
        try:
            return await self._refresh_planned(kind, rejected)
        except KeysChanged as exc:
            # Another tool replaced the long-term keys behind the entry's name (the keyring's
            # index now names them): plan again, once; nobody has been asked for a code yet.
            logger.info(
                "The long-term keys of %s changed to %s meanwhile; refreshing with them.",
                self._source.describe(),
                exc.args[0] if exc.args else "another key",
            )
        try:
            return await self._refresh_planned(kind, rejected)
        except KeysChanged:
            raise SourceCredentialsError(
                f"The long-term keys of {self._source.describe()} keep changing while they are "
                "read (another program writing the keyring?): try again once it is done."
            ) from None

    async def _refresh_planned(
        self, kind: RefreshKind, rejected: SessionCredentials | None
    ) -> CachedToken:
        plan = await self._source.plan()  # validates everything before any prompt
        async with self._cache.lock(plan.cache_key, self._lock_timeout):
            cached = await self._cache.load(plan.cache_key)
            if cached is not None and self._usable(cached, kind, rejected):
                self.stats.cache_loads += 1
                logger.info(
                    "Credentials for %s taken from the cache; they expire at %s.",
                    self._source.describe(),
                    _when(cached.expires_at),
                )
                return cached
            logger.debug("Refreshing credentials for %s (%s).", self._source.describe(), kind.value)
            token = await plan.fetch()
            logger.info(
                "New credentials for %s from STS (%s); they expire at %s.",
                self._source.describe(),
                token.credentials.access_key_id,
                _when(token.expires_at),
            )
            if token.expires_at <= self._clock():
                raise StsError(
                    f"STS returned credentials for {self._source.describe()} that expire at "
                    f"{token.credentials.expiration.isoformat()}, already past by this "
                    "machine's clock: check the system clock (and any proxy in front of STS)."
                )
            await self._cache.store(plan.cache_key, token)
            return token

    def _usable(
        self, cached: CachedToken, kind: RefreshKind, rejected: SessionCredentials | None
    ) -> bool:
        """Whether a token found in the cache answers this refresh."""
        if rejected is not None and cached.credentials == rejected:
            return False
        current = self._snap.token
        if current is not None and cached.expires_at <= current.expires_at:
            return False
        windows = _policy.effective_windows(
            cached.lifetime, self._prefetch_seconds, self._stale_seconds
        )
        state = _policy.classify(self._clock(), cached.expires_at, windows)
        return state is State.FRESH or (
            state is State.PREFETCH and kind is not RefreshKind.PREFETCH
        )

    def _flight_done(self, flight: Flight) -> None:
        """Record a refresh's outcome: adopt its token, or back off after its failure. Runs
        before the waiters are woken, so they see the new state."""
        task = flight.task
        assert task is not None  # a flight reports back only once its task has ended
        snap = self._snap
        if task.cancelled():
            self._set(snap.serving(-math.inf))  # decide afresh
            return
        error = task.exception()
        if error is None:
            self._adopt(task.result())
            return
        failures = snap.failures + 1
        transient = isinstance(error, (StsUnavailableError, CacheLockTimeoutError))
        now = self._clock()
        delay = _policy.backoff_delay(failures, transient=transient, jitter=self._jitter())
        self._set(
            dataclasses.replace(
                snap, serve_until=-math.inf, failures=failures, retry_at=now + delay, error=error
            )
        )
        self.stats.failures += 1
        valid = self._valid_token()
        if valid is not None and flight.kind is not RefreshKind.FORCED:
            # Nobody else sees this failure: the callers keep the valid credentials.
            logger.warning(
                "Refreshing credentials for %s failed (%s); serving the current ones (valid "
                "%.0f s more); next attempt in %.0f s.",
                self._source.describe(),
                error,
                valid.expires_at - now,
                delay,
            )
        elif valid is not None:  # refresh() was asked for: its caller gets the error itself
            logger.info(
                "Refreshing credentials for %s on request failed (%s); the current ones are "
                "still valid %.0f s.",
                self._source.describe(),
                type(error).__name__,
                valid.expires_at - now,
            )
        else:
            logger.info(
                "Refreshing credentials for %s failed (%s); callers get this error until the "
                "next attempt in %.0f s.",
                self._source.describe(),
                type(error).__name__,
                delay,
            )

    def _adopt(self, token: CachedToken) -> None:
        windows = _policy.effective_windows(
            token.lifetime, self._prefetch_seconds, self._stale_seconds
        )
        self._set(
            Snapshot(
                token=token,
                windows=windows,
                serve_until=token.expires_at - windows.prefetch,
                fresh=token.credentials,
            )
        )
        logger.debug(
            "Serving credentials for %s (%s) until %s.",
            self._source.describe(),
            token.credentials.access_key_id,
            _when(token.expires_at - windows.prefetch),
        )
        if token.skew:
            logger.info(
                "STS's clock is %+.0f s from this machine's; expiry times are corrected.",
                token.skew,
            )


def _when(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat(timespec="seconds")
