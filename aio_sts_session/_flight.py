"""Single flight: one refresh task, any number of waiting callers."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from ._models import CachedToken
from .exceptions import ProviderClosedError

__all__ = ["Flight"]

logger = logging.getLogger("aio_sts_session")


class Flight:
    """One refresh in flight and the callers waiting for it (single flight).

    Each waiter awaits a future of its own, resolved when the refresh ends: cancelling a waiter
    cancels only its wait, never the refresh, and waking 10,000 waiters costs one callback
    each (``asyncio.shield`` would cost two hops and two futures per waiter).
    """

    def __init__(
        self,
        refresh: Coroutine[Any, Any, CachedToken],
        on_done: Callable[[Flight], None],
        *,
        eager: bool,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._waiters: list[asyncio.Future[CachedToken]] = []
        self._on_done = on_done
        if eager and sys.version_info >= (3, 12):
            # Run the refresh up to its first real wait (the STS request on the wire) now,
            # so STS's latency overlaps with the other callers queued behind this one.
            self.task = asyncio.Task(refresh, loop=self._loop, eager_start=True)
        else:
            self.task = self._loop.create_task(refresh)
        self.task.add_done_callback(self._done)

    def wait(self) -> asyncio.Future[CachedToken]:
        waiter: asyncio.Future[CachedToken] = self._loop.create_future()
        self._waiters.append(waiter)
        return waiter

    async def cancel(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def _done(self, task: asyncio.Task[CachedToken]) -> None:
        self._on_done(self)
        waiters, self._waiters = self._waiters, []
        if task.cancelled():
            error: BaseException | None = ProviderClosedError(
                "The provider was closed while this caller waited for credentials."
            )
        else:
            error = task.exception()  # retrieved here, so asyncio never logs it as unhandled
            if error is not None:
                logger.warning("Refreshing STS session credentials failed: %s", error)
        for waiter in waiters:
            if waiter.done():  # its caller was cancelled
                continue
            if error is None:
                waiter.set_result(task.result())
            else:
                waiter.set_exception(error)
