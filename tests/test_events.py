"""Observing refreshes: ``on_event`` receives one :class:`ProviderEvent` per step of a refresh
(never one per waiting caller, never a secret), a handler that raises changes nothing, and
with OpenTelemetry each refresh is one span."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable

import pytest

from aio_sts_session import MfaError, ProviderEvent, SessionTokenProvider
from aio_sts_session.testing import FakeSts, Fault, issued_secrets

from .conftest import SERIAL, Device, FakeClock

MakeProvider = Callable[..., SessionTokenProvider]


def recorder() -> tuple[list[ProviderEvent], Callable[[ProviderEvent], None]]:
    events: list[ProviderEvent] = []
    return events, events.append


async def test_a_refresh_reports_started_mfa_requested_and_refreshed_once_for_all_waiters(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    events, handle = recorder()
    provider = make_provider(on_event=handle)
    results = await asyncio.gather(*(provider.credentials() for _ in range(50)))
    assert [e.kind for e in events] == ["refresh_started", "mfa_requested", "refreshed"]
    started, asked, refreshed = events
    assert {e.reason for e in events} == {"initial"}
    assert started.provider == f"mfa_serial={SERIAL!r}, duration_seconds=3600"
    assert asked.attempt == 1
    assert refreshed.source == "sts"
    assert refreshed.expires_at == results[0].expiration
    assert refreshed.seconds is not None and refreshed.seconds >= 0  # noqa: PT018
    texts = [repr(e) for e in events]
    for secret in issued_secrets(fake_sts):
        assert all(secret not in text for text in texts)
    assert all(results[0].secret_access_key not in text for text in texts)


async def test_reasons_prefetch_stale_forced_and_a_cache_hit(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    from aio_sts_session import MemoryCache

    events, handle = recorder()
    cache = MemoryCache()
    provider = make_provider(on_event=handle, cache=cache)
    await provider.credentials()
    clock.advance(3600 - 200)  # prefetch window
    await provider.credentials()
    await provider.settle()
    clock.advance(3600 - 30)  # stale window
    await provider.credentials()
    await provider.refresh()
    twin = make_provider(on_event=handle, cache=cache)  # another provider, the same cache
    await twin.credentials()
    done = [(e.reason, e.source) for e in events if e.kind == "refreshed"]
    assert done == [
        ("initial", "sts"),
        ("prefetch", "sts"),
        ("stale", "sts"),
        ("forced", "sts"),
        ("initial", "cache"),
    ]


async def test_a_failed_refresh_reports_its_error(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device
) -> None:
    events, handle = recorder()
    provider = make_provider(on_event=handle, mfa_attempts=1)
    device.answers = ["not a code"]
    with pytest.raises(MfaError):
        await provider.credentials()
    assert [e.kind for e in events] == ["refresh_started", "mfa_requested", "refresh_failed"]
    assert isinstance(events[-1].error, MfaError)
    assert events[-1].seconds is not None


async def test_a_handler_that_raises_is_logged_once_and_changes_nothing(
    make_provider: MakeProvider,
    fake_sts: FakeSts,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def broken(event: ProviderEvent) -> None:
        calls.append(event.kind)
        raise RuntimeError("a bug in the handler")

    provider = make_provider(on_event=broken)
    with caplog.at_level(logging.DEBUG, logger="aio_sts_session"):
        first = await provider.credentials()
        clock.advance(3600)
        second = await provider.credentials()
    assert first is not second  # both refreshes worked
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "on_event" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert len(calls) == 6


async def test_an_async_handler_runs_apart_from_the_refresh(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    seen: list[str] = []
    release = asyncio.Event()

    async def slow(event: ProviderEvent) -> None:
        await release.wait()  # a slow sink (a metrics push) holds up no refresh
        seen.append(event.kind)

    provider = make_provider(on_event=slow)
    creds = await provider.credentials()
    assert creds.access_key_id.startswith("ASIA")
    assert seen == []
    release.set()
    for _ in range(100):
        await asyncio.sleep(0)
    assert sorted(seen) == ["mfa_requested", "refresh_started", "refreshed"]


async def test_a_role_reports_its_own_refreshes_and_the_session_its_own(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    events, handle = recorder()
    session = make_provider(on_event=handle)
    role = session.assume_role(fake_sts.add_role("admin"))  # inherits on_event
    await role.credentials()
    by_provider = {(e.provider.split(",")[0], e.kind) for e in events}
    assert ("role_arn='arn:aws:iam::123456789012:role/admin'", "refreshed") in by_provider
    assert (f"mfa_serial={SERIAL!r}", "mfa_requested") in by_provider
    assert ("role_arn='arn:aws:iam::123456789012:role/admin'", "mfa_requested") not in by_provider
    await role.close()


# -- OpenTelemetry ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spans() -> object:
    """An in-memory exporter behind the global tracer provider (settable once per process)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        current = TracerProvider()
        trace.set_tracer_provider(current)
    current.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def test_one_span_per_refresh_with_its_attributes_and_an_error_status(
    make_provider: MakeProvider, fake_sts: FakeSts, device: Device, spans: object
) -> None:
    from opentelemetry.trace import StatusCode

    exporter = spans
    exporter.clear()  # type: ignore[attr-defined]
    provider = make_provider(mfa_attempts=1)
    await asyncio.gather(*(provider.credentials() for _ in range(20)))
    await provider.refresh()
    fake_sts.faults.extend(Fault(400, "InvalidParameterValue", "no") for _ in range(1))
    with pytest.raises(Exception, match="GetSessionToken failed"):
        await provider.refresh()
    finished = [s for s in exporter.get_finished_spans() if s.name == "aio_sts_session.refresh"]  # type: ignore[attr-defined]
    assert len(finished) == 3  # one per refresh, not per waiter
    first, second, failed = finished
    assert first.attributes["aio_sts_session.reason"] == "initial"
    assert first.attributes["aio_sts_session.source"] == "sts"
    assert first.attributes["aio_sts_session.expires_at"].endswith("+00:00")
    assert second.attributes["aio_sts_session.reason"] == "forced"
    assert [e.name for e in first.events] == ["mfa_requested"]
    assert failed.status.status_code is StatusCode.ERROR
    texts = [str(s.attributes) + str(s.events) for s in finished]
    for secret in issued_secrets(fake_sts):
        assert all(secret not in text for text in texts)


def test_without_opentelemetry_nothing_is_imported() -> None:
    code = (
        "import sys, asyncio\n"
        "sys.modules['opentelemetry'] = None  # not installed\n"
        "from aio_sts_session import _events\n"
        "assert _events._tracer() is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_fast_path_does_not_touch_events_or_spans() -> None:
    import inspect

    from aio_sts_session._engine import RefreshEngine

    source = inspect.getsource(RefreshEngine.credentials)
    fast = source.split("while True")[0]
    assert "Reporter" not in fast
    assert "_on_event" not in fast
