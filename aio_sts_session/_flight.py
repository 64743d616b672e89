"""Single flight: one refresh task, any number of waiting callers.

:class:`Flight` is one refresh and its waiters; :class:`FlightSlot` owns "at most one refresh at
a time" for an engine. A context variable marks the code running inside a refresh (the MFA
callback and everything it awaits), so a caller that would wait for the very refresh it is part
of gets :class:`~aio_sts_session.ReentrantRefreshError` at once instead of a deadlock.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from ._models import CachedToken
from ._policy import RefreshKind
from .exceptions import ProviderClosedError, ReentrantRefreshError

__all__ = ["Flight", "FlightSlot"]

#: The flights whose refresh the current context is running inside (usually none).
_INSIDE: contextvars.ContextVar[tuple[Flight, ...]] = contextvars.ContextVar(
    "aio_sts_session_inside_refresh", default=()
)


class Flight:
    """One refresh in flight and the callers waiting for it.

    Each waiter awaits a future of its own, resolved when the refresh ends: cancelling a waiter
    cancels only its wait, never the refresh, and waking 10,000 waiters costs one callback
    each (``asyncio.shield`` would cost two hops and two futures per waiter). A waiter that
    asked for a ``fallback`` gets ``fallback()``'s token, if any, instead of the error.
    """

    def __init__(
        self,
        refresh: Callable[[], Coroutine[Any, Any, CachedToken]],
        on_done: Callable[[Flight], None],
        *,
        kind: RefreshKind = RefreshKind.BLOCKING,
        eager: bool = False,
        fallback: Callable[[], CachedToken | None] = lambda: None,
    ) -> None:
        self.kind = kind
        self.loop = asyncio.get_running_loop()
        self._waiters: list[tuple[asyncio.Future[CachedToken], bool]] = []
        self._on_done = on_done
        self._fallback = fallback
        self._make_refresh = refresh  # called at start: nothing to clean up if never started
        self._refresh: Coroutine[Any, Any, CachedToken] | None = None
        self._eager = eager
        self.finished = False  # set when the outcome is recorded and the waiters are woken
        self.task: asyncio.Task[CachedToken] | None = None

    def start(self) -> Flight:
        """Start the refresh task (once). Separate from construction, so the owner can record
        the flight before an eager start runs any of the refresh (which may ask for it), and a
        prefetch can be started on the loop's next iteration."""
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
        """A future for the refresh's result. Raises :class:`ReentrantRefreshError` if called
        from inside this refresh (it would wait for itself)."""
        if self in _INSIDE.get():
            raise ReentrantRefreshError(
                "Credentials were requested from inside their own refresh (the MFA callback, or "
                "something it awaits, uses a client of the attached session): that would wait "
                "forever. Give the callback a client built from another session, e.g. "
                "AioSession() with the long-term keys."
            )
        waiter: asyncio.Future[CachedToken] = self.loop.create_future()
        self._waiters.append((waiter, fallback))
        return waiter

    async def cancel(self) -> None:
        task = self.start().task  # a flight not started yet ends the same way: waiters are told
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def _done(self, task: asyncio.Task[CachedToken]) -> None:
        self.finished = True
        self._on_done(self)
        waiters, self._waiters = self._waiters, []
        if task.cancelled():
            if self._refresh is not None:  # cancelled before it ran: never "never awaited"
                self._refresh.close()
            error: BaseException | None = ProviderClosedError(
                "The refresh was cancelled (the provider was closed, or its event loop ended) "
                "while this caller waited for credentials; ask again."
            )
        else:
            error = task.exception()  # retrieved here, so asyncio never logs it as unhandled
        fallback = self._fallback() if error is not None else None
        for waiter, wants_fallback in waiters:
            if waiter.done():  # its caller was cancelled
                continue
            if error is None:
                waiter.set_result(task.result())
            elif wants_fallback and fallback is not None:
                waiter.set_result(fallback)
            else:
                waiter.set_exception(error)


class FlightSlot:
    """At most one refresh at a time: the flight in progress on the running event loop, if any.

    A flight whose event loop has ended (a CLI calling ``asyncio.run`` per command) counts as
    none, so the next loop starts afresh.
    """

    def __init__(self) -> None:
        self._flight: Flight | None = None

    def current(self) -> Flight | None:
        flight = self._flight
        if flight is None:
            return None
        if flight.finished or flight.loop.is_closed():
            self._flight = None
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
    ) -> Flight:
        # A refresh that callers wait for starts eagerly; a prefetch starts on the loop's next
        # iteration, so the caller that triggers it returns as fast as any other. Until then
        # it is pending all the same (callers join it); if the loop ends first, it is none.
        flight = Flight(
            refresh,
            self._finish(on_done),
            kind=kind,
            eager=kind is not RefreshKind.PREFETCH,
            fallback=fallback,
        )
        self._flight = flight  # recorded first: an eager start may already ask for it
        if kind is RefreshKind.PREFETCH:
            flight.loop.call_soon(flight.start)
            return flight
        return flight.start()

    def _finish(self, on_done: Callable[[Flight], None]) -> Callable[[Flight], None]:
        def finish(flight: Flight) -> None:
            if self._flight is flight:
                self._flight = None
            on_done(flight)

        return finish

    async def cancel(self) -> None:
        flight, self._flight = self._flight, None
        if flight is not None and not flight.loop.is_closed():
            await flight.cancel()
