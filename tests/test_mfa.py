import asyncio
import functools
import textwrap
import threading
from pathlib import Path

import pytest

from aio_sts_session import MfaError, MfaRequest
from aio_sts_session._mfa import ask_for_code, is_async_callable, is_well_formed_code

REQ = MfaRequest(serial_number="GAHT12345678", attempt=1, max_attempts=3, duration_seconds=900)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("123456", True),
        ("000000", True),
        ("12345", False),
        ("1234567", False),
        ("12345a", False),
        (" 123456", False),
        ("123456\n", False),
        ("١٢٣٤٥٦", False),  # Arabic-Indic digits: str.isdigit() would accept them
        (123456, False),
        (b"123456", False),
        (None, False),
        ("", False),
    ],
)
def test_well_formed_code(value: object, ok: bool) -> None:
    assert is_well_formed_code(value) is ok


def test_is_async_callable() -> None:
    async def a(r: MfaRequest) -> str:
        return "1"

    class C:
        async def __call__(self, r: MfaRequest) -> str:
            return "1"

    assert is_async_callable(a)
    assert is_async_callable(functools.partial(a))
    assert is_async_callable(C())
    assert not is_async_callable(lambda r: "1")


async def test_async_callback_awaited() -> None:
    async def cb(r: MfaRequest) -> str:
        return f"{r.attempt:06d}"

    assert await ask_for_code(cb, REQ, None) == "000001"


async def test_sync_callback_runs_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    release = threading.Event()
    seen: list[int] = []
    ticks = 0

    def blocking(r: MfaRequest) -> str:
        seen.append(threading.get_ident())
        release.wait(5)  # blocks like input() would
        return "654321"

    task = asyncio.ensure_future(ask_for_code(blocking, REQ, None))
    while not seen:  # the loop keeps running while the callback blocks
        ticks += 1
        await asyncio.sleep(0)
    release.set()
    assert await task == "654321"
    assert seen[0] != loop_thread
    assert ticks > 0


async def test_sync_callback_returning_awaitable() -> None:
    async def later() -> str:
        return "111111"

    assert await ask_for_code(lambda r: later(), REQ, None) == "111111"


async def test_callback_raising_is_mfa_error_with_cause() -> None:
    async def cb(r: MfaRequest) -> str:
        raise OSError("terminal closed")

    with pytest.raises(MfaError, match="raised OSError") as info:
        await ask_for_code(cb, REQ, None)
    assert isinstance(info.value.__cause__, OSError)


async def test_callback_timeout_is_mfa_error() -> None:
    never = asyncio.Event()

    async def cb(r: MfaRequest) -> str:
        await never.wait()
        return "123456"

    with pytest.raises(MfaError, match=r"within 0\.01 s") as info:
        await ask_for_code(cb, REQ, 0.01)
    assert isinstance(info.value.__cause__, asyncio.TimeoutError)


def test_a_sync_callback_that_times_out_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    """A plain callback blocked in input() past mfa_timeout: the process still exits at once
    (asyncio.to_thread's executor would be joined until someone pressed Enter)."""
    import subprocess
    import sys

    script = tmp_path / "blocked.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, threading
            from aio_sts_session import MfaError, MfaRequest
            from aio_sts_session._mfa import ask_for_code

            never = threading.Event()

            def blocked(request):
                never.wait()  # as input() with nobody at the keyboard
                return "123456"

            async def main():
                request = MfaRequest("GAHT12345678", 1, 1, 900)
                try:
                    await ask_for_code(blocked, request, 0.2)
                except MfaError as exc:
                    print("MfaError:", exc)

            asyncio.run(main())
            """
        )
    )
    # It exits at all, with the callback blocked for ever: a daemon thread (the timeout is a
    # hang detector, generous for a loaded machine, not a speed bound).
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "within 0.2 s" in done.stdout


def test_public_names_are_documented_and_shown_as_the_package() -> None:
    import inspect
    import types

    import aio_sts_session

    for name in aio_sts_session.__all__:
        obj = getattr(aio_sts_session, name)
        if not isinstance(obj, type) or isinstance(obj, types.GenericAlias):  # 3.10: aliases too
            continue
        assert obj.__module__ == "aio_sts_session", name
        assert obj.__doc__, name
        assert obj.__doc__.strip(), name
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not callable(member):
                continue
            assert inspect.getdoc(member), f"{name}.{attr} has no docstring"
    provider = aio_sts_session.SessionTokenProvider
    for method in ["credentials", "refresh", "prepare", "attach", "close", "peek", "state"]:
        assert inspect.getdoc(getattr(provider, method)), method
