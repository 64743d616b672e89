"""Single flight: one refresh task, any number of waiting callers, on any event loop.

:class:`Flight` is one refresh and its waiters; :class:`FlightSlot` owns "at most one refresh at
a time" for an engine, across every event loop and thread that uses it. A context variable
marks the code running inside a refresh (the MFA callback and everything it awaits), so a
caller that would wait for the very refresh it is part of gets
:class:`~aio_sts_session.ReentrantRefreshError` at once instead of a deadlock.

**Several event loops.** A refresh runs on the loop of the caller that started it (the MFA
callback may await things of that loop: a web service's own request handlers, say). A caller
on another loop, in another thread, joins it all the same: it waits on a future of its own
loop, which the flight resolves thread-safely when the refresh ends, so one prompt serves
every loop. If the loop that runs the refresh ends first (``asyncio.run`` returned), the
waiters of the other loops are told so (:class:`FlightLost`) and decide again on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ._models import CachedToken
from ._policy import RefreshKind
from .exceptions import ProviderClosedError, ReentrantRefreshError

__all__ = ["Flight", "FlightLost", "FlightSlot"]

#: The flights whose refresh the current context is running inside (usually none).
_INSIDE: contextvars.ContextVar[tuple[Flight, ...]] = contextvars.ContextVar(
    "aio_sts_session_inside_refresh", default=()
)
#: How often a waiter on another loop looks whether the refresh's own loop has ended.
CROSS_LOOP_CHECK = 1.0


class FlightLost(Exception):
    """Internal: the event loop that ran the refresh ended before it did (its
    ``asyncio.run`` returned); the caller decides again, on its own loop."""


def _settle(
    waiter: asyncio.Future[CachedToken], value: CachedToken | None, error: BaseException | None
) -> None:
    if waiter.done():  # its caller was cancelled, or gave up
        return
    if error is None:
        assert value is not None
        waiter.set_result(value)
    else:
        waiter.set_exception(error)


def _settle_all(settled: list[tuple[Any, ...]]) -> None:
    for waiter, value, error in settled:
        _settle(waiter, value, error)


class Flight:
    """One refresh in flight and the callers waiting for it.

    Each waiter awaits a future of its own loop, resolved when the refresh ends: cancelling a
    waiter cancels only its wait, never the refresh, and waking 10,000 waiters costs one
    callback each (``asyncio.shield`` would cost two hops and two futures per waiter). A
    waiter that asked for a ``fallback`` gets ``fallback()``'s token, if any, instead of the
    error.
    """

    def __init__(
        self,
        refresh: Callable[[], Coroutine[Any, Any, CachedToken]],
        on_done: Callable[[Flight], None],
        *,
        kind: RefreshKind = RefreshKind.BLOCKING,
        reason: str = "",
        eager: bool = False,
        fallback: Callable[[], CachedToken | None] = lambda: None,
        closing: Callable[[], bool] = lambda: False,
    ) -> None:
        self.kind = kind
        self.reason = reason or kind.value
        self.loop = asyncio.get_running_loop()
        self._lock = threading.Lock()  # waiters join from other threads' loops
        self._waiters: list[tuple[asyncio.Future[CachedToken], asyncio.AbstractEventLoop, bool]]
        self._waiters = []
        self._watched: set[asyncio.AbstractEventLoop] = set()  # other loops with waiters
        self._outcome: tuple[CachedToken | None, BaseException | None, CachedToken | None]
        self._outcome = (None, None, None)
        self._lost = False  # cancelled while the provider was open: its loop ended, say
        self._on_done = on_done
        self._fallback = fallback
        self._closing = closing
        self._make_refresh = refresh  # called at start: nothing to clean up if never started
        self._refresh: Coroutine[Any, Any, CachedToken] | None = None
        self._eager = eager
        self.finished = False  # set when the outcome is recorded and the waiters are woken
        self.slow_noted = False  # "taking long" is said once per refresh, not once per waiter
        self.task: asyncio.Task[CachedToken] | None = None

    def start(self) -> Flight:
        """Start the refresh task (once), on this flight's loop. Separate from construction,
        so the owner can record the flight before an eager start runs any of the refresh
        (which may ask for it), and a prefetch can be started on the loop's next iteration."""
        if self.task is not None:
            return self
        self._refresh = self._make_refresh()
        coro = self._run(self._refresh)
        if self._eager and sys.version_info >= (3, 12):
            # Run the refresh up to its first real wait (the STS request on the wire) now,
            # so STS's latency overlaps with the other callers queued behind this one.
            self.task = asyncio.Task(coro, loop=self.loop, eager_start=True)
        else:
            self.task = self.loop.create_task(coro)
        self.task.add_done_callback(self._done)  # scheduled at once if it finished eagerly
        return self

    async def _run(self, refresh: Coroutine[Any, Any, CachedToken]) -> CachedToken:
        _INSIDE.set((*_INSIDE.get(), self))  # this task's own context: seen by what it awaits
        return await refresh

    def wait(self, *, fallback: bool = False) -> asyncio.Future[CachedToken]:
        """A future, of the running loop, for the refresh's result. Raises
        :class:`ReentrantRefreshError` if called from inside this refresh (it would wait for
        itself)."""
        if self in _INSIDE.get():
            raise ReentrantRefreshError(
                "Credentials were requested from inside their own refresh (the MFA callback, or "
                "something it awaits, uses a client of the attached session): that would wait "
                "forever. Give the callback a client built from another session, e.g. "
                "AioSession() with the long-term keys."
            )
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[CachedToken] = loop.create_future()
        with self._lock:
            if not self.finished:
                self._waiters.append((waiter, loop, fallback))
                if loop is not self.loop and loop not in self._watched:
                    self._watched.add(loop)  # one look per loop, not one per waiter
                    loop.call_later(CROSS_LOOP_CHECK, self._look_for_lost, loop)
                return waiter
        _settle(waiter, *self._answer(fallback, loop))
        return waiter

    def _look_for_lost(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop`` (another than the refresh's), every :data:`CROSS_LOOP_CHECK` seconds:
        if the refresh's loop has ended without finishing it (closed with the refresh still
        pending), this loop's waiters get :class:`FlightLost` and decide again."""
        if self.finished:
            return
        if not self.loop.is_closed():
            loop.call_later(CROSS_LOOP_CHECK, self._look_for_lost, loop)
            return
        with self._lock:
            if self.finished:
                return
            mine = [w for w in self._waiters if w[1] is loop]
            self._waiters = [w for w in self._waiters if w[1] is not loop]
            self._watched.discard(loop)
        for waiter, _, _ in mine:
            _settle(waiter, None, FlightLost())

    async def result(
        self, waiter: asyncio.Future[CachedToken], timeout: float | None
    ) -> CachedToken:
        """Await ``waiter`` (of :meth:`wait`) for at most ``timeout`` seconds
        (``asyncio.TimeoutError``; the refresh goes on). A waiter on another loop than the
        refresh's also learns if that loop ends first (:class:`FlightLost`)."""
        if timeout is None:
            return await waiter
        return await asyncio.wait_for(waiter, timeout)

    async def cancel(self) -> None:
        """Cancel the refresh (the provider is closing); on another loop, ask that loop to."""
        if self.loop.is_closed():
            return
        if self.loop is not _running_loop():
            with contextlib.suppress(RuntimeError):  # that loop is closing meanwhile
                self.loop.call_soon_threadsafe(self._cancel_here)
            return
        task = self.start().task  # a flight not started yet ends the same way: waiters are told
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def _cancel_here(self) -> None:
        self.start()
        assert self.task is not None
        self.task.cancel()

    def _answer(
        self, wants_fallback: bool, loop: asyncio.AbstractEventLoop
    ) -> tuple[CachedToken | None, BaseException | None]:
        value, error, fallback = self._outcome
        if error is not None and wants_fallback and fallback is not None:
            return fallback, None
        if self._lost and loop is not self.loop:
            return None, FlightLost()  # not this caller's loop that ended: it decides again
        return value, error

    def _done(self, task: asyncio.Task[CachedToken]) -> None:
        value: CachedToken | None = None
        error: BaseException | None
        if task.cancelled():
            if self._refresh is not None:  # cancelled before it ran: never "never awaited"
                self._refresh.close()
            error = ProviderClosedError(
                "The refresh was cancelled (the provider was closed, its event loop ended, or "
                "the MFA callback was cancelled) while this caller waited for credentials; ask "
                "again."
            )
            self._lost = not self._closing()  # callers of other loops decide again
        else:
            error = task.exception()  # retrieved here, so asyncio never logs it as unhandled
            value = task.result() if error is None else None
        fallback = self._fallback() if error is not None else None
        self._on_done(self)  # the owner's state first: woken waiters see it
        with self._lock:
            self._outcome = (value, error, fallback)
            self.finished = True
            waiters, self._waiters = self._waiters, []
        elsewhere: dict[asyncio.AbstractEventLoop, list[tuple[Any, ...]]] = {}
        for waiter, loop, wants_fallback in waiters:
            answer = self._answer(wants_fallback, loop)
            if loop is self.loop:
                _settle(waiter, *answer)
            else:
                elsewhere.setdefault(loop, []).append((waiter, *answer))
        for loop, settled in elsewhere.items():  # one wake-up per other loop, not per waiter
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed meanwhile: nobody waits
                    loop.call_soon_threadsafe(_settle_all, settled)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class FlightSlot:
    """At most one refresh at a time, across every event loop and thread: the flight in
    progress, if any.

    A flight whose event loop has ended (a CLI calling ``asyncio.run`` per command) counts as
    none, so the next loop starts afresh.
    """

    def __init__(self) -> None:
        self._flight: Flight | None = None
        self._lock = threading.Lock()  # two threads never both start a flight
        self.closing = False

    def current(self) -> Flight | None:
        flight = self._flight
        if flight is None:
            return None
        if flight.finished or flight.loop.is_closed():
            return None
        return flight

    def pending(self) -> bool:
        return self.current() is not None

    def start(
        self,
        refresh: Callable[[], Coroutine[Any, Any, CachedToken]],
        on_done: Callable[[Flight], None],
        *,
        kind: RefreshKind,
        fallback: Callable[[], CachedToken | None],
        reason: str = "",
    ) -> Flight:
        """The flight in progress, or a new one started on the running loop. A refresh that
        callers wait for starts eagerly; a prefetch starts on the loop's next iteration, so the
        caller that triggers it returns as fast as any other. Until then it is pending all the
        same (callers join it); if the loop ends first, it is none."""
        with self._lock:
            current = self.current()
            if current is not None:
                return current
            flight = Flight(
                refresh,
                self._finish(on_done),
                kind=kind,
                reason=reason,
                eager=kind is not RefreshKind.PREFETCH,
                fallback=fallback,
                closing=lambda: self.closing,
            )
            self._flight = flight  # recorded first: an eager start may already ask for it
        if kind is RefreshKind.PREFETCH:
            flight.loop.call_soon(flight.start)
            return flight
        return flight.start()

    def _finish(self, on_done: Callable[[Flight], None]) -> Callable[[Flight], None]:
        def finish(flight: Flight) -> None:
            with self._lock:
                if self._flight is flight:
                    self._flight = None
            on_done(flight)

        return finish

    async def cancel(self) -> None:
        self.closing = True
        flight, self._flight = self._flight, None
        if flight is not None and not flight.finished:
            await flight.cancel()
