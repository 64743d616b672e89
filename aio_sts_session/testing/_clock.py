"""A clock a test moves by hand, shared by a provider and a :class:`FakeSts`."""

from __future__ import annotations

import asyncio
import time

__all__ = ["ManualClock"]


class ManualClock:
    """Wall-clock seconds that only move when the test says so.

    Pass the same instance as the provider's ``clock=`` and the fake's: ``advance(3600)``
    crosses an hour of refresh windows at once, and the credentials the fake issues expire by
    it too. ``await clock.sleep(seconds)`` (what :meth:`keep_fresh` sleeps with, when the clock
    has it) returns once the clock has been advanced that far, so a renewal task follows the
    clock instead of the machine's time.

    >>> clock = ManualClock(1_800_000_000.0)
    >>> clock()
    1800000000.0
    >>> clock.advance(90)
    >>> clock()
    1800000090.0
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else float(start)
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        return f"ManualClock({self.now!r})"

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (and wake the sleepers that are due)."""
        self.now += seconds
        due = [(at, f) for at, f in self._sleepers if at <= self.now]
        self._sleepers = [(at, f) for at, f in self._sleepers if at > self.now]
        for _, future in due:
            if not future.done():
                future.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Return once the clock reads ``seconds`` later than now (at once if not positive)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, future))
        try:
            await future
        finally:
            self._sleepers = [(at, f) for at, f in self._sleepers if f is not future]

    @property
    def sleepers(self) -> int:
        """How many ``sleep`` calls are waiting for the clock (a test can wait until a renewal
        task has gone to sleep before it advances the clock)."""
        return len(self._sleepers)
