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
import math
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from . import _policy
from ._cache import TokenCache
from ._clock import Clock
from ._events import EventHandler, FailureLog, Reporter
from ._flight import Flight, FlightLost, FlightSlot
from ._log import logger
from ._models import AttachableSession, CachedToken, SessionCredentials
from ._policy import Action, RefreshKind, State, Windows
from ._sts import KeysChanged
from .exceptions import (
    CacheLockTimeoutError,
    ProviderClosedError,
    RefreshPendingError,
    SourceCredentialsError,
    StsError,
    StsSessionError,
    StsUnavailableError,
)
from .integrations import aiobotocore as _aiobotocore

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["CredentialSource", "Plan", "ProviderStats", "RefreshEngine", "Snapshot"]


SessionT = TypeVar("SessionT", bound=AttachableSession)


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
        max_wait: float | None = None,
        on_event: EventHandler | None = None,
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
        self._max_wait = max_wait
        self._on_event = on_event
        self._handler_failures = FailureLog()
        self._keepers: set[asyncio.Task[None]] = set()

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
        while True:
            served = self._decide()
            if isinstance(served, SessionCredentials):
                return served
            try:
                return await self._wait(*served, in_hand=self._valid_token())
            except FlightLost:
                continue  # the loop that ran the refresh ended first: decide again, here

    async def _wait(
        self, flight: Flight, served: asyncio.Future[CachedToken], *, in_hand: CachedToken | None
    ) -> SessionCredentials:
        """Wait for the refresh in flight, but never past ``max_wait`` (then
        :class:`RefreshPendingError`), nor past the hand-over margin of valid credentials in
        hand (then those: STS hanging through its connect and read timeouts must not outlast
        them). The refresh goes on for the next caller either way."""
        handover = None
        if in_hand is not None:
            handover = in_hand.expires_at - HANDOVER_SECONDS - self._clock()
            if handover <= 0:  # the margin is already reached: what is in hand, at once
                if served.done() and not served.cancelled() and served.exception() is None:
                    return served.result().credentials  # the refresh ended eagerly
                served.cancel()  # only this caller's wait; the refresh goes on
                return in_hand.credentials
        limits = [t for t in (handover, self._max_wait) if t is not None]
        try:
            return (await flight.result(served, min(limits) if limits else None)).credentials
        except asyncio.TimeoutError:
            if (
                in_hand is not None
                and handover is not None
                and handover <= (self._max_wait if self._max_wait is not None else math.inf)
            ):
                if not flight.slow_noted:
                    flight.slow_noted = True  # once per refresh, not once per waiting caller
                    logger.info(
                        "The refresh of %s is taking long; serving the current credentials "
                        "(%.0f s left) meanwhile.",
                        self._source.describe(),
                        in_hand.expires_at - self._clock(),
                    )
                return in_hand.credentials
            raise self._pending_error(flight) from None

    def _pending_error(self, flight: Flight) -> RefreshPendingError:
        return RefreshPendingError(
            f"A refresh of {self._source.describe()} ({flight.reason}) has taken more than "
            f"max_wait={self._max_wait:g} s (it may be waiting for an MFA code); this caller "
            "stops waiting.",
            hint="The refresh goes on: a later call gets its credentials. Raise max_wait to "
            "wait longer, or call keep_fresh() so that renewals happen before anyone waits.",
            topic="refresh.pending",
        )

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
        if rejected is None and current is not None:
            rejected = current.credentials  # "new" means: not the ones in hand
        while True:
            flight = self._start(RefreshKind.FORCED, rejected)  # or join the one in flight
            try:
                return (await flight.result(flight.wait(), self._max_wait)).credentials
            except FlightLost:
                continue
            except asyncio.TimeoutError:
                raise self._pending_error(flight) from None

    async def _renew(self) -> None:
        """Renew now as the prefetch window would (the first credentials, if there are
        none), joining a refresh in flight; raises if it fails. What :meth:`keep_fresh`
        runs."""
        self._check_open()
        while True:
            kind = RefreshKind.PREFETCH if self._snap.token is not None else RefreshKind.BLOCKING
            flight = self._start(kind, None)
            try:
                await flight.result(flight.wait(), None)
                return
            except FlightLost:
                continue

    def keep_fresh(self) -> asyncio.Task[None]:
        """Renew this provider's credentials before anyone asks: its first credentials now,
        then a renewal when each credential's prefetch window opens (a role's and the MFA
        session's beneath it, each on its own schedule), and again after a backoff when one
        fails. Returns the task (on the running loop); :meth:`close` cancels it. With a
        clock that has an ``async sleep`` (the test kit's :class:`ManualClock`), it sleeps on
        that clock."""
        self._check_open()
        from ._keeper import Keeper

        sleep = getattr(self._clock, "sleep", None) or asyncio.sleep
        keeper = Keeper(self._chain_members(), self._clock, sleep)
        task = asyncio.get_running_loop().create_task(keeper.run())
        self._keepers.add(task)
        task.add_done_callback(self._keepers.discard)
        return task

    def _chain_members(self) -> list[RefreshEngine]:
        """This provider and those its credentials are made from (a role's: its source)."""
        return [self]

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
        for keeper in list(self._keepers):
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        await self._slot.cancel()
        await self._handler_failures.close()
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
            return snap.retry_at if snap.failures else None
        due = snap.token.expires_at - snap.windows.prefetch
        return max(due, snap.retry_at) if snap.failures else due

    async def settle(self) -> None:
        """Wait for a refresh in flight, if any; its outcome is recorded as usual (a failure
        is not raised here). A one-shot program calls it before exiting, so that a refresh
        started in the background is not cut off half-way."""
        flight = self._slot.current()
        if flight is not None:
            with contextlib.suppress(Exception):
                await flight.result(flight.wait(), None)

    # -- deciding ------------------------------------------------------------------------------

    def _set(self, snap: Snapshot) -> None:
        """Replace the state whole. The fast path reads two plain attributes, copies of the
        snapshot's, written here only (an attribute lookup fewer per call: see Benchmarks)."""
        # Callers of other threads read these two without a lock: the fast path is shut first
        # and opened last, so it never pairs a new deadline with old credentials.
        self._serve_until = -math.inf
        self._snap = snap
        self._fresh = snap.fresh
        self._serve_until = snap.serve_until

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderClosedError(
                f"This {type(self).__name__} is closed; create a new one (or don't close it "
                "while clients still use it)."
            )

    def _decide(self) -> SessionCredentials | tuple[Flight, asyncio.Future[CachedToken]]:
        """The slow path of :meth:`credentials`: the credentials a caller may have at once,
        or the flight and a future to wait on. Synchronous, so serving costs no extra
        coroutine."""
        self._check_open()
        snap = self._snap
        flight = self._slot.current()
        token = snap.token
        if token is None and flight is not None:
            return flight, flight.wait(fallback=True)  # a herd of first callers
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
            flight = self._start(RefreshKind.BLOCKING, None)  # or join one started meanwhile
        return flight, flight.wait(fallback=True)

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
        """The refresh in flight, or a new one of ``kind`` (on any loop or thread, one)."""
        reason = kind.value
        if kind is RefreshKind.BLOCKING:
            reason = "initial" if self._snap.token is None else "stale"
        return self._slot.start(
            lambda: self._refresh(kind, rejected, reason),
            self._flight_done,
            kind=kind,
            fallback=self._valid_token,
            reason=reason,
        )

    def _valid_token(self) -> CachedToken | None:
        token = self._snap.token
        if token is not None and token.expires_at > self._clock():
            return token
        return None

    # -- refreshing ----------------------------------------------------------------------------

    async def _refresh(
        self, kind: RefreshKind, rejected: SessionCredentials | None, reason: str
    ) -> CachedToken:
        reporter = Reporter(
            self._on_event, reason, self._source.describe(), failures=self._handler_failures
        )
        with reporter.running():
            try:
                token, source = await self._refresh_keys_changed(kind, rejected)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                reporter.failed(exc)
                raise
            reporter.refreshed(source, token.credentials.expiration)
            return token

    async def _refresh_keys_changed(
        self, kind: RefreshKind, rejected: SessionCredentials | None
    ) -> tuple[CachedToken, Literal["sts", "cache"]]:
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
    ) -> tuple[CachedToken, Literal["sts", "cache"]]:
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
                return cached, "cache"
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
            return token, "sts"

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
