"""Processes and sockets as the operating system tells them: what the command line needs to
leave nothing of a command behind and to tell who is connecting.

Linux gives all of it (``prctl``, ``/proc``); elsewhere each function answers "nothing known"
and its callers fall back to what POSIX alone allows (process groups).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable

__all__ = [
    "LINUX",
    "become_subreaper",
    "descendants",
    "end_descendants",
    "parent_death_signal",
    "pipe_holders",
    "socket_owner",
]

LINUX = sys.platform.startswith("linux") and os.path.isdir("/proc/self")
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl() -> Callable[..., int] | None:
    if not LINUX:
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None
    return function


def become_subreaper() -> bool:
    """Make this process the one that adopts its descendants whose parent exits (instead of
    init), so that it can find and end them (``PR_SET_CHILD_SUBREAPER``, Linux). Whether it
    took effect."""
    prctl = _prctl()
    return prctl is not None and prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def parent_death_signal(signum: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``signum`` to the child when this process
    dies, however it dies (``SIGKILL`` included): ``PR_SET_PDEATHSIG``, Linux; ``None``
    elsewhere. A child whose parent died before the call ends at once."""
    prctl = _prctl()  # resolved before the fork: the child only calls it
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(128 + signum)

    return preexec


def _process_table() -> dict[int, tuple[int, bool]]:
    """Every visible process: its parent, and whether it is a zombie (dead; only its reaping
    is left), from ``/proc/<pid>/stat``."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            table[int(entry.name)] = (int(fields[1]), fields[0] == b"Z")
        except (OSError, IndexError, ValueError):
            continue
    return table


def descendants(pid: int) -> list[int]:
    """The living descendants of ``pid`` (Linux; ``[]`` elsewhere)."""
    if not LINUX:
        return []
    children: dict[int, list[int]] = {}
    for child, (parent, zombie) in _process_table().items():
        if not zombie:
            children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _reap_adopted() -> None:
    """Collect the exit status of children we adopted as a subreaper (nobody else waits for
    them; asyncio only waits for the processes it started)."""
    me = os.getpid()
    for child, (parent, zombie) in _process_table().items():
        if parent == me and zombie:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(child, os.WNOHANG)


async def end_descendants(
    grace: float, *, hurry: asyncio.Event | None = None, poll: float = 0.05
) -> list[int]:
    """End every process descended from this one: ``SIGTERM`` (each as it is found: a parent
    dying hands its children to us), then ``SIGKILL`` to what is left after ``grace``
    seconds, or at once when ``hurry`` is set; returns once none is left (Linux; at once
    elsewhere). The processes signalled."""
    if not LINUX:
        return []
    loop = asyncio.get_running_loop()
    me = os.getpid()
    signalled: list[int] = []
    deadline = loop.time() + grace
    while True:
        _reap_adopted()
        living = descendants(me)
        if not living:
            return signalled
        hard = loop.time() >= deadline or (hurry is not None and hurry.is_set())
        for pid in living:
            if hard or pid not in signalled:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
                if pid not in signalled:
                    signalled.append(pid)
        await asyncio.sleep(poll)


def pipe_holders(inodes: set[int]) -> list[int]:
    """The processes (other than this one) holding any of the pipes ``inodes`` open (Linux,
    processes of this user; ``[]`` elsewhere)."""
    if not LINUX or not inodes:
        return []
    wanted = {f"pipe:[{inode}]" for inode in inodes}
    me, found = os.getpid(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if any(os.readlink(fd.path) in wanted for fd in os.scandir(f"{entry.path}/fd")):
                found.append(int(entry.name))
        except OSError:  # gone, or another user's
            continue
    return found


def _hex_address(address: tuple[str, int]) -> bytes:
    """``127.0.0.1:8080`` as ``/proc/net/tcp`` writes it: ``0100007F:1F90`` (the address in
    the machine's byte order)."""
    packed = socket.inet_aton(address[0])
    number = int.from_bytes(packed, sys.byteorder)
    return f"{number:08X}:{address[1]:04X}".encode()


def socket_owner(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The user id owning the IPv4 TCP socket bound to ``local`` and connected to ``remote``
    (the other end of a connection we accepted), from ``/proc/net/tcp``; ``None`` when it
    cannot be told (another platform, an IPv6 address, a socket already gone)."""
    if not LINUX:
        return None
    try:
        needle = b" " + _hex_address(local) + b" " + _hex_address(remote) + b" "
        with open("/proc/net/tcp", "rb") as table:
            text = table.read()
    except (OSError, ValueError):
        return None
    at = text.find(needle)
    if at < 0:
        return None
    line = text[at : text.find(b"\n", at)].split()
    # After the two addresses: st, tx:rx queues, tr:when, retrnsmt, uid.
    try:
        return int(line[6])
    except (IndexError, ValueError):
        return None
