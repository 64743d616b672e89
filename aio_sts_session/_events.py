"""What a refresh reports: :class:`ProviderEvent` to the ``on_event`` handler, and one
OpenTelemetry span per refresh when ``opentelemetry-api`` is installed.

One event per step of a refresh, never one per waiting caller: they are sent from inside the
refresh (the flight's task). Nothing in them is secret: no key, token or code. A handler that
raises is logged once and changes nothing; an async handler runs as a task of its own, so a
slow one holds up no refresh.

Without ``opentelemetry-api`` nothing is imported and nothing costs anything; with it, the
tracer is looked up at the first refresh, and the fast path never touches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as _dt
import importlib.util
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal, Union

from ._log import logger

__all__ = [
    "EventHandler",
    "ProviderEvent",
    "Reporter",
    "report_mfa_requested",
]


EventKind = Literal["refresh_started", "mfa_requested", "refreshed", "refresh_failed"]
SPAN_NAME = "aio_sts_session.refresh"


@dataclasses.dataclass(frozen=True)
class ProviderEvent:
    """One step of a refresh, as the provider's ``on_event`` handler receives it.

    - ``kind``: ``"refresh_started"``, ``"mfa_requested"`` (a person is asked for a code:
      once per code asked), ``"refreshed"`` or ``"refresh_failed"``.
    - ``reason``: why the refresh runs: ``"initial"`` (no credentials yet), ``"prefetch"``
      (the prefetch window opened, or :meth:`keep_fresh`), ``"stale"`` (callers wait: the
      stale window, or expired), ``"forced"`` (``refresh()``).
    - ``provider``: what the provider's ``describe`` says (serial, duration, role).
    - ``source``: with ``"refreshed"``, where the credentials came from: ``"sts"`` or
      ``"cache"`` (another process, or an earlier run, had made them).
    - ``expires_at``: with ``"refreshed"``, the handed-out credentials' ``expiration``.
    - ``error``: with ``"refresh_failed"``, the exception (as the caller gets it).
    - ``seconds``: with ``"refreshed"`` and ``"refresh_failed"``, how long the refresh took
      (a person's time included); with ``"mfa_requested"``, how long it had run until then.
    - ``attempt``: with ``"mfa_requested"``, which code of this refresh (1, 2, …).

    Never a key, a token or a code. ``repr`` shows the fields as they are.
    """

    kind: EventKind
    reason: str
    provider: str
    source: Literal["sts", "cache"] | None = None
    expires_at: _dt.datetime | None = None
    error: BaseException | None = None
    seconds: float | None = None
    attempt: int | None = None


#: ``def handle(event) -> None`` or ``async def handle(event) -> None``.
EventHandler = Callable[[ProviderEvent], Union[Awaitable[None], None]]  # noqa: UP007


def _tracer() -> Any:
    """OpenTelemetry's tracer for this library, or ``None`` when ``opentelemetry-api`` is
    not installed (looked up once)."""
    global _TRACER
    if _TRACER is _UNSET:
        try:
            present = importlib.util.find_spec("opentelemetry.trace") is not None
        except (ImportError, ValueError):  # a stand-in module without a spec, say
            present = False
        if not present:
            _TRACER = None
        else:
            from opentelemetry import trace

            _TRACER = trace.get_tracer("aio_sts_session")
    return _TRACER


_UNSET: Any = object()
_TRACER: Any = _UNSET

#: The refresh the current task runs, if any: how the MFA step (deep in a source) reports.
_CURRENT: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "aio_sts_session_reporter", default=None
)


class Reporter:
    """Reports one refresh: its events to ``handler`` (if any) and its span (if OpenTelemetry
    is there). Used by the engine as ``with Reporter(...) as reporter:`` inside the flight."""

    def __init__(
        self,
        handler: EventHandler | None,
        reason: str,
        provider: str,
        *,
        failures: FailureLog,
    ) -> None:
        self.handler = handler
        self.reason = reason
        self.provider = provider
        self.failures = failures
        self.started = time.monotonic()
        self.span: Any = None
        self._attempts = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[Reporter]:
        tracer = _tracer()
        token = _CURRENT.set(self)
        try:
            if tracer is None:
                self.emit("refresh_started")
                yield self
                return
            attributes = {"aio_sts_session.reason": self.reason,
                          "aio_sts_session.provider": self.provider}  # fmt: skip
            with tracer.start_as_current_span(
                SPAN_NAME,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                self.span = span
                self.emit("refresh_started")
                yield self
        finally:
            _CURRENT.reset(token)

    def refreshed(self, source: Literal["sts", "cache"], expires_at: _dt.datetime) -> None:
        if self.span is not None:
            self.span.set_attribute("aio_sts_session.source", source)
            self.span.set_attribute("aio_sts_session.expires_at", expires_at.isoformat())
        self.emit("refreshed", source=source, expires_at=expires_at, seconds=self._seconds())

    def failed(self, error: BaseException) -> None:
        if self.span is not None:
            from opentelemetry.trace import Status, StatusCode

            self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            self.span.record_exception(error)
        self.emit("refresh_failed", error=error, seconds=self._seconds())

    def mfa_requested(self) -> None:
        self._attempts += 1
        if self.span is not None:
            self.span.add_event("mfa_requested", {"aio_sts_session.attempt": self._attempts})
        self.emit("mfa_requested", seconds=self._seconds(), attempt=self._attempts)

    def _seconds(self) -> float:
        return time.monotonic() - self.started

    def emit(self, kind: EventKind, **fields: Any) -> None:
        if self.handler is None:
            return
        event = ProviderEvent(kind, self.reason, self.provider, **fields)
        try:
            outcome = self.handler(event)
            if inspect.isawaitable(outcome):
                task = asyncio.ensure_future(outcome)
                self.failures.hold(task)
        except Exception as exc:
            self.failures.record(exc)


class FailureLog:
    """The provider's event handler failures: the first is logged at WARNING, later ones at
    DEBUG; the tasks of async handlers are held until they end."""

    def __init__(self) -> None:
        self.logged = False
        self.tasks: set[asyncio.Future[Any]] = set()

    def record(self, exc: BaseException) -> None:
        level = logging.DEBUG if self.logged else logging.WARNING
        self.logged = True
        logger.log(
            level,
            "The on_event handler raised %s; the refresh goes on (later failures are logged at "
            "DEBUG).",
            type(exc).__name__,
        )

    def hold(self, task: asyncio.Future[Any]) -> None:
        self.tasks.add(task)

        def done(finished: asyncio.Future[Any]) -> None:
            self.tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self.record(finished.exception())  # type: ignore[arg-type]

        task.add_done_callback(done)

    async def close(self) -> None:
        tasks = [t for t in self.tasks if t.get_loop() is asyncio.get_running_loop()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def report_mfa_requested() -> None:
    """Called where a person is asked for a code: the refresh running it reports it."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter.mfa_requested()
