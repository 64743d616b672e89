"""Ready-made MFA callbacks: a terminal prompt, a command that prints the code, a TOTP secret.

Each is an object with an async ``__call__(request) -> str`` (so the provider awaits it on the
event loop) and a ``repr`` that shows no secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._models import MfaRequest
from ._text import quote
from .exceptions import ConfigurationError, MfaError

__all__ = [
    "DIALOGS",
    "CommandCallback",
    "DialogPrompt",
    "TerminalPrompt",
    "TotpCallback",
    "command_callback",
    "prompt_text",
    "run_command",
    "terminal_prompt",
    "totp_callback",
]

#: Where a terminal prompt reads and writes: the controlling terminal, never stdout/stderr
#: (botocore pipes both when it runs a credential_process).
DEFAULT_TTY = "/dev/tty"
_SIX_DIGITS = re.compile(rb"(?<![0-9])[0-9]{6}(?![0-9])")
HOW_TO_PROVIDE_A_CODE = (
    "run it from a terminal, or give a command that prints the code (--mfa-command, or "
    "mfa_process in the profile)"
)


def prompt_text(request: MfaRequest) -> str:
    """What a prompt says: the profile (when there is one), the device, the role for a direct
    AssumeRole, and why it asks again."""
    target = f" to assume {request.role_arn}" if request.role_arn else ""
    again = ""
    if request.reason == "rejected":
        again = f" (STS rejected the last one; attempt {request.attempt}/{request.max_attempts})"
    elif request.reason == "malformed":
        again = f" (six digits, please; attempt {request.attempt}/{request.max_attempts})"
    if request.profile:
        return f"MFA code for profile {request.profile} ({request.serial_number}){target}{again}: "
    return f"MFA code for {request.serial_number}{target}{again}: "


class TerminalPrompt:
    """Asks on the controlling terminal (``/dev/tty``), never on stdout or stderr, so it works
    when both are piped (botocore's ``credential_process``). Reads without blocking the event
    loop (a reader on the terminal's file descriptor, no thread); a timeout or a cancel removes
    the reader and closes the terminal at once. With no terminal: :class:`MfaError` saying how
    to provide a code instead."""

    def __init__(self, tty: str = DEFAULT_TTY) -> None:
        self.tty = tty

    def __repr__(self) -> str:
        return f"TerminalPrompt(tty={self.tty!r})"

    def available(self) -> bool:
        """Whether the terminal can be opened (there is a controlling terminal)."""
        try:
            os.close(os.open(self.tty, os.O_RDWR | getattr(os, "O_NOCTTY", 0)))
        except OSError:
            return False
        return True

    async def __call__(self, request: MfaRequest) -> str:
        if sys.platform == "win32":  # pragma: no cover - no add_reader on a console
            raise MfaError(
                "The terminal prompt needs a POSIX terminal; on Windows give a command that "
                "prints the code (--mfa-command, mfa_process, or command_callback)."
            )
        try:
            fd = os.open(self.tty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise MfaError(
                f"No terminal to ask for the MFA code on ({self.tty}: {exc.strerror}): "
                f"{HOW_TO_PROVIDE_A_CODE}."
            ) from None
        loop = asyncio.get_running_loop()
        try:
            _write_all(fd, prompt_text(request).encode())
            return await _read_line(loop, fd)
        finally:
            loop.remove_reader(fd)
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """A prompt is a few dozen bytes: a terminal takes it at once."""
    while data:
        try:
            written = os.write(fd, data)
        except BlockingIOError:  # pragma: no cover - a terminal stopped with ^S
            time.sleep(0.01)
            continue
        data = data[written:]


async def _read_line(loop: asyncio.AbstractEventLoop, fd: int) -> str:
    done: asyncio.Future[str] = loop.create_future()
    buffer = bytearray()

    def readable() -> None:
        if done.done():
            return
        try:
            chunk = os.read(fd, 1024)
        except BlockingIOError:
            return
        except OSError as exc:
            done.set_exception(MfaError(f"Reading the MFA code from the terminal failed: {exc}"))
            return
        if not chunk:
            done.set_exception(MfaError("The terminal was closed before an MFA code was typed."))
            return
        buffer.extend(chunk)
        if b"\n" in buffer or b"\r" in buffer:
            done.set_result(buffer.decode(errors="replace").splitlines()[0])

    loop.add_reader(fd, readable)
    return await done


def terminal_prompt(tty: str = DEFAULT_TTY) -> TerminalPrompt:
    """An MFA callback asking on the controlling terminal (see :class:`TerminalPrompt`)."""
    return TerminalPrompt(tty)


class CommandCallback:
    """Runs a command (without a shell) and takes the last six-digit number it prints as the
    code: ``ykman oath accounts code -s aws``, ``op item get aws --otp``, a script. The
    command sees ``AIO_STS_SESSION_MFA_SERIAL`` and ``AIO_STS_SESSION_MFA_ATTEMPT`` (and not
    ``AIO_STS_SESSION_CACHE_KEY``). A non-zero exit, no code, or no answer within ``timeout``
    is :class:`MfaError`. The command runs in a process group of its own: a timeout or a
    cancel kills the whole group, and once the command has exited nothing waits for a process
    it left behind (one holding its output open)."""

    def __init__(self, command: str | Sequence[str], *, timeout: float = 60.0) -> None:
        try:
            argv = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError as exc:  # an unbalanced quote
            raise ConfigurationError(
                f"The MFA command {quote(command)} is not a valid command line ({exc}): "
                "balance its quotes."
            ) from None
        if not argv or not all(isinstance(part, str) and part for part in argv):
            raise ConfigurationError(
                f"The MFA command must be a program and its arguments, got {quote(command)}."
            )
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ConfigurationError(f"timeout must be a positive number, got {timeout!r}.")
        self.argv = argv
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return f"CommandCallback({quote(self.argv[0])}, timeout={self.timeout:g})"

    async def __call__(self, request: MfaRequest) -> str:
        name = quote(self.argv[0])
        status, out, last_error = await run_command(self.argv, self.timeout, _command_env(request))
        if status != 0:
            detail = f": {last_error[:200]}" if last_error else ""
            raise MfaError(f"The MFA command {name} exited with status {status}{detail}.")
        return _code_in(out, f"The MFA command {name}")


def _command_env(request: MfaRequest) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN_FROM_COMMANDS}
    env["AIO_STS_SESSION_MFA_SERIAL"] = request.serial_number
    env["AIO_STS_SESSION_MFA_ATTEMPT"] = str(request.attempt)
    if request.profile:
        env["AIO_STS_SESSION_PROFILE"] = request.profile
    return env


def _code_in(out: bytes, who: str) -> str:
    codes = _SIX_DIGITS.findall(out)
    if not codes:
        raise MfaError(f"{who} printed no six-digit code: make it print the code.")
    return str(codes[-1].decode())


async def run_command(
    argv: Sequence[str], timeout: float, env: dict[str, str]
) -> tuple[int, bytes, str]:
    """Run ``argv`` (no shell, stdin closed, in a process group of its own) for at most
    ``timeout`` seconds: ``(exit status, stdout, last line of stderr)``. Its stderr goes on to
    the controlling terminal as it comes (``ykman``'s "Touch your YubiKey"), else to ours. A
    timeout or a cancel kills the whole group; once the command has exited nothing waits for a
    process it left behind (one holding its output open)."""
    name = quote(argv[0])
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=sys.platform != "win32",
        )
    except OSError as exc:
        raise MfaError(
            f"The MFA command {name} could not be started ({exc.strerror}): check "
            "--mfa-command / mfa_process."
        ) from None
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = bytearray(), bytearray()
    sink = _error_sink()
    readers = [
        asyncio.ensure_future(_drain(process.stdout, out)),
        asyncio.ensure_future(_drain(process.stderr, err, sink)),
    ]
    try:
        try:
            await asyncio.wait_for(_exited(process), timeout)
        except asyncio.TimeoutError:
            raise MfaError(
                f"The MFA command {name} printed no code within {timeout:g} s."
            ) from None
        # It has exited: what it printed is in the pipes. A process it left behind may
        # hold them open; take what is there and do not wait for that one.
        await asyncio.wait(readers, timeout=PIPE_GRACE)
    finally:  # timed out, cancelled or done: leave no process of its group behind
        await _end(process, readers)
        if sink is not None and sink != 2:
            os.close(sink)
    assert process.returncode is not None
    lines = err.decode(errors="replace").strip().splitlines()
    return process.returncode, bytes(out), lines[-1] if lines else ""


def _error_sink() -> int | None:
    """Where a command's stderr goes: the controlling terminal if there is one, else our own
    stderr (botocore pipes a credential process's stderr: the terminal is where a person
    looks)."""
    if sys.platform == "win32":  # pragma: no cover
        return 2
    try:
        return os.open(DEFAULT_TTY, os.O_WRONLY | os.O_NOCTTY)
    except OSError:
        return 2


#: Seconds to collect a command's output once it has exited.
PIPE_GRACE = 0.5
#: How often to look whether the command has exited (asyncio's ``wait()`` before Python 3.12
#: also waits for its pipes to close, which a process left behind can hold open for ever).
_EXIT_POLL = 0.02
#: Never handed to an MFA command: the cache key would decrypt every cached credential.
HIDDEN_FROM_COMMANDS = frozenset({"AIO_STS_SESSION_CACHE_KEY"})


async def _exited(process: asyncio.subprocess.Process) -> None:
    while process.returncode is None:  # noqa: ASYNC110 - no event to wait on before 3.12
        await asyncio.sleep(_EXIT_POLL)


async def _drain(stream: asyncio.StreamReader, into: bytearray, sink: int | None = None) -> None:
    while chunk := await stream.read(4096):
        into.extend(chunk)
        if sink is not None:
            with contextlib.suppress(OSError):
                os.write(sink, chunk)
        if sink is not None and len(into) > 65536:  # forwarded: keep the tail, for the message
            del into[:-65536]


async def _end(
    process: asyncio.subprocess.Process, readers: Sequence[asyncio.Future[None]]
) -> None:
    """Leave nothing of the command behind: kill its process group, then (Linux) any process
    that escaped the group (``setsid``) but still holds its output open; stop reading; reap it
    (polling, so a pipe held open elsewhere cannot hold us up); close the transport, so
    nothing is left for the garbage collector to close after the event loop."""
    try:
        if process.returncode is None or not all(reader.done() for reader in readers):
            _kill_group(process)
            await asyncio.wait(readers, timeout=PIPE_GRACE)
            if not all(reader.done() for reader in readers):
                _kill_pipe_holders(process)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_exited(process), 5.0)
    finally:
        transport = getattr(process, "_transport", None)
        if transport is not None:
            transport.close()


def _pipe_inodes(process: asyncio.subprocess.Process) -> set[int]:
    """The inodes of the pipes we read the command's output from."""
    inodes = set()
    transport = getattr(process, "_transport", None)
    for fd_number in (1, 2):
        pipe = transport.get_pipe_transport(fd_number) if transport is not None else None
        handle = pipe.get_extra_info("pipe") if pipe is not None else None
        if handle is not None:
            with contextlib.suppress(OSError, ValueError):
                inodes.add(os.fstat(handle.fileno()).st_ino)
    return inodes


def _kill_pipe_holders(process: asyncio.subprocess.Process) -> None:
    """SIGKILL every process of ours that holds the command's output pipes open: the
    command's descendants that left its process group (``setsid``), found through ``/proc``
    (Linux; elsewhere the process group is all there is)."""
    from ._procs import pipe_holders

    for pid in pipe_holders(_pipe_inodes(process)):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if sys.platform == "win32":  # pragma: no cover
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGKILL)


#: The desktop dialogs the command line can ask with, and the programs they need.
DIALOGS = {"zenity": "zenity", "kdialog": "kdialog", "osascript": "osascript"}
DIALOG_TITLE = "aio-sts-session"


class DialogPrompt:
    """Asks in a desktop dialog (``zenity``, ``kdialog``, or ``osascript`` on macOS) that
    names the profile and the device: for tools started without a terminal (an IDE, a desktop
    launcher, a Git GUI). Run without a shell, with a timeout; cancelled or timed out, the
    dialog is killed. Cancelling it is :class:`MfaError`; a mistyped answer (``abc12``) is
    asked for again, and ``123 456`` is taken as ``123456``, as on the terminal."""

    def __init__(self, program: str, *, timeout: float = 120.0) -> None:
        if program not in DIALOGS:
            raise ConfigurationError(
                f"Unknown dialog {quote(program)}: use one of {', '.join(sorted(DIALOGS))}."
            )
        self.program = program
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return f"DialogPrompt({self.program!r}, timeout={self.timeout:g})"

    @staticmethod
    def usable(program: str) -> bool:
        """Whether ``program`` can show a dialog here: on PATH, and a display to show it on
        (``DISPLAY`` or ``WAYLAND_DISPLAY``; macOS always has one)."""
        import shutil

        if shutil.which(DIALOGS[program]) is None:
            return False
        if program == "osascript":
            return sys.platform == "darwin"
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))

    def argv(self, request: MfaRequest) -> list[str]:
        text = prompt_text(request).rstrip(": ")
        if self.program == "zenity":
            return ["zenity", "--entry", "--title", DIALOG_TITLE, "--text", text]
        if self.program == "kdialog":
            return ["kdialog", "--title", DIALOG_TITLE, "--inputbox", text]
        script = (
            f'text returned of (display dialog "{_applescript(text)}" default answer "" '
            f'with title "{DIALOG_TITLE}")'
        )
        return ["osascript", "-e", script]

    async def __call__(self, request: MfaRequest) -> str:
        """What the person typed (the code is checked, spaces ignored, by the provider: a
        malformed answer asks again, attempt N of M, as the terminal prompt does)."""
        status, out, _ = await run_command(self.argv(request), self.timeout, _command_env(request))
        if status != 0:  # zenity and kdialog exit 1 on cancel; osascript with an error
            raise MfaError(
                f"The MFA dialog ({self.program}) was cancelled or failed (status {status}).",
                topic="mfa.cancelled",
            )
        lines = out.decode(errors="replace").strip().splitlines()
        return lines[-1].strip() if lines else ""


def _applescript(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def command_callback(command: str | Sequence[str], *, timeout: float = 60.0) -> CommandCallback:
    """An MFA callback running ``command`` (see :class:`CommandCallback`)."""
    return CommandCallback(command, timeout=timeout)


class TotpCallback:
    """Computes the code from the device's TOTP secret (base32), for automation: a CI job
    holding the secret in its secret store. Never hands out the same code twice (STS refuses a
    used code): waits for the next 30-second step instead. Needs ``pyotp``:
    ``pip install 'aio-sts-session[totp]'``. The secret never appears in a ``repr``."""

    def __init__(
        self,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        try:
            import pyotp
        except ImportError as exc:
            raise ConfigurationError(
                "totp_callback needs pyotp: pip install 'aio-sts-session[totp]'."
            ) from exc
        try:
            self._totp = pyotp.TOTP("".join(secret.split()).upper())
            self._totp.at(0)
        except Exception:
            raise ConfigurationError(
                "The TOTP secret is not valid base32 (the text shown under the QR code when "
                "the MFA device was set up)."
            ) from None
        self._clock = clock
        self._sleep = sleep
        self._last: str | None = None

    def __repr__(self) -> str:
        return "TotpCallback(secret='***')"

    async def __call__(self, request: MfaRequest) -> str:
        now = self._clock()
        code = str(self._totp.at(now))
        if code == self._last:
            await self._sleep(30 - now % 30 + 0.5)  # the next step's code
            code = str(self._totp.at(self._clock()))
        self._last = code
        return code


def totp_callback(
    secret: str,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> TotpCallback:
    """An MFA callback computing codes from a TOTP secret (see :class:`TotpCallback`)."""
    return TotpCallback(secret, clock=clock, sleep=sleep)
