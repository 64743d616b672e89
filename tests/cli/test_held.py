"""What the second red-team review attacked and found holding: a test each, so that it keeps
holding. Real subprocesses against the strict fake STS, as in test_cli."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aio_sts_session import EncryptedFileCache
from aio_sts_session.cli.output import credential_env, render_env
from aio_sts_session.testing import issued_secrets

from ..conftest import ACCESS_KEY, SECRET_KEY

# The command-line fixtures (the wall clock, as the CLI runs on it):
from .conftest import MFA_COMMAND, Cli, add_from_stdin, keyring_item
from .test_warm import run

CACHE = Path(".cache") / "aio-sts-session"

# -- the warm path -----------------------------------------------------------------------------


def _same_length_edit(path: Path) -> None:
    """A change of one character, then the modification time put back to the nanosecond."""
    info = path.stat()
    text = path.read_text()
    path.write_text(text.replace("us-east-1", "us-east-2", 1))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def _copy_preserving_all(path: Path) -> None:
    """``cp --preserve=all`` of another version over it (the same size and times)."""
    other = path.with_name("other")
    other.write_text(path.read_text().replace("us-east-1", "us-east-2", 1))
    shutil.copystat(path, other)
    subprocess.run(["cp", "--preserve=all", str(other), str(path)], check=True)


@pytest.mark.parametrize("edit", [_same_length_edit, _copy_preserving_all])
async def test_edits_that_keep_size_and_mtime_are_still_noticed(
    cli: Cli, tmp_path: Path, edit: object
) -> None:
    cli.fake.regions.add("us-east-2")
    await run(cli, tmp_path, "credential-process", "--profile", "base")
    assert (await run(cli, tmp_path, "credential-process", "--profile", "base")).warm
    await asyncio.to_thread(edit, cli.home / "config")  # type: ignore[arg-type]
    after = await run(cli, tmp_path, "credential-process", "--profile", "base")
    assert not after.warm  # the change time (and inode, for a copy) moved


async def test_a_record_copied_over_another_fingerprints_record_is_not_replayed(
    cli: Cli, tmp_path: Path
) -> None:
    await run(cli, tmp_path, "credential-process", "--profile", "base")
    await run(cli, tmp_path, "credential-process", "--profile", "admin")
    records = sorted((cli.home / CACHE).glob("*.warm"), key=lambda p: p.stat().st_mtime_ns)
    assert len(records) == 2
    base, admin = records
    shutil.copyfile(base, admin)  # base's record under admin's name
    again = await run(cli, tmp_path, "credential-process", "--profile", "admin")
    assert not again.warm  # it does not decrypt under admin's fingerprint
    assert (
        json.loads(again.result.out)["AccessKeyId"]
        != json.loads(
            (await run(cli, tmp_path, "credential-process", "--profile", "base")).result.out
        )["AccessKeyId"]
    )


async def test_profile_flag_spellings_agree(cli: Cli, tmp_path: Path) -> None:
    spaced = await run(cli, tmp_path, "credential-process", "--profile", "base")
    joined = await run(cli, tmp_path, "credential-process", "--profile=base")
    assert joined.warm  # the same request: the record of the first answers the second
    assert joined.result.out == spaced.result.out


@pytest.mark.parametrize("command", ["remove", "rotate"])
async def test_remove_and_rotate_invalidate_warm_records(
    keyring_cli: Cli, tmp_path: Path, command: str
) -> None:
    cli = keyring_cli
    cli.env["AIO_STS_SESSION_CACHE_KEY"] = EncryptedFileCache.generate_key()  # not the keyring's
    await add_from_stdin(cli)
    first = await run(cli, tmp_path, "credential-process", "--profile", "base")
    assert (await run(cli, tmp_path, "credential-process", "--profile", "base")).warm
    done = await cli.run(command, "base", mfa=command == "rotate")
    assert done.status == 0, done.err
    if command == "remove":  # the plain-text keys are left: a new session from them
        after = await run(cli, tmp_path, "credential-process", "--profile", "base")
        assert not after.warm
        return
    after = await run(cli, tmp_path, "credential-process", "--profile", "base")
    assert not after.warm
    assert after.result.out != first.result.out  # a session of the new key


async def test_twenty_runs_at_once_on_an_empty_cache_ask_for_one_code(cli: Cli) -> None:
    results = await asyncio.gather(
        *(cli.run("credential-process", "--profile", "admin") for _ in range(20))
    )
    assert all(r.status == 0 for r in results), [r.err for r in results if r.status]
    assert cli.prompts == 1
    assert len({json.loads(r.out)["AccessKeyId"] for r in results}) == 1


async def test_thirty_runs_racing_cache_clear_all_succeed(cli: Cli) -> None:
    await cli.run("credential-process", "--profile", "base")
    runs = [cli.run("credential-process", "--profile", "base") for _ in range(30)]
    clears = [cli.run("cache", "clear", mfa=False) for _ in range(5)]
    results = await asyncio.gather(*runs, *clears)
    assert all(r.status == 0 for r in results), [r.err for r in results if r.status]


@pytest.mark.parametrize("limit", [12, 24, 48])
async def test_a_tiny_descriptor_limit_still_answers(cli: Cli, limit: int) -> None:
    await cli.run("credential-process", "--profile", "base")
    for env in ({}, {"AIO_STS_SESSION_DEBUG": "0"}):  # warm, then the full path (-v)
        argv = [sys.executable, "-m", "aio_sts_session", "credential-process"]
        script = f'ulimit -n {limit}; exec "$@"'
        args = [*argv, "--profile", "base", "--mfa-command", MFA_COMMAND]
        process = await asyncio.create_subprocess_exec(
            "sh", "-c", script, "sh", *args, env={**cli.env, **env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert json.loads(out)["AccessKeyId"].startswith("ASIA")


# -- what is printed ---------------------------------------------------------------------------

NASTY = [
    "line one\nline two",
    "$(touch /tmp/aio-sts-session-pwned)",
    "`touch /tmp/aio-sts-session-pwned`",
    "it\u2019s \u2018quoted\u2019 \u201cdouble\u201d",
    "back\\slash 'single' \"double\" $HOME ${HOME}",
]


@pytest.mark.parametrize("value", NASTY)
def test_env_output_round_trips_through_sh_and_json(value: str) -> None:
    env = credential_env("ASIAEXAMPLE", value, value, "2030-01-01T00:00:00+00:00", "eu-west-1")
    script = (
        render_env(env, "sh") + 'printf "%s\\0%s" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN"'
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    assert out.decode().split("\0") == [value, value]
    assert json.loads(render_env(env, "json"))["AWS_SECRET_ACCESS_KEY"] == value
    assert not Path("/tmp/aio-sts-session-pwned").exists()


@pytest.mark.parametrize("shell", ["fish", "pwsh"])
@pytest.mark.parametrize("value", NASTY)
def test_env_output_round_trips_through_fish_and_powershell(shell: str, value: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    style = "fish" if shell == "fish" else "powershell"
    env = credential_env("ASIAEXAMPLE", value, value, "2030-01-01T00:00:00+00:00", None)
    read = "echo $AWS_SECRET_ACCESS_KEY" if shell == "fish" else "$Env:AWS_SECRET_ACCESS_KEY"
    args = ["-c", render_env(env, style) + read]
    out = subprocess.run([shell, *args], capture_output=True, check=True, text=True).stdout
    assert out.rstrip("\r\n") == value


async def test_the_token_is_in_no_command_line_and_the_environment_is_the_users_alone(
    cli: Cli,
) -> None:
    probe = (
        "import json, os, stat\n"
        "info = os.stat('/proc/self/environ')\n"
        "print(json.dumps({'cmdline': open('/proc/self/cmdline', 'rb').read().decode(),\n"
        "  'mode': stat.S_IMODE(info.st_mode), 'uid': info.st_uid,\n"
        "  'token': os.environ['AWS_CONTAINER_AUTHORIZATION_TOKEN']}))\n"
    )
    if not Path("/proc/self/environ").exists():
        pytest.skip("no /proc")
    result = await cli.run(
        "exec", "--server", "--profile", "base", "--", sys.executable, "-c", probe
    )
    assert result.status == 0, result.err
    report = json.loads(result.out.strip().splitlines()[-1])
    assert report["token"] not in report["cmdline"]
    assert report["mode"] & 0o077 == 0  # readable by its owner only
    assert report["uid"] == os.getuid()


async def test_no_secret_in_verbose_output_debug_output_status_completion_or_help(
    cli: Cli, tmp_path: Path
) -> None:
    served = await cli.run("-v", "credential-process", "--profile", "admin")
    assert served.status == 0, served.err
    outputs = [served.err]
    debug = await cli.run(
        "-v", "credential-process", "--profile", "base", env={"AIO_STS_SESSION_DEBUG": "1"}
    )
    outputs += [debug.err]
    outputs += [(await cli.run("status", "--json")).out, (await cli.run("status")).out]
    outputs += [(await cli.run("--help", mfa=False)).out]
    outputs += [(await cli.run(c, "--help", mfa=False)).out for c in ("exec", "env", "add")]
    completion = await cli.run(
        "credential-process",
        env={"_ARGCOMPLETE": "1", "COMP_LINE": "aio-sts-session credential-process --profile ",
             "COMP_POINT": "47", "_ARGCOMPLETE_STDOUT_FILENAME": str(tmp_path / "completion")},
        mfa=False,
    )  # fmt: skip
    outputs += [completion.out + completion.err]
    if (tmp_path / "completion").exists():
        outputs += [(tmp_path / "completion").read_text()]
    secrets = [SECRET_KEY, *issued_secrets(cli.fake)]
    for text in outputs:
        for secret in secrets:
            assert secret not in text
        assert ACCESS_KEY not in text or "AKIA…" in text or text is served.err


# -- rotate ------------------------------------------------------------------------------------


async def test_a_rotation_killed_mid_check_leaves_the_new_key_and_the_next_names_the_orphan(
    keyring_cli: Cli,
) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    cli.fake.key_activation_calls = 10_000  # the new key's checks go on (7.5 s)
    argv = [sys.executable, "-m", "aio_sts_session", "rotate", "base", "--mfa-command"]
    process = await asyncio.create_subprocess_exec(
        *argv, MFA_COMMAND, env=cli.env, stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert process.stderr is not None
    while b"has not activated" not in await asyncio.wait_for(process.stderr.readline(), 60):
        pass
    process.send_signal(signal.SIGKILL)
    await process.wait()
    item = await keyring_item(cli)
    assert item is not None
    new = item["aws_access_key_id"]
    assert new != ACCESS_KEY  # the new key was stored before the checks began
    cli.fake.pending_keys[new] = 0  # IAM has activated it since
    again = await cli.run("rotate", "base")
    assert again.status == 1
    assert f"the keyring holds {new}" in again.err
    assert f"delete the other ({ACCESS_KEY})" in again.err  # the orphan: the old key
