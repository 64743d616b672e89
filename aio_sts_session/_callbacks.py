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
    "CommandCallback",
    "TerminalPrompt",
    "TotpCallback",
    "command_callback",
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


def _prompt_text(request: MfaRequest) -> str:
    target = f" to assume {request.role_arn}" if request.role_arn else ""
    again = ""
    if request.reason == "rejected":
        again = f" (STS rejected the last one; attempt {request.attempt}/{request.max_attempts})"
    elif request.reason == "malformed":
        again = f" (six digits, please; attempt {request.attempt}/{request.max_attempts})"
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
            _write_all(fd, _prompt_text(request).encode())
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
        env = {k: v for k, v in os.environ.items() if k not in HIDDEN_FROM_COMMANDS}
        env["AIO_STS_SESSION_MFA_SERIAL"] = request.serial_number
        env["AIO_STS_SESSION_MFA_ATTEMPT"] = str(request.attempt)
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
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
        readers = [
            asyncio.ensure_future(_drain(process.stdout, out)),
            asyncio.ensure_future(_drain(process.stderr, err)),
        ]
        try:
            try:
                await asyncio.wait_for(_exited(process), self.timeout)
            except asyncio.TimeoutError:
                raise MfaError(
                    f"The MFA command {name} printed no code within {self.timeout:g} s."
                ) from None
            # It has exited: what it printed is in the pipes. A process it left behind may
            # hold them open; take what is there and do not wait for that one.
            await asyncio.wait(readers, timeout=PIPE_GRACE)
        finally:  # timed out, cancelled or done: leave no process of its group behind
            await _end(process, readers)
        if process.returncode != 0:
            last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
            detail = f": {last[0][:200]}" if last[0] else ""
            raise MfaError(
                f"The MFA command {name} exited with status {process.returncode}{detail}."
            )
        codes = _SIX_DIGITS.findall(bytes(out))
        if not codes:
            raise MfaError(
                f"The MFA command {name} printed no six-digit code: make it print the code."
            )
        return str(codes[-1].decode())


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


async def _drain(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(4096):
        into.extend(chunk)


async def _end(
    process: asyncio.subprocess.Process, readers: Sequence[asyncio.Future[None]]
) -> None:
    """Kill whatever is left of the command's process group, stop reading, reap it."""
    if process.returncode is None or not all(reader.done() for reader in readers):
        _kill_group(process)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(process.wait(), 5.0)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if sys.platform == "win32":  # pragma: no cover
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGKILL)


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
