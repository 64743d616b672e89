"""The command line's fixtures: a temporary HOME with config files naming the strict fake STS,
the command run as a real subprocess (no controlling terminal, or a pseudo-terminal), and a
real keyring backend (``keyrings.alt``'s file backend) for the keys commands.

The fake STS runs on the wall clock here (``clock`` is overridden): the command line reads the
machine's time."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import os
import pty
import select
import sys
import termios
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aio_sts_session.testing import FakeSts, issued_secrets

from ..conftest import ACCESS_KEY, SECRET_KEY, SERIAL, FakeClock

HERE = Path(__file__).parent
MFA_COMMAND = f"{sys.executable} {HERE / 'mfa_command.py'}"


@dataclasses.dataclass
class Result:
    status: int
    out: str
    err: str


@dataclasses.dataclass
class Cli:
    fake: FakeSts
    home: Path
    env: dict[str, str]
    mfa_log: Path

    @property
    def prompts(self) -> int:
        return len(self.mfa_log.read_text().split()) if self.mfa_log.exists() else 0

    def write_config(self, extra: str = "", secret: str = SECRET_KEY) -> None:
        (self.home / "config").write_text(
            f"""[profile base]
mfa_serial = {SERIAL}
region = us-east-1
services = fake

[profile admin]
role_arn = arn:aws:iam::123456789012:role/admin
source_profile = base

[services fake]
sts =
  endpoint_url = {self.fake.url}
{extra}"""
        )
        (self.home / "credentials").write_text(
            f"[base]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {secret}\n"
        )

    async def run(self, *args: str, env: dict[str, str] | None = None, mfa: bool = True) -> Result:
        argv = [sys.executable, "-m", "aio_sts_session", *args]
        at = 4 if args[:1] == ("-v",) else 3  # the command, after a leading -v
        asks = ("credential-process", "env", "exec", "rotate", "login")
        if mfa and len(argv) > at and argv[at] in asks:
            argv[at : at + 1] = [argv[at], "--mfa-command", MFA_COMMAND]
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, **(env or {})},
            start_new_session=True,  # no controlling terminal
        )
        out, err = await asyncio.wait_for(process.communicate(), 90)
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())  # the CLI runs on the wall clock


@pytest.fixture
async def cli(fake_sts: FakeSts, tmp_path: Path, clock: FakeClock) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "FAKE_TOTP_SECRET": fake_sts.devices[SERIAL],
        "FAKE_NOW": repr(clock()),
        "FAKE_MFA_LOG": str(tmp_path / "mfa.log"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    fake_sts.add_role("admin")
    result = Cli(fake_sts, home, env, tmp_path / "mfa.log")
    result.write_config()
    return result


def assert_one_line_error(result: Result, fake: FakeSts, match: str) -> None:
    assert result.status != 0
    assert result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith("aio-sts-session: error: "), result.err
    assert match in result.err, result.err
    assert "Traceback" not in result.err
    for secret in issued_secrets(fake):
        assert secret not in result.err


def read_until(fd: int, needle: bytes, timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise AssertionError(f"{needle!r} never appeared; got {seen!r}")
        try:
            seen += os.read(fd, 1024)
        except OSError:
            break
    return seen


@contextlib.asynccontextmanager
async def on_a_terminal(
    cli: Cli, *args: str, stdin_too: bool = False
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """The CLI with a pty as its controlling terminal and stdout/stderr piped, as botocore
    runs a credential process: ``(process, the pty's master end)``. Our end of the slave stays
    open while the block runs, so the master never reads EIO in between."""
    master, slave = pty.openpty()
    slave_name = os.ttyname(slave)

    def controlling_terminal() -> None:
        os.setsid()
        fd = os.open(slave_name, os.O_RDWR)
        fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
        os.close(fd)

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aio_sts_session", *args,
        stdin=slave if stdin_too else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli.env,
        preexec_fn=controlling_terminal,
    )  # fmt: skip
    try:
        yield process, master
    finally:
        os.close(slave)
        os.close(master)


# -- the keyring -------------------------------------------------------------------------------


BACKEND = "keyrings.alt.file.PlaintextKeyring"
CREDENTIALS = f"[base]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"


@pytest.fixture
def keyring_cli(cli: Cli) -> Cli:
    cli.env["PYTHON_KEYRING_BACKEND"] = BACKEND
    cli.env["XDG_DATA_HOME"] = str(cli.home / ".local" / "share")
    config = (cli.home / "config").read_text()
    config = config.replace("sts =\n", f"iam =\n  endpoint_url = {cli.fake.url}\nsts =\n")
    (cli.home / "config").write_text(config)
    return cli


async def run_with_input(
    cli: Cli, stdin: bytes, *args: str, env: dict[str, str] | None = None
) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aio_sts_session", *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**cli.env, **(env or {})},
        start_new_session=True,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin), 90)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def keyring_item(cli: Cli, profile: str = "base") -> dict[str, str] | None:
    """What the keyring holds for ``profile``, read by another process through ``keyring``."""
    code = (
        "import keyring, sys; "
        f"print(keyring.get_password('aio-sts-session', 'profile/{profile}') or '')"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=cli.env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    text = out.decode().strip()
    return json.loads(text) if text else None


async def add_from_stdin(cli: Cli, key_id: str = ACCESS_KEY, secret: str = SECRET_KEY) -> Result:
    return await run_with_input(cli, f"{key_id}\n{secret}\n".encode(), "add", "base")
