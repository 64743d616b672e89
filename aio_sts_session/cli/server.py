"""``exec --server``: a local credential endpoint in the container-credentials protocol that
every AWS SDK reads, kept fresh ahead of expiry while the command runs.

The command gets ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (``http://127.0.0.1:<random port>/``)
and ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` (32 random bytes, compared in constant time): a
request without it is refused with 401, with a wrong one with 403, whatever its method and
path. The provider's ``keep_fresh()`` renews every credential of the chain (the role and the
MFA session beneath it) when its prefetch window opens, so the SDKs never see credentials
inside their 15-minute window and the MFA prompt for a new session appears in the terminal
ahead of time while the command keeps running.

The endpoint is a few dozen lines of HTTP/1.1 on asyncio streams rather than a web framework,
so that every resource another local user can make it spend is bounded: at most
:data:`MAX_CONNECTIONS` connections at once (a new one evicts the oldest that has not finished
sending its headers), :data:`HEADER_TIMEOUT` seconds and :data:`MAX_HEADER_BYTES` bytes to send
a request, one request per connection. Nothing it does prints a traceback to the command's
terminal: failures go to the ``aio_sts_session`` logger, an accept failure once.

The command's own SDK must not find any other credentials first: every SDK's default chain
reads the shared credentials and config files *before* the container endpoint, so a
``[default]`` profile with keys would win (long-term keys, no MFA). The command therefore gets
a config file and a credentials file of its own (:func:`private_aws_files`) that hold nothing
but the region: the endpoint is the only source of credentials it can find.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import _procs
from .._engine import RefreshEngine
from .._log import logger
from .._text import quote
from ..exceptions import StsSessionError

__all__ = [
    "ChildStartError",
    "CredentialServer",
    "private_aws_files",
    "run_with_server",
]


#: Connections served at once; SDKs open one at a time per process.
MAX_CONNECTIONS = 64
#: Seconds a client has to send its request line and headers.
HEADER_TIMEOUT = 5.0
#: A request's line and headers may take at most this many bytes.
MAX_HEADER_BYTES = 16 * 1024


class ChildStartError(StsSessionError):
    """The command could not be started; ``status`` is the shell's convention (127: not found,
    126: found but not runnable)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _Connection:
    __slots__ = ("reading", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.reading = True  # still sending its request line and headers


def _same_user(writer: asyncio.StreamWriter) -> bool:
    """Whether the connecting socket belongs to this user (or root, who can read this
    process's memory anyway), where the platform tells (Linux's ``/proc/net/tcp``); ``True``
    where it does not. Another user's flood of connections then costs them a refusal each,
    and takes no slot from the SDK's own connection."""
    peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
    if not (isinstance(peer, tuple) and isinstance(local, tuple)):
        return True
    owner = _procs.socket_owner(peer[:2], local[:2])
    return owner is None or owner in (os.getuid(), 0)


class CredentialServer:
    """The endpoint: any path, ``GET``, with ``Authorization: <token>``; JSON credentials."""

    def __init__(
        self,
        provider: RefreshEngine,
        token: str,
        *,
        max_connections: int = MAX_CONNECTIONS,
        header_timeout: float = HEADER_TIMEOUT,
    ) -> None:
        self.provider = provider
        self._token = token.encode()
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._server: asyncio.Server | None = None
        self.url = ""
        #: Connections refused at once because another local user made them (Linux).
        self.refused_users = 0

    def __repr__(self) -> str:
        return f"CredentialServer({self.url!r}, connections={len(self._connections)})"

    async def start(self, host: str = "127.0.0.1") -> str:
        """Listen on ``host`` at a random port; returns the endpoint's URL."""
        self._server = await asyncio.start_server(
            self._accept, host, 0, limit=MAX_HEADER_BYTES, backlog=128
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{host}:{port}/"
        return self.url

    def listening_fd(self) -> int:
        """The listening socket's file descriptor (the command inherits it: see
        :func:`run_with_server`)."""
        assert self._server is not None
        return int(self._server.sockets[0].fileno())

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for task, connection in list(self._connections.items()):
            connection.writer.transport.abort()
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if not _same_user(writer):  # before reading a byte, and taking no slot
            self.refused_users += 1
            writer.transport.abort()
            return
        if len(self._connections) >= self.max_connections and not self._evict_one():
            writer.transport.abort()  # every slot is busy serving: refuse at once
            return
        connection = _Connection(writer)
        self._connections[task] = connection
        try:
            await self._serve(reader, connection)
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.TimeoutError,
            asyncio.CancelledError,  # evicted, or the server is closing
        ):
            pass  # the client went away, or was too slow
        except Exception as exc:
            logger.warning("The credential endpoint failed a request (%s).", type(exc).__name__)
        finally:
            self._connections.pop(task, None)
            writer.transport.abort()

    def _evict_one(self) -> bool:
        """Drop the oldest connection that is still sending its headers (a stalled client)."""
        for task, connection in self._connections.items():
            if connection.reading:
                connection.writer.transport.abort()
                task.cancel()
                del self._connections[task]
                return True
        return False

    async def _serve(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.header_timeout)
        except asyncio.LimitOverrunError:
            await self._respond(connection, 431, {"message": "Request headers too large"})
            return
        connection.reading = False
        status, body = await self._answer(head)
        await self._respond(connection, status, body)

    async def _answer(self, head: bytes) -> tuple[int, dict[str, str]]:
        lines = head.split(b"\r\n")
        request_line = lines[0].split(b" ")
        if len(request_line) != 3 or not request_line[2].startswith(b"HTTP/1."):
            return 400, {"message": "Malformed request"}
        given: list[bytes] = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            if name.strip().lower() == b"authorization":
                given.append(value.strip())
            elif name.strip().lower() == b"content-length" and value.strip() not in (b"", b"0"):
                return 400, {"message": "A request body is not accepted"}
        if not given:
            return 401, {"message": "Authorization header required"}
        if len(given) != 1 or not hmac.compare_digest(given[0], self._token):
            return 403, {"message": "Authorization token refused"}
        if request_line[0] != b"GET":
            return 405, {"message": "Only GET is served"}
        try:
            creds = await self.provider.credentials()
        except StsSessionError as exc:
            return 503, {"message": str(exc)}
        return 200, {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "Token": creds.session_token,
            "Expiration": creds.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    @staticmethod
    async def _respond(connection: _Connection, status: int, body: dict[str, str]) -> None:
        payload = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        connection.writer.write(head + payload)
        await asyncio.wait_for(connection.writer.drain(), HEADER_TIMEOUT)


@contextlib.contextmanager
def private_aws_files(region: str | None) -> Iterator[dict[str, str]]:
    """A config file and a credentials file for the command, in a directory only this user can
    read, removed afterwards: no profile in them holds or names credentials, so the command's
    SDK (botocore, Go v2, JS v3, Java v2: all read these files before the container endpoint)
    can only take its credentials from the endpoint. Yields the environment variables that
    point at them."""
    directory = Path(tempfile.mkdtemp(prefix="aio-sts-session-"))  # mode 0700
    try:
        config = directory / "config"
        credentials = directory / "credentials"
        config.write_text(
            "# Written by aio-sts-session exec --server: credentials come from its endpoint.\n"
            "[default]\n" + (f"region = {region}\n" if region else "")
        )
        credentials.write_text("")
        yield {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _quiet_loop_errors(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Route the event loop's error reports (an accept failing for want of file descriptors,
    repeated every second while it lasts) to our logger, once each, without a traceback: the
    command's terminal is not the place for them. Returns a function that restores the
    previous handler."""
    previous = loop.get_exception_handler()
    seen: set[str] = set()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "error"))
        error = context.get("exception")
        text = f"{message} ({type(error).__name__})" if error is not None else message
        if text in seen:
            return
        seen.add(text)
        logger.warning("The credential endpoint's event loop reported: %s.", text)

    loop.set_exception_handler(handle)
    return lambda: loop.set_exception_handler(previous)


#: Seconds the processes a command left running get between SIGTERM and SIGKILL once it
#: has exited (they hold the endpoint's token: the endpoint closes only after them).
BACKGROUND_GRACE = 5.0


async def run_with_server(
    chain: Sequence[RefreshEngine],
    argv: list[str],
    env: dict[str, str],
    region: str | None,
) -> int:
    """Obtain credentials, start the endpoint, run the command, keep renewing until it
    exits; returns its exit status (128 + signal number if a signal ended it), whatever the
    renewals did meanwhile.

    The endpoint's port is never released while a process that was given the token runs
    (another local user could bind it and answer with credentials of their choosing):

    - this process adopts the command's orphans (a Linux subreaper) and, once the command
      has exited, ends whatever it left running (SIGTERM, SIGKILL after
      :data:`BACKGROUND_GRACE` seconds) before it closes the endpoint;
    - the command inherits the listening socket, so that if this process is killed (even
      with SIGKILL) the port stays bound for as long as the command, or anything it started
      that kept the socket, runs; and the kernel sends the command SIGTERM when this process
      dies (Linux's parent-death signal);
    - every catchable signal that would end this process is handled: passed on to the
      command (Ctrl-C and Ctrl-\\ only when the terminal did not already send it them).
    """
    provider = chain[0]
    await provider.credentials()  # any prompt happens before the command starts
    token = secrets.token_urlsafe(32)
    loop = asyncio.get_running_loop()
    restore = _quiet_loop_errors(loop)
    server = CredentialServer(provider, token)
    url = await server.start()
    keeper = provider.keep_fresh()  # the role and the MFA session beneath it, each on time
    signals = _Signals(loop)
    _procs.become_subreaper()
    try:
        with private_aws_files(region) as files:
            env = {**env, **files}
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = url
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
            if region:
                env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
            status = await _run_child(argv, env, server.listening_fd(), signals)
            await _stop(keeper)
            left = await _procs.end_descendants(BACKGROUND_GRACE, hurry=signals.received)
            if left:
                logger.warning(
                    "The command left %d process(es) running, holding the endpoint's token: "
                    "ended them before closing the endpoint.",
                    len(left),
                )
    finally:
        await _stop(keeper)
        signals.remove()
        await server.close()
        restore()
    return status


async def _stop(keeper: asyncio.Task[None]) -> None:
    keeper.cancel()
    try:
        await keeper
    except asyncio.CancelledError:
        pass
    except Exception as exc:  # pragma: no cover - the keeper catches its own failures
        logger.warning("The renewals stopped early (%s).", type(exc).__name__)


async def _run_child(
    argv: list[str], env: dict[str, str], listening: int, signals: _Signals
) -> int:
    try:
        child = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            pass_fds=(listening,),  # the port stays bound while the command runs, whatever
            preexec_fn=_procs.parent_death_signal(signal.SIGTERM),
        )
    except OSError as exc:
        raise ChildStartError(
            f"cannot run {quote(argv[0])}: {exc.strerror}",
            127 if isinstance(exc, FileNotFoundError) else 126,
        ) from None
    signals.forward_to(child)
    try:
        status = await child.wait()
    finally:
        signals.forward_to(None)
    return status if status >= 0 else 128 - status


def _catchable_ending_signals() -> list[int]:
    """The signals whose default action ends this process and that can be caught, less the
    ones a fault raises (a handler could not resume after them)."""
    names = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGTERM",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        "SIGVTALRM",
        "SIGPROF",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
        "SIGSTKFLT",
        "SIGEMT",
        "SIGLOST",
        "SIGINFO",
    ]
    found = {getattr(signal, name) for name in names if hasattr(signal, name)}
    if hasattr(signal, "SIGRTMIN"):
        valid = signal.valid_signals()
        found.update(s for s in range(signal.SIGRTMIN, signal.SIGRTMAX + 1) if s in valid)
    return sorted(int(s) for s in found)


def _terminal_sent_it() -> bool:
    """Whether a Ctrl-C or Ctrl-\\ came from our terminal, which sends it to its whole
    foreground process group (the command included): we are that group."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


class _Signals:
    """Every catchable ending signal, handled while the command and what it left behind run:
    passed on to the command while it runs; afterwards, the processes it left get SIGKILL at
    once instead of after the grace period (``received`` is set)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._child: asyncio.subprocess.Process | None = None
        self.received = asyncio.Event()
        self._handled: list[int] = []
        if sys.platform == "win32":  # pragma: no cover
            return
        for signum in _catchable_ending_signals():
            try:
                loop.add_signal_handler(signum, self._on, signum)
            except (ValueError, RuntimeError, OSError):  # reserved by the C library
                continue
            self._handled.append(signum)

    def forward_to(self, child: asyncio.subprocess.Process | None) -> None:
        self._child = child

    def _on(self, signum: int) -> None:
        child = self._child
        if child is None or child.returncode is not None:
            self.received.set()  # the command is gone: end what it left, now
            return
        if signum in (signal.SIGINT, signal.SIGQUIT) and _terminal_sent_it():
            return  # the command got it from the terminal too: it decides
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    def remove(self) -> None:
        for signum in self._handled:
            self._loop.remove_signal_handler(signum)
        self._handled = []
