"""The ready-made MFA callbacks: the terminal prompt (through a pseudo-terminal), a command, a
TOTP secret; and each one driving a real provider against the fake STS."""

from __future__ import annotations

import asyncio
import os
import pty
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest

from aio_sts_session import (
    ConfigurationError,
    MfaError,
    MfaRequest,
    SessionTokenProvider,
    command_callback,
    terminal_prompt,
    totp_callback,
)
from aio_sts_session.testing import FakeSts

from .conftest import SERIAL, FakeClock

REQUEST = MfaRequest(serial_number=SERIAL, attempt=1, max_attempts=3, duration_seconds=3600)
MakeProvider = Callable[..., SessionTokenProvider]


@pytest.fixture
def terminal() -> Iterator[tuple[int, str]]:
    master, slave = pty.openpty()
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


async def read(master: int) -> bytes:
    """What the prompt wrote, read on the loop (no thread, so thread counts stay exact)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(master, ready.set_result, None)
    try:
        await ready
    finally:
        loop.remove_reader(master)
    return os.read(master, 1024)


async def test_terminal_prompt_reads_a_line_without_blocking_the_loop(
    terminal: tuple[int, str],
) -> None:
    master, name = terminal
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    before_threads = threads()
    asking = asyncio.create_task(terminal_prompt(name)(REQUEST))
    prompt = await read(master)
    before = ticks
    await asyncio.sleep(0.05)
    assert ticks > before  # the loop runs while the prompt waits
    assert threads() == before_threads  # and no thread reads the terminal
    os.write(master, b"123 456\n")
    assert await asyncio.wait_for(asking, 10) == "123 456"  # the provider normalises it
    assert prompt.decode().startswith(f"MFA code for {SERIAL}")
    ticking.cancel()


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_terminal_prompt_leaves_nothing_behind(terminal: tuple[int, str], how: str) -> None:
    master, name = terminal
    loop = asyncio.get_running_loop()
    readers = set(loop._selector.get_map())  # type: ignore[attr-defined]
    fds, before_threads = open_fds(), threads()
    asking = asyncio.ensure_future(terminal_prompt(name)(REQUEST))
    await read(master)  # the prompt is shown
    if how == "timeout":
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asking, 0.05)
    else:
        asking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asking
    assert open_fds() == fds  # the terminal was closed
    assert threads() == before_threads
    assert set(loop._selector.get_map()) == readers  # type: ignore[attr-defined]  # no reader
    # a new prompt on the same terminal works: no stale reader took the line
    again = asyncio.ensure_future(terminal_prompt(name)(REQUEST))
    await read(master)
    os.write(master, b"654321\n")
    assert await asyncio.wait_for(again, 10) == "654321"


async def test_terminal_prompt_without_a_terminal_says_how_to_give_a_code() -> None:
    with pytest.raises(MfaError, match="--mfa-command"):
        await terminal_prompt("/nonexistent/tty")(REQUEST)
    assert not terminal_prompt("/nonexistent/tty").available()


async def test_terminal_prompt_says_why_it_asks_again(terminal: tuple[int, str]) -> None:
    master, name = terminal
    request = MfaRequest(SERIAL, 2, 3, 3600, reason="rejected", role_arn="arn:aws:iam::1:role/x")
    asking = asyncio.ensure_future(terminal_prompt(name)(request))
    prompt = (await read(master)).decode()
    os.write(master, b"111111\n")
    await asking
    assert "to assume arn:aws:iam::1:role/x" in prompt
    assert "rejected the last one; attempt 2/3" in prompt


async def test_a_provider_prompting_on_a_terminal(
    make_provider: MakeProvider, fake_sts: FakeSts, terminal: tuple[int, str]
) -> None:
    master, name = terminal
    provider = make_provider(mfa_callback=terminal_prompt(name))
    getting = asyncio.ensure_future(provider.credentials())
    await read(master)
    code = fake_sts.fresh_code(SERIAL)
    os.write(master, f"{code[:3]} {code[3:]}\n".encode())
    await asyncio.wait_for(getting, 10)
    assert [c.code for c in fake_sts.token_calls] == [code]


# -- command_callback ---------------------------------------------------------------------------


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "mfa.py"
    path.write_text(body)
    return [sys.executable, str(path)]


async def test_command_callback_takes_the_last_six_digit_number(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "import os\nprint('Touch your key (slot 1234567)')\n"
        "print(os.environ['AIO_STS_SESSION_MFA_SERIAL'], os.environ['AIO_STS_SESSION_MFA_ATTEMPT'])"
        "\nprint('code: 012345')\n",
    )
    assert await command_callback(argv)(REQUEST) == "012345"
    assert await command_callback(" ".join(argv))(REQUEST) == "012345"  # a string: shlex


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("import sys\nsys.stderr.write('no key inserted\\n')\nsys.exit(4)", "status 4: no key"),
        ("print('nothing useful')", "no six-digit code"),
    ],
)
async def test_command_callback_errors(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(MfaError, match=match):
        await command_callback(script(tmp_path, body))(REQUEST)


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_command_callback_kills_the_command(tmp_path: Path, how: str) -> None:
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)  # the command writes its pid here once it runs
    argv = script(
        tmp_path,
        f"import os, time\nopen({str(fifo)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)",
    )
    callback = command_callback(argv, timeout=0.5 if how == "timeout" else 60)
    asking = asyncio.ensure_future(callback(REQUEST))
    pid = int(await asyncio.to_thread(fifo.read_text))
    if how == "timeout":
        with pytest.raises(MfaError, match=r"printed no code within 0\.5 s"):
            await asking
    else:
        asking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asking
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped)


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever it was reparented to."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux's /proc")
@pytest.mark.parametrize("ends", ["timeout", "exit"])
async def test_command_callback_kills_what_escaped_its_process_group(
    tmp_path: Path, ends: str
) -> None:
    """Red-team review 2: ``setsid sleep 30 &`` left the process group, so killing the group
    missed it; it held the output pipes, so a 2 s timeout took 9 s and the process ran on.
    Whatever still holds the command's output is killed too."""
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    child = tmp_path / "child.py"
    child.write_text(
        f"import os, time\nopen({str(fifo)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
    )
    tail = "exec sleep 60" if ends == "timeout" else "sleep 0.2"
    argv = ["sh", "-c", f"setsid {sys.executable} {child} & {tail}"]
    asking = asyncio.ensure_future(command_callback(argv, timeout=2)(REQUEST))
    pid = int(await asyncio.to_thread(fifo.read_text))
    with pytest.raises(MfaError, match="within 2 s" if ends == "timeout" else "no six-digit"):
        await asking
    for _ in range(200):  # killed at once; reaped by whoever adopted it
        if _dead(pid):
            break
        await asyncio.sleep(0.05)
    assert _dead(pid)


def test_command_callback_arguments() -> None:
    with pytest.raises(ConfigurationError):
        command_callback("")
    with pytest.raises(ConfigurationError):
        command_callback(["ykman"], timeout=0)
    assert repr(command_callback("ykman oath accounts code -s aws")) == (
        "CommandCallback('ykman', timeout=60)"
    )


# -- totp_callback ------------------------------------------------------------------------------


async def test_totp_callback_never_hands_out_a_code_twice() -> None:
    secret = pyotp.random_base32()
    clock = FakeClock(1_800_000_010.0)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    callback = totp_callback(secret, clock=clock, sleep=sleep)
    first = await callback(REQUEST)
    second = await callback(REQUEST)  # the same 30 s step: wait for the next one
    totp = pyotp.TOTP(secret)
    assert first == totp.at(1_800_000_010)
    assert second == totp.at(1_800_000_040)
    assert slept == [20.5]
    assert secret not in repr(callback)


def test_totp_callback_refuses_a_secret_that_is_not_base32() -> None:
    with pytest.raises(ConfigurationError, match="base32"):
        totp_callback("not base32 at all!")


async def test_totp_callback_drives_a_provider(
    make_provider: MakeProvider, fake_sts: FakeSts, clock: FakeClock
) -> None:
    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    callback = totp_callback(fake_sts.devices[SERIAL], clock=clock, sleep=sleep)
    provider = make_provider(mfa_callback=callback)
    await provider.credentials()
    await provider.refresh()  # same step: the callback waits for the next code
    assert [c.outcome for c in fake_sts.token_calls] == ["ok", "ok"]
