"""The command line a person lives with (issue 14): advice in its own words, `status`, the
flags people expect, `cache clear` that does what it says, and a prompt wherever the person
is. Each runs the command as a real subprocess (without a terminal, or through a pty where
the terminal matters), prompts and STS calls counted."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import botocore.session
import pytest

from aio_sts_session import EncryptedFileCache
from aio_sts_session._version import __version__
from aio_sts_session.testing import Fault, issued_secrets

from ..conftest import ACCESS_KEY, SECRET_KEY, SERIAL
from .conftest import MFA_COMMAND, Cli, Result, assert_one_line_error, on_a_terminal, read_until

#: What the command line must never say to a person: Python arguments, methods, expressions.
PYTHON_ISMS = re.compile(
    r"\w+\(\)|callback|source_session|AioSession|key=\[|provider|mfa_timeout\b|\bpass \w+="
)


def assert_speaks_cli(result: Result) -> None:
    assert not PYTHON_ISMS.search(result.err), result.err


def no_secret_in(result: Result, cli: Cli) -> None:
    for secret in issued_secrets(cli.fake):
        assert secret not in result.out + result.err
    assert SECRET_KEY not in result.out + result.err


# -- 1. advice in the command line's own words ---------------------------------------------------


async def test_codes_sts_refuses_are_explained_without_python(cli: Cli, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.sh"
    wrong.write_text(f"#!/bin/sh\necho {cli.fake.wrong_code(SERIAL)}\n")
    wrong.chmod(0o755)
    result = await cli.run(
        "credential-process", "--profile", "base", "--mfa-command", str(wrong), mfa=False
    )
    assert result.status == 1
    *attempts, last = result.err.splitlines()
    assert len(attempts) == 2  # each time the command is asked again, it is said why
    assert all("STS rejected the last code" in line for line in attempts)
    assert last.startswith("aio-sts-session: error: No MFA code was accepted")
    assert "mfa_serial" in last
    assert "run the command again" in result.err
    assert_speaks_cli(result)


async def test_an_unreachable_sts_names_the_url_and_where_it_came_from(cli: Cli) -> None:
    dead = "http://127.0.0.1:9"  # discard: nothing listens
    config = (cli.home / "config").read_text().replace(cli.fake.url, dead)
    (cli.home / "config").write_text(config)
    result = await cli.run("credential-process", "--profile", "base")
    assert_one_line_error(result, cli.fake, dead)
    assert "profile's endpoint settings" in result.err
    assert "retry by itself" not in result.err
    assert_speaks_cli(result)
    by_variable = await cli.run(
        "credential-process", "--profile", "base", env={"AWS_ENDPOINT_URL_STS": dead + "/"}
    )
    assert "AWS_ENDPOINT_URL_STS" in by_variable.err
    assert cli.prompts == 0  # STS is checked before anyone is asked for a code


async def test_an_entry_written_with_another_key_is_explained_in_the_cli_words(cli: Cli) -> None:
    first = {"AIO_STS_SESSION_CACHE_KEY": EncryptedFileCache.generate_key()}
    await cli.run("credential-process", "--profile", "base", env=first)
    second = {"AIO_STS_SESSION_CACHE_KEY": EncryptedFileCache.generate_key()}
    result = await cli.run("credential-process", "--profile", "base", env=second)
    assert result.status == 0, result.err
    assert "AIO_STS_SESSION_CACHE_KEY" in result.err
    assert "key=[" not in result.err
    assert_speaks_cli(result)


async def test_no_profile_and_no_keys_points_at_profile_not_python(cli: Cli) -> None:
    result = await cli.run("credential-process")  # no --profile, no AWS_PROFILE, no [default]
    assert result.status == 1
    assert "--profile" in result.err
    assert_speaks_cli(result)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--mfa-timeout", "-5"], "--mfa-timeout"),
        (["--mfa-timeout", "soon"], "--mfa-timeout"),
        (["--duration", "5"], "--duration"),
        (["--duration", "a-while"], "--duration"),
        (["--prompt", "carrier-pigeon"], "--prompt"),
    ],
)
async def test_a_command_line_that_cannot_work_is_exit_2_naming_the_flag(
    cli: Cli, args: list[str], flag: str
) -> None:
    result = await cli.run("credential-process", "--profile", "base", *args)
    assert result.status == 2, result.err
    assert flag in result.err
    assert_speaks_cli(result)
    assert cli.fake.calls == []
    assert cli.prompts == 0


async def test_an_mfa_timeout_names_the_flag(cli: Cli) -> None:
    result = await cli.run(
        "credential-process",
        "--profile",
        "base",
        "--mfa-command",
        f"{sys.executable} -c 'import time; time.sleep(30)'",
        "--mfa-timeout",
        "1",
        mfa=False,
    )
    assert_one_line_error(result, cli.fake, "--mfa-timeout")
    assert_speaks_cli(result)


# -- 2. status -------------------------------------------------------------------------------


async def test_status_shows_each_profile_and_its_cached_credentials(cli: Cli) -> None:
    cli.write_config(
        extra="\n[profile tool]\ncredential_process = aio-sts-session credential-process "
        "--profile admin\n\n[profile plain]\nregion = us-east-1\n"
    )
    before = await cli.run("status", "--json")
    assert before.status == 0, before.err
    rows = {row["profile"]: row for row in json.loads(before.out)}
    assert set(rows) == {"base", "admin", "tool"}  # plain: nothing this tool serves
    assert rows["base"]["expires"] is None
    assert rows["base"]["seconds_left"] is None
    await cli.run("credential-process", "--profile", "admin")
    calls, prompts = len(cli.fake.calls), cli.prompts
    after = await cli.run("status", "--json")
    rows = {row["profile"]: row for row in json.loads(after.out)}
    assert rows["base"]["kind"] == "session"
    assert rows["admin"]["kind"] == "role"
    assert rows["tool"]["via"] == "admin"
    assert rows["admin"]["mfa_serial"] == SERIAL
    assert rows["admin"]["keys"] == "credentials file"
    assert 3000 < rows["admin"]["seconds_left"] <= 3600  # the role's own, one hour
    assert rows["admin"]["session"]["seconds_left"] > 11 * 3600  # the session beneath it
    assert rows["base"]["seconds_left"] > 11 * 3600
    assert rows["admin"]["expires"].endswith("Z")
    assert (len(cli.fake.calls), cli.prompts) == (calls, prompts)  # reads only
    table = await cli.run("list")
    assert table.status == 0
    assert re.search(r"admin\s+role\s+arn:aws:iam::123456789012:mfa/alice", table.out)
    assert re.search(r"\b1[012]h \d\dm\b", table.out)  # about 12 hours left
    for result in (after, table):
        no_secret_in(result, cli)
        assert ACCESS_KEY not in result.out
        assert not re.search(r"ASIA[A-Z0-9]{12}", result.out)


async def test_status_lists_profiles_whose_keys_are_not_there_yet(cli: Cli) -> None:
    """A new user with mfa_serial and role profiles but no keys yet saw "no profile … uses
    MFA, a role, or this tool" (``--json``: ``[]``)."""
    (cli.home / "credentials").write_text("")
    result = await cli.run("status", "--json")
    assert result.status == 0, result.err
    rows = {row["profile"]: row for row in json.loads(result.out)}
    assert set(rows) == {"base", "admin"}
    assert rows["base"]["keys"] is None
    assert rows["admin"]["kind"] == "role"
    assert rows["admin"]["add_keys"] == "aio-sts-session add base"
    table = await cli.run("status")
    assert re.search(r"admin\s+role\s+\S+\s+none \[base\]", table.out), table.out
    assert "profile base has no long-term keys yet: add them with 'aio-sts-session add base'" in (
        table.out
    )


async def test_a_profile_that_runs_this_tool_points_at_the_profile_it_wraps(cli: Cli) -> None:
    cli.write_config(
        extra="\n[profile admin-cli]\ncredential_process = aio-sts-session credential-process "
        "--profile admin\n"
    )
    result = await cli.run("exec", "--profile", "admin-cli", "--", "true")
    assert_one_line_error(result, cli.fake, "use the profile it wraps, 'admin'")
    assert "cannot use" not in result.err


async def test_status_needs_no_cache_key(cli: Cli) -> None:
    await cli.run("credential-process", "--profile", "base")
    key_file = cli.home / ".config" / "aio-sts-session" / "cache.key"
    key_file.unlink()  # status reads the clear-text expiry: no key
    result = await cli.run("status", "--profile", "base", "--json")
    assert result.status == 0, result.err
    assert json.loads(result.out)[0]["seconds_left"] > 11 * 3600
    assert not key_file.exists()


# -- 3. the flags people expect ----------------------------------------------------------------


async def test_version(cli: Cli) -> None:
    result = await cli.run("--version", mfa=False)
    assert result.out.strip() == f"aio-sts-session {__version__}"


async def test_duration_sets_the_roles_or_the_sessions(cli: Cli) -> None:
    await cli.run("credential-process", "--profile", "admin", "--duration", "1800")
    assert [c.duration for c in cli.fake.role_calls] == [1800]
    assert [c.duration for c in cli.fake.token_calls] == [43200]
    await cli.run("credential-process", "--profile", "base", "--duration", "7200")
    assert [c.duration for c in cli.fake.token_calls] == [43200, 7200]


@pytest.mark.parametrize(
    ("flag", "environment", "expected"),
    [
        (None, {}, "us-east-1"),  # the profile's
        (None, {"AWS_REGION": "eu-central-1"}, "eu-central-1"),  # what you exported wins
        ("ap-south-1", {"AWS_REGION": "eu-central-1"}, "ap-south-1"),  # --region wins all
    ],
)
async def test_region_precedence(
    cli: Cli, flag: str | None, environment: dict[str, str], expected: str
) -> None:
    args = ["env", "--profile", "base", "--format", "json"] + (["--region", flag] if flag else [])
    result = await cli.run(*args, env=environment)
    assert json.loads(result.out)["AWS_REGION"] == expected
    show = "import os; print(os.environ['AWS_REGION'])"
    args = ["exec", "--profile", "base"] + (["--region", flag] if flag else [])
    ran = await cli.run(*args, "--", sys.executable, "-c", show, env=environment)
    assert ran.out.strip() == expected


async def test_exec_without_a_command_starts_the_shell_marked_as_nested(
    cli: Cli, tmp_path: Path
) -> None:
    shell = tmp_path / "myshell"
    shell.write_text(
        '#!/bin/sh\necho "shell $AIO_STS_SESSION_EXEC ${AWS_SESSION_TOKEN:+with-token}"\n'
    )
    shell.chmod(0o755)
    result = await cli.run("exec", "--profile", "base", env={"SHELL": str(shell)})
    assert result.status == 0, result.err
    assert result.out.strip() == "shell base with-token"


async def test_exec_hands_the_child_the_profiles_endpoints(cli: Cli) -> None:
    show = "import os; print(os.environ.get('AWS_ENDPOINT_URL_STS'))"
    for server in ([], ["--server"]):
        result = await cli.run(
            "exec", *server, "--profile", "base", "--", sys.executable, "-c", show
        )
        assert result.out.strip() == cli.fake.url, result.err


async def test_shell_completion_of_commands_and_profiles(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "completions"

    async def complete(line: str) -> list[str]:
        out.unlink(missing_ok=True)
        env = {
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_IFS": "\n",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        }
        await cli.run(*line.split()[1:2] or ["--help"], env=env, mfa=False)
        return out.read_text().split("\n") if out.exists() else []

    assert "status" in {c.strip() for c in await complete("aio-sts-session sta")}
    assert {"admin", "base"} <= {
        c.strip() for c in await complete("aio-sts-session status --profile ")
    }


# -- 4. cache clear ------------------------------------------------------------------------------


async def test_cache_clear_counts_what_existed_and_keeps_the_shared_session(cli: Cli) -> None:
    await cli.run("credential-process", "--profile", "admin")
    role_only = await cli.run("cache", "clear", "--profile", "admin")
    assert "removed 1 cached credential " in role_only.out
    assert "--session" in role_only.out
    again = await cli.run("cache", "clear", "--profile", "admin")
    assert "removed 0 cached credentials" in again.out
    await cli.run("credential-process", "--profile", "base")  # the session survived
    assert cli.prompts == 1
    with_session = await cli.run("cache", "clear", "--profile", "admin", "--session")
    assert "removed 1 cached credential " in with_session.out
    # Every profile on that session, the cleared one and a wrapper included (a new user saw
    # only one of them named):
    assert "shared by admin and base: the next of them to run asks" in with_session.out
    all_gone = await cli.run("cache", "clear")
    assert "removed 0 cached credentials" in all_gone.out
    directory = cli.home / ".cache" / "aio-sts-session"
    assert sorted(p.suffix for p in directory.iterdir()) == []  # no entry, lock or record left


async def test_a_failure_with_valid_credentials_in_hand_is_one_message(cli: Cli) -> None:
    """A new user without a terminal saw "… serving the current ones (valid 43181 s more)"
    and then an error: the MFA session had to be renewed (STS refused it signing AssumeRole)
    and no code could be asked. One outcome, one line."""
    await cli.run("credential-process", "--profile", "admin")
    await cli.run("cache", "clear", "--profile", "admin")  # the role; the session stays
    cli.fake.faults.append(
        Fault(400, "ExpiredToken", "The security token included in the request is expired",
              action="AssumeRole")
    )  # fmt: skip
    result = await cli.run("credential-process", "--profile", "admin", mfa=False)
    assert_one_line_error(result, cli.fake, "there is no terminal")
    assert "serving the current ones" not in result.err


async def test_lock_files_go_with_their_entries(cli: Cli) -> None:
    directory = cli.home / ".cache" / "aio-sts-session"
    for _ in range(2):  # (the test's MFA device has three fresh codes at a time)
        await cli.run("credential-process", "--profile", "admin")
        await cli.run("cache", "clear", "--profile", "admin", "--session")
    assert list(directory.glob("*.lock")) == []
    await cli.run("credential-process", "--profile", "admin")
    assert len(list(directory.glob("*.lock"))) == len(list(directory.glob("*.token"))) == 2


# -- 5. a prompt wherever the person is -------------------------------------------------------


async def test_the_terminal_prompt_names_the_profile_and_shows_the_commands_stderr(
    cli: Cli, tmp_path: Path
) -> None:
    async with on_a_terminal(cli, "credential-process", "--profile", "admin") as (process, tty):
        prompt = await asyncio.to_thread(read_until, tty, b"): ")
        assert b"MFA code for profile admin (" + SERIAL.encode() + b")" in prompt
        os.write(tty, f"{cli.fake.fresh_code(SERIAL)}\n".encode())
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    # A command's stderr ("Touch your YubiKey") goes to the terminal, not into botocore's pipe.
    touch = tmp_path / "touch.sh"
    touch.write_text(f"#!/bin/sh\necho 'Touch your YubiKey...' >&2\nexec {MFA_COMMAND}\n")
    touch.chmod(0o755)
    args = ["--profile", "base", "--duration", "3600", "--mfa-command", str(touch)]
    async with on_a_terminal(cli, "credential-process", *args) as (process, tty):
        shown = await asyncio.to_thread(read_until, tty, b"YubiKey")
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert b"Touch your YubiKey" in shown
    assert process.returncode == 0, err
    assert b"YubiKey" not in err


async def test_without_a_terminal_the_commands_stderr_goes_to_stderr(
    cli: Cli, tmp_path: Path
) -> None:
    touch = tmp_path / "touch.sh"
    touch.write_text(f"#!/bin/sh\necho 'Touch your YubiKey...' >&2\nexec {MFA_COMMAND}\n")
    touch.chmod(0o755)
    result = await cli.run(
        "credential-process", "--profile", "base", "--mfa-command", str(touch), mfa=False
    )
    assert result.status == 0, result.err
    assert "Touch your YubiKey" in result.err


def stand_in_dialog(
    tmp_path: Path,
    cli: Cli,
    program: str,
    exit_status: int = 0,
    typos: Sequence[str] = (),
) -> Path:
    """A recorded stand-in for zenity/kdialog: logs its argv (each call's, appended), answers
    like the real one: what a person typed (``typos`` first, one per call, then the code)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / f"{program}.argv"
    calls = tmp_path / f"{program}.calls"
    script = bin_dir / program
    answer = (
        f"FAKE_MFA_STYLE=${{FAKE_MFA_STYLE:-plain}} exec {MFA_COMMAND}"
        if exit_status == 0
        else f"exit {exit_status}"
    )
    typed = "".join(
        f'if [ "$n" = {i} ]; then printf "%s\\n" {shlex.quote(t)}; exit 0; fi\n'
        for i, t in enumerate(typos)
    )
    script.write_text(
        f"#!/bin/sh\nprintf '%s\\n' \"$@\" >> {log}\n"
        f"n=$(cat {calls} 2>/dev/null || echo 0); echo $((n + 1)) > {calls}\n"
        f"{typed}{answer}\n"
    )
    script.chmod(0o755)
    return log


@pytest.mark.parametrize("program", ["zenity", "kdialog"])
async def test_without_a_terminal_a_dialog_asks_when_there_is_a_display(
    cli: Cli, tmp_path: Path, program: str
) -> None:
    log = stand_in_dialog(tmp_path, cli, program)
    path = f"{tmp_path / 'bin'}{os.pathsep}{cli.env['PATH']}"
    env = {"PATH": path, "DISPLAY": ":99"}
    if program == "kdialog":  # first in the automatic order is zenity: choose kdialog
        env["AIO_STS_SESSION_PROMPT"] = "kdialog"
    result = await cli.run("credential-process", "--profile", "admin", env=env, mfa=False)
    assert result.status == 0, result.err
    argv = log.read_text().splitlines()
    assert any(f"MFA code for profile admin ({SERIAL})" in arg for arg in argv), argv
    assert ("--entry" if program == "zenity" else "--inputbox") in argv
    assert cli.prompts == 1


async def test_a_dialog_is_as_forgiving_as_the_terminal(cli: Cli, tmp_path: Path) -> None:
    """A new user's typo in a dialog (``abc12``, ``12 34 56``) ended the command ("printed no
    six-digit code"); the terminal asks again and takes ``123 456``. Now a dialog does too."""
    log = stand_in_dialog(tmp_path, cli, "zenity", typos=["abc12", "12 34 5"])
    path = f"{tmp_path / 'bin'}{os.pathsep}{cli.env['PATH']}"
    env = {"PATH": path, "DISPLAY": ":99", "FAKE_MFA_STYLE": "spaced"}
    result = await cli.run("credential-process", "--profile", "base", env=env, mfa=False)
    assert result.status == 0, result.err
    texts = [line for line in log.read_text().splitlines() if line.startswith("MFA code")]
    assert len(texts) == 3
    assert "six digits, please; attempt 2/3" in texts[1]
    assert "attempt 3/3" in texts[2]
    assert [c.outcome for c in cli.fake.token_calls] == ["ok"]  # the typos never reached STS


async def test_a_cancelled_dialog_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    stand_in_dialog(tmp_path, cli, "zenity", exit_status=1)
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{cli.env['PATH']}", "DISPLAY": ":99"}
    result = await cli.run("credential-process", "--profile", "base", env=env, mfa=False)
    assert_one_line_error(result, cli.fake, "cancelled")
    assert cli.fake.token_calls == []


async def test_no_terminal_no_display_no_command_says_how_to_give_a_code(cli: Cli) -> None:
    result = await cli.run("credential-process", "--profile", "base", mfa=False)
    assert_one_line_error(result, cli.fake, "--mfa-command")
    assert_speaks_cli(result)


async def test_prompt_command_without_a_command_is_a_usage_error(cli: Cli) -> None:
    result = await cli.run(
        "credential-process", "--profile", "base", "--prompt", "command", mfa=False
    )
    assert result.status == 2
    assert "--mfa-command" in result.err


@pytest.mark.skipif(
    not all(shutil.which(p) for p in ("Xvfb", "zenity", "xdotool")),
    reason="needs Xvfb, zenity and xdotool (apt-get install xvfb zenity xdotool)",
)
async def test_a_real_zenity_dialog_under_xvfb_typed_into_with_xdotool(cli: Cli) -> None:
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(  # noqa: ASYNC220 - a server for the whole test
        ["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        number = await asyncio.wait_for(asyncio.to_thread(os.read, read_end, 16), 30)
        display = f":{number.decode().strip()}"  # a free display Xvfb chose itself
        env = {**cli.env, "DISPLAY": display, "AIO_STS_SESSION_PROMPT": "zenity"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aio_sts_session", "credential-process", "--profile", "base",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True,
        )  # fmt: skip
        focused = ""
        for _ in range(1200):  # the dialog appears once GetCallerIdentity checked the keys
            # Only a mapped (visible) window can take the focus: focusing one that exists but
            # is not mapped yet is X's BadMatch (X_SetInputFocus), seen on a loaded machine.
            found = await asyncio.to_thread(
                subprocess.run,
                ["xdotool", "search", "--onlyvisible", "--name", "aio-sts-session"],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            for window in found.stdout.split():
                focus = await asyncio.to_thread(
                    subprocess.run, ["xdotool", "windowfocus", "--sync", window],
                    env=env, capture_output=True, check=False,
                )  # fmt: skip
                if focus.returncode == 0:
                    focused = window
                    break
            if focused or process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        if not focused:
            process.kill()
            _, err = await process.communicate()
            raise AssertionError(f"the dialog never took the focus; the command said: {err!r}")
        for keys in (["type", cli.fake.fresh_code(SERIAL)], ["key", "Return"]):
            await asyncio.to_thread(subprocess.run, ["xdotool", *keys], env=env, check=True)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        os.close(read_end)
        xvfb.terminate()
        xvfb.wait()
    assert process.returncode == 0, err
    assert json.loads(out)["AccessKeyId"].startswith("ASIA")
    assert [c.outcome for c in cli.fake.token_calls] == ["ok"]


async def test_verbose_says_where_credentials_came_from(cli: Cli) -> None:
    await cli.run("credential-process", "--profile", "base")
    result = await cli.run("-v", "credential-process", "--profile", "admin", mfa=False)
    assert result.status == 0, result.err
    lines = result.err.splitlines()
    session_lines = [line for line in lines if "mfa_serial=" in line and "role_arn" not in line]
    assert any("taken from the cache" in line for line in session_lines), lines
    assert not any("New credentials" in line for line in session_lines), lines
    assert any("New credentials" in line and "role_arn" in line for line in lines), lines


async def test_a_profile_without_mfa_is_refused_unless_told(cli: Cli) -> None:
    """A new user's profile without mfa_serial got a session without MFA, and the warning
    never showed: the AWS CLI discards a credential process's stderr unless it fails."""
    with (cli.home / "credentials").open("a") as fh:
        fh.write(
            f"[nomfa]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        )
    with (cli.home / "config").open("a") as fh:
        fh.write("\n[profile nomfa]\nregion = us-east-1\nservices = fake\n")
    refused = await cli.run("credential-process", "--profile", "nomfa", mfa=False)
    assert_one_line_error(refused, cli.fake, "name no mfa_serial")
    assert "--no-mfa" in refused.err
    assert cli.fake.calls == []  # refused before anything else
    meant = await cli.run(
        "credential-process", "--profile", "nomfa", "--no-mfa", "--duration", "3600", mfa=False
    )
    assert meant.status == 0, meant.err
    assert meant.err == ""
    again = await cli.run("credential-process", "--profile", "nomfa", mfa=False)
    assert again.status == 1  # not served by the warm path from --no-mfa's record
    assert cli.prompts == 0


# -- a new user's first steps ------------------------------------------------------------------


async def test_wrap_writes_a_profile_that_any_aws_tool_can_use_from_anywhere(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``credential_process = aio-sts-session …`` needed the tool on PATH: from a virtual
    environment, ``aws`` elsewhere failed with [Errno 2]. ``wrap`` writes the line with the
    tool's absolute path."""
    printed = await cli.run("wrap", "base", mfa=False)
    assert printed.status == 0, printed.err
    assert printed.out.startswith("[profile base-cli]\ncredential_process = /")
    assert "credential-process --profile base" in printed.out
    written = await cli.run("wrap", "admin", "--as", "work", "--write", mfa=False)
    assert written.status == 0, written.err
    config = (cli.home / "config").read_text()
    assert "\n\n[profile work]\ncredential_process = /" in config
    line = next(x for x in config.splitlines() if x.startswith("credential_process"))
    command = line.split(" = ", 1)[1].replace(
        "credential-process", f"credential-process --mfa-command '{MFA_COMMAND}'", 1
    )
    (cli.home / "config").write_text(config.replace(line, f"credential_process = {command}"))
    env = {**cli.env, "PATH": "/usr/bin:/bin"}  # the tool is not on it
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def call() -> str:
        session = botocore.session.Session(profile="work")
        client = session.create_client("sts", endpoint_url=cli.fake.url, region_name="us-east-1")
        return str(client.get_caller_identity()["Arn"])

    assert ":assumed-role/admin/" in await asyncio.to_thread(call)
    again = await cli.run("wrap", "admin", "--as", "work", mfa=False)
    assert again.status == 2
    assert "exists already" in again.err
    status = json.loads((await cli.run("status", "--json")).out)
    assert {row["profile"]: row["via"] for row in status}["work"] == "admin"


async def test_a_flag_typo_shows_the_commands_usage_and_help_is_not_repeated(cli: Cli) -> None:
    typo = await cli.run("credential-process", "--profle", "base", mfa=False)
    assert typo.status == 2
    assert typo.err.startswith("usage: aio-sts-session credential-process")
    assert "unrecognized arguments: --profle base" in typo.err
    nested = await cli.run("cache", "clear", "--everything", mfa=False)
    assert nested.err.startswith("usage: aio-sts-session cache clear")
    for command in ("credential-process", "env", "exec", "add"):
        sub = await cli.run(command, "--help", mfa=False)
        assert "cache key:" not in sub.out  # the long story is told once, at the top
        assert "aio-sts-session --help" in sub.out
    env_help = (await cli.run("env", "--help", mfa=False)).out
    assert re.search(r"--format \{sh,fish,powershell,json\}\s+the shell", env_help)
