"""The command line's findings from the red-team review, each run as a real subprocess (no
controlling terminal) against the strict fake STS: the credential server's child never falls
back to long-term keys, commands that cannot start, MFA commands that leave processes behind,
a flood of half-sent requests, the cache key kept from children, core dumps, over-long values
and unbalanced quotes in messages, and secrets in debug tracebacks."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from aio_sts_session.cli.output import quote_for as _quote
from aio_sts_session.cli.server import run_with_server
from aio_sts_session.testing import Fault, issued_secrets
from aio_sts_session.testing._fake_sts import NS

from ..conftest import ACCESS_KEY, SECRET_KEY, SERIAL

# The command-line fixtures of test_cli (the wall clock, as the CLI runs on it):
from .conftest import MFA_COMMAND, Cli, assert_one_line_error

DEFAULT_KEY, DEFAULT_SECRET = "AKIADEFAULTPROFILE01", "default-profile-long-term-secret-000000"

WHO_AM_I = """
import json, os, botocore.session
session = botocore.session.Session()
creds = session.get_credentials()
client = session.create_client("sts", endpoint_url=os.environ["FAKE_URL"])
print(json.dumps({"method": creds.method, "key": creds.get_frozen_credentials().access_key,
                  "arn": client.get_caller_identity()["Arn"],
                  "cache_key_seen": "AIO_STS_SESSION_CACHE_KEY" in os.environ}))
"""


def add_default_profile(cli: Cli) -> None:
    """Most machines: a [default] profile with the IAM user's long-term keys, in both files."""
    cli.fake.users[DEFAULT_KEY] = DEFAULT_SECRET
    with (cli.home / "credentials").open("a") as fh:
        fh.write(
            f"[default]\naws_access_key_id = {DEFAULT_KEY}\n"
            f"aws_secret_access_key = {DEFAULT_SECRET}\n"
        )
    with (cli.home / "config").open("a") as fh:
        fh.write("\n[default]\nregion = us-east-1\n")


@pytest.mark.parametrize("server", [True, False])
async def test_the_child_never_signs_with_the_default_profiles_long_term_keys(
    cli: Cli, server: bool
) -> None:
    add_default_profile(cli)
    result = await cli.run(
        "exec",
        *(["--server"] if server else []),
        "--profile",
        "admin",
        "--",
        sys.executable,
        "-c",
        WHO_AM_I,
        env={"FAKE_URL": cli.fake.url},
    )
    assert result.status == 0, result.err
    report = json.loads(result.out.strip().splitlines()[-1])
    assert report["method"] == ("container-role" if server else "env")
    assert report["key"] != DEFAULT_KEY
    assert report["arn"].startswith("arn:aws:sts::123456789012:assumed-role/admin/")
    caller = [c for c in cli.fake.calls if c.action == "GetCallerIdentity"][-1]
    assert caller.access_key_id.startswith("ASIA")  # temporary, MFA-backed: not the user's key
    assert DEFAULT_KEY not in {c.access_key_id for c in cli.fake.calls}


async def test_the_childs_aws_files_are_gone_after_it_exits(cli: Cli) -> None:
    show = (
        "import os; print(os.environ['AWS_CONFIG_FILE'], os.environ['AWS_SHARED_CREDENTIALS_FILE'])"
    )
    result = await cli.run(
        "exec", "--server", "--profile", "base", "--", sys.executable, "-c", show
    )
    assert result.status == 0, result.err
    config, credentials = result.out.split()
    assert Path(config).parent == Path(credentials).parent
    assert not Path(config).parent.exists()


async def test_exec_server_with_a_missing_command_exits_127(cli: Cli) -> None:
    result = await cli.run("exec", "--server", "--profile", "base", "--", "no-such-command-x")
    assert result.status == 127, result.err
    assert "no-such-command-x" in result.err
    assert "Traceback" not in result.err


async def test_the_childs_status_survives_a_dead_keeper(
    make_provider: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aio_sts_session._keeper import Keeper

    async def dies(self: object) -> None:
        raise KeyError("GetSessionTokenResult")

    monkeypatch.setattr(Keeper, "run", dies)
    provider = make_provider()  # type: ignore[operator]
    status = await run_with_server(
        [provider], [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ), None
    )
    assert status == 3


@pytest.mark.parametrize("escape", ["", "setsid "])
async def test_the_mfa_timeout_holds_when_the_command_leaves_a_process_behind(
    cli: Cli, tmp_path: Path, escape: str
) -> None:
    """Also when what it leaves behind left its process group (``setsid``, red-team review
    2): then 9 s instead of 2, "Exception ignored … Event loop is closed", a process left.
    What the command left writes a file if it is ever allowed to finish its sleep: the timeout
    held if that file is not there (no wall-clock bound, which a loaded machine can exceed)."""
    marker = unique_sleep(23)  # a sleep no other test, or suite running beside, runs
    finished = tmp_path / "finished"
    result = await cli.run(
        "credential-process",
        "--profile",
        "base",
        "--mfa-command",
        f"sh -c '{escape}sh -c \"sleep {marker}; touch {finished}\" & exec sleep {marker}'",
        "--mfa-timeout",
        "2",
        mfa=False,
    )
    assert_one_line_error(result, cli.fake, "within 2 s")
    assert not finished.exists()  # nothing waited for it
    left = await asyncio.to_thread(
        subprocess.run,
        ["pgrep", "-f", f"sleep {marker}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert left.stdout == "", "a process of the MFA command was left running"
    assert cli.fake.token_calls == []


async def test_a_code_printed_before_a_background_process_is_taken_at_once(
    cli: Cli, tmp_path: Path
) -> None:
    finished = tmp_path / "finished"
    marker = unique_sleep(31)
    script = f'{MFA_COMMAND}; sh -c "sleep {marker}; touch {finished}" &'
    result = await cli.run(
        "credential-process", "--profile", "base", "--mfa-command", f"sh -c '{script}'", mfa=False
    )
    assert result.status == 0, result.err
    assert not finished.exists()  # taken at once: nothing waited for the background sleep
    assert cli.prompts == 1
    left = await asyncio.to_thread(
        subprocess.run,
        ["pgrep", "-f", f"sleep {marker}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert left.stdout == ""


FLOOD = """
import json, os, resource, socket, botocore.session
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
host, port = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"].split("/")[2].split(":")
held = []
for _ in range(1100):  # more than the server's own descriptor limit
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n")  # never the blank line
    held.append(s)
session = botocore.session.Session()
client = session.create_client("sts", endpoint_url=os.environ["FAKE_URL"])
arns = [client.get_caller_identity()["Arn"] for _ in range(3)]
print(json.dumps({"method": session.get_credentials().method, "arns": arns}))
"""


def low_descriptor_limit() -> None:  # the CLI runs with 1,024 descriptors, as on most machines
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


async def test_a_flood_of_half_sent_requests_neither_stops_the_server_nor_floods_the_terminal(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aio_sts_session", "exec", "--server", "--mfa-command",
        MFA_COMMAND, "--profile", "base", "--", sys.executable, "-c", FLOOD,
        env={**cli.env, "FAKE_URL": cli.fake.url},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=low_descriptor_limit,
        start_new_session=True,
    )  # fmt: skip
    out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, err.decode()[-2000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["method"] == "container-role"
    assert len(report["arns"]) == 3
    assert b"Traceback" not in err
    assert err.count(b"\n") <= 3, err.decode()[-2000:]


async def test_the_cache_key_reaches_neither_the_child_nor_the_mfa_command(
    cli: Cli, tmp_path: Path
) -> None:
    from aio_sts_session import EncryptedFileCache

    report = tmp_path / "mfa-report.json"
    env = {
        "AIO_STS_SESSION_CACHE_KEY": EncryptedFileCache.generate_key(),
        "FAKE_MFA_REPORT": str(report),
        "FAKE_URL": cli.fake.url,
    }
    for server in ([], ["--server"]):
        result = await cli.run(
            "exec", *server, "--profile", "base", "--", sys.executable, "-c", WHO_AM_I, env=env
        )
        assert result.status == 0, result.err
        assert json.loads(result.out.strip().splitlines()[-1])["cache_key_seen"] is False
    assert json.loads(report.read_text())["cache_key_seen"] is False


async def test_core_dumps_are_off_while_the_secrets_are_held(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("core dumps are off on this machine already")
    # The CLI starts with core dumps on (many machines: `ulimit -c unlimited`) ...
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    try:
        await _check_core_dumps(cli, tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


async def _check_core_dumps(cli: Cli, tmp_path: Path) -> None:
    report = tmp_path / "mfa-report.json"
    result = await cli.run(
        "credential-process", "--profile", "base", env={"FAKE_MFA_REPORT": str(report)}
    )
    assert result.status == 0, result.err
    assert json.loads(report.read_text())["parent_core_soft_limit"] == "0"  # ... turns them off
    # ... and the command exec runs gets its limit back
    soft, _ = resource.getrlimit(resource.RLIMIT_CORE)
    show = "import resource; print(resource.getrlimit(resource.RLIMIT_CORE)[0])"
    result = await cli.run("exec", "--profile", "base", "--", sys.executable, "-c", show)
    assert int(result.out.strip()) == soft


async def test_an_unbalanced_quote_in_mfa_process_names_the_setting(cli: Cli) -> None:
    cli.write_config(
        extra="\n[profile quoted]\nmfa_serial = " + SERIAL + '\nmfa_process = ykman "oath\n'
    )
    # the profile needs keys of its own
    with (cli.home / "credentials").open("a") as fh:
        fh.write(
            f"[quoted]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        )
    result = await cli.run("credential-process", "--profile", "quoted", mfa=False)
    assert_one_line_error(result, cli.fake, "mfa_process")
    assert "unexpected" not in result.err
    assert "quotation" in result.err
    assert cli.prompts == 0
    assert cli.fake.calls == []


async def test_an_enormous_value_is_quoted_short(cli: Cli) -> None:
    huge = "arn:aws:iam::123456789012:mfa/" + "a" * 5_000_000
    cli.write_config(extra=f"\n[profile huge]\nmfa_serial = {huge}\n")
    with (cli.home / "credentials").open("a") as fh:
        fh.write(
            f"[huge]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        )
    result = await cli.run("credential-process", "--profile", "huge")
    assert_one_line_error(result, cli.fake, "mfa_serial")
    assert len(result.err) < 1000
    assert "5000030 characters" in result.err
    assert cli.prompts == 0


async def test_debug_tracebacks_hold_no_secret_from_an_unreadable_answer(cli: Cli) -> None:
    secret, token = "SECRETinTheBrokenBody0000000000000000000", "TOKENinTheBrokenBody"
    body = (
        f'<GetSessionTokenResponse xmlns="{NS}"><GetSessionTokenResult><Credentials>'
        f"<AccessKeyId>ASIABROKEN</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
        f"<SessionToken>{token}</SessionToken><Expiration>abc</Expiration></Credentials>"
        "</GetSessionTokenResult></GetSessionTokenResponse>"
    )
    for broken in (body, body.replace("</GetSessionTokenResponse>", "<unclosed>")):
        cli.fake.faults.append(Fault(kind="body", body=broken))
        result = await cli.run(
            "credential-process", "--profile", "base", env={"AIO_STS_SESSION_DEBUG": "1"}
        )
        assert result.status != 0
        assert "could not be read" in result.err
        assert secret not in result.err
        assert token not in result.err
        for issued in issued_secrets(cli.fake):
            assert issued not in result.err


@pytest.mark.parametrize("quote_char", ["'", "\u2018", "\u2019", "\u201a", "\u201b"])
def test_powershell_quoting_doubles_every_single_quote_powershell_knows(quote_char: str) -> None:
    value = f"a{quote_char}b; Remove-Item x"
    quoted = _quote(value, "powershell")
    assert quoted == f"'a{quote_char * 2}b; Remove-Item x'"
    # Inside the outer quotes, every quote character comes in pairs: none closes the string.
    inner = quoted[1:-1]
    for char in "'\u2018\u2019\u201a\u201b":
        assert all(len(run) % 2 == 0 for run in _runs(inner, char))


def _runs(text: str, char: str) -> list[str]:
    runs, current = [], ""
    for c in text:
        if c == char:
            current += c
        elif current:
            runs.append(current)
            current = ""
    return [*runs, current] if current else runs


GRANDCHILD = """
import json, os, subprocess, sys, urllib.request
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
fetch = (
    "import os, sys, urllib.request; r = urllib.request.Request("
    "os.environ['AWS_CONTAINER_CREDENTIALS_FULL_URI'], "
    "headers={'Authorization': os.environ['AWS_CONTAINER_AUTHORIZATION_TOKEN']}); "
    "print(urllib.request.urlopen(r, timeout=5).status)"
)
status = subprocess.run([sys.executable, "-c", fetch], capture_output=True, text=True).stdout
print(json.dumps({"grandchild": status.strip(), "uri": uri, "token": token}))
"""


async def test_grandchildren_are_served_while_the_child_runs_and_refused_after(cli: Cli) -> None:
    result = await cli.run(
        "exec", "--server", "--profile", "base", "--", sys.executable, "-c", GRANDCHILD
    )
    assert result.status == 0, result.err
    report = json.loads(result.out.strip().splitlines()[-1])
    assert report["grandchild"] == "200"
    host, port = report["uri"].split("/")[2].split(":")
    with pytest.raises(ConnectionRefusedError):  # the server ended with the child
        await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)


async def test_a_child_killed_by_a_signal_gives_128_plus_its_number(cli: Cli) -> None:
    suicide = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    for server in ([], ["--server"]):
        result = await cli.run(
            "exec", *server, "--profile", "base", "--", sys.executable, "-c", suicide
        )
        assert result.status in (137, -9), result.err  # plain exec: the shell's view, -9
        if server:
            assert result.status == 137


async def test_sigterm_to_the_server_reaches_the_child(cli: Cli, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
        f"pathlib.Path({str(ready)!r}).write_text('x')\n"
        "signal.pause()\n"
    )
    argv = [sys.executable, "-m", "aio_sts_session", "exec", "--server", "--mfa-command"]
    process = await asyncio.create_subprocess_exec(
        *argv, MFA_COMMAND, "--profile", "base", "--", sys.executable, "-c", child,
        env=cli.env, stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    for _ in range(600):  # the child says when its handler is installed
        if ready.exists():
            break
        await asyncio.sleep(0.05)
    process.terminate()
    assert await asyncio.wait_for(process.wait(), 30) == 42


# -- red-team review 2: the endpoint is never released while a holder of its token runs -------


def unique_sleep(seconds: int) -> str:
    """A ``sleep`` argument no other test, nor a suite running beside this one, uses: what
    ``pgrep -f`` looks for."""
    return f"{seconds}.{secrets.randbelow(10**6):06d}"


LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's prctl")

#: A command that leaves a process in the background (in a session of its own, as a daemon
#: would) and exits. The background process answers SIGTERM by asking the endpoint once more
#: (it still holds the token) and writing down the status it got.
LEAVES_ONE_BEHIND = """
import os, subprocess, sys
report = sys.argv[1]
background = '''
import os, signal, sys, time, urllib.request
report = sys.argv[1]
def asked(*_):
    request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
    status = urllib.request.urlopen(request, timeout=10).status
    open(report, "w").write(str(status))
    sys.exit(0)
signal.signal(signal.SIGTERM, asked)
open(report + ".pid", "w").write(str(os.getpid()))
while True:
    time.sleep(60)
'''
subprocess.Popen([sys.executable, "-c", background, report], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while not os.path.exists(report + ".pid"):
    pass
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@LINUX_ONLY
async def test_what_the_command_left_running_is_ended_before_the_endpoint_closes(
    cli: Cli, tmp_path: Path
) -> None:
    """The reported takeover: background processes kept the token and the URL after the
    command exited, and once the tool exited anyone could bind the freed port."""
    report = tmp_path / "report"
    result = await cli.run(
        "exec", "--server", "--profile", "base", "--",
        sys.executable, "-c", LEAVES_ONE_BEHIND, str(report),
    )  # fmt: skip
    assert result.status == 0, result.err
    assert report.read_text() == "200"  # still served while it ran: the port was never free
    assert not _alive(int(Path(str(report) + ".pid").read_text()))
    assert "left 1 process(es) running" in result.err


@LINUX_ONLY
async def test_a_killed_tool_takes_the_command_along_and_the_port_stays_bound(
    cli: Cli, tmp_path: Path
) -> None:
    """SIGKILL to the tool: the command gets its parent-death signal, and a process it left
    in the background (a shell's ``&``: it keeps the descriptors it inherits) still holds the
    listening socket, so the port cannot be taken."""
    import socket

    ready = tmp_path / "ready"
    marker = unique_sleep(41)
    command = (
        f"sleep {marker} & echo $$ $AWS_CONTAINER_CREDENTIALS_FULL_URI > {ready}.tmp; "
        f"mv {ready}.tmp {ready}; exec sleep 60"
    )
    argv = [sys.executable, "-m", "aio_sts_session", "exec", "--server", "--mfa-command"]
    tool = await asyncio.create_subprocess_exec(
        *argv, MFA_COMMAND, "--profile", "base", "--", "sh", "-c", command,
        env=cli.env, stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(600):
            if ready.exists():
                break
            await asyncio.sleep(0.05)
        pid, url = ready.read_text().split()
        port = int(url.split(":")[2].strip("/"))
        tool.kill()
        await tool.wait()
        for _ in range(200):
            if not _alive(int(pid)):
                break
            await asyncio.sleep(0.05)
        assert not _alive(int(pid))  # the command did not outlive the tool
        with pytest.raises(OSError, match="in use"), socket.socket() as taker:
            taker.bind(("127.0.0.1", port))  # held by the background process
    finally:
        await asyncio.to_thread(subprocess.run, ["pkill", "-f", f"sleep {marker}"], check=False)


@LINUX_ONLY
@pytest.mark.parametrize("signame", ["SIGUSR1", "SIGINT", "SIGALRM", "SIGHUP"])
async def test_every_catchable_ending_signal_reaches_the_command(
    cli: Cli, tmp_path: Path, signame: str
) -> None:
    """The tool used to die of SIGUSR1 (and others), leaving the command orphaned; SIGINT from
    outside a terminal never reached the command."""
    import signal

    ready = tmp_path / "ready"
    child = (
        "import pathlib, signal, sys\n"
        f"signal.signal(signal.{signame}, lambda *a: sys.exit(42))\n"
        f"pathlib.Path({str(ready)!r}).write_text('x')\n"
        "signal.pause()\n"
    )
    argv = [sys.executable, "-m", "aio_sts_session", "exec", "--server", "--mfa-command"]
    process = await asyncio.create_subprocess_exec(
        *argv, MFA_COMMAND, "--profile", "base", "--", sys.executable, "-c", child,
        env=cli.env, stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    for _ in range(600):
        if ready.exists():
            break
        await asyncio.sleep(0.05)
    process.send_signal(getattr(signal, signame))
    assert await asyncio.wait_for(process.wait(), 30) == 42
