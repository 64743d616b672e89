"""Renewal before anyone asks: what :meth:`keep_fresh` runs (and ``exec --server``).

Each credential of a chain (a role and the MFA session beneath it) is renewed on its own
schedule: when its prefetch window opens, or when its backoff ends after a failure. A renewal
waiting for a person (the MFA session's prompt) holds up no other. A failed renewal, whatever
it raised, is logged and tried again after the provider's backoff: the keeper never dies by
itself (``close()`` ends it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from ._log import logger
from .exceptions import ProviderClosedError, StsSessionError

__all__ = ["MAX_NAP", "Keeper", "Renewable"]


#: Sleep at most this long between checks (a suspended laptop wakes up to a clock jump).
MAX_NAP = 60.0
#: After a failure whose provider has no backoff to wait for (no credentials yet), wait this
#: long before trying again.
FIRST_RETRY = 10.0

Sleep = Callable[[float], Awaitable[Any]]


class Renewable(Protocol):
    """What a keeper needs of a provider (a ``Renewable``): when it is due, and a
    renewal."""

    def next_refresh_at(self) -> float | None: ...

    async def _renew(self) -> Any: ...


class Keeper:
    """Keeps ``providers`` fresh, each on its own schedule (see the module's docstring)."""

    def __init__(
        self,
        providers: Sequence[Renewable],
        clock: Callable[[], float],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.providers = list(providers)
        self.clock = clock
        self.sleep = sleep

    async def renew_if_due(self, provider: Renewable) -> float:
        """Renew ``provider`` if it is due (or get its first credentials); returns seconds
        until it is due next (at least 1)."""
        due = provider.next_refresh_at()
        if due is None or due <= self.clock():
            try:
                await provider._renew()
            except ProviderClosedError:
                raise
            except StsSessionError as exc:
                logger.warning("Renewing ahead of expiry failed: %s", exc)
            except Exception as exc:  # a bug must not end the renewals of a long job
                logger.warning(
                    "Renewing ahead of expiry failed unexpectedly (%s); trying again later.",
                    type(exc).__name__,
                )
            due = provider.next_refresh_at()
            if due is None:  # no credentials yet, and no backoff recorded to wait for
                return FIRST_RETRY
        return max(due - self.clock(), 1.0)

    async def step(self) -> float:
        """Renew every provider that is due, together; seconds until the next is due."""
        waits = await asyncio.gather(*(self.renew_if_due(p) for p in self.providers))
        return min(waits, default=MAX_NAP)

    async def run(self) -> None:
        async def keep(provider: Renewable) -> None:
            while True:
                await self.sleep(min(await self.renew_if_due(provider), MAX_NAP))

        try:
            await asyncio.gather(*(keep(p) for p in self.providers))
        except ProviderClosedError:
            return  # the provider was closed: nothing left to keep
