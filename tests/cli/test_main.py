"""The command line, run as a real subprocess in a new session (no controlling terminal) against
the strict fake STS, with config files in a temporary HOME."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import botocore.session
import pyotp
import pytest

from ..conftest import SERIAL
from .conftest import MFA_COMMAND, Cli, assert_one_line_error, on_a_terminal, read_until


async def test_credential_process_json_then_served_from_the_cache(cli: Cli) -> None:
    first = await cli.run("credential-process", "--profile", "base")
    assert first.status == 0, first.err
    data = json.loads(first.out)
    assert set(data) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert data["Version"] == 1
    assert data["AccessKeyId"].startswith("ASIA")
    expiration = dt.datetime.strptime(data["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
    left = expiration.replace(tzinfo=dt.timezone.utc).timestamp() - time.time()
    assert left > 11 * 3600  # a 12-hour MFA session
    assert [c.serial for c in cli.fake.token_calls] == [SERIAL]
    assert cli.prompts == 1
    calls = len(cli.fake.calls)
    second = await cli.run("credential-process", "--profile", "base")
    assert json.loads(second.out) == data
    assert len(cli.fake.calls) == calls  # no STS call at all
    assert cli.prompts == 1  # and no prompt
    entries = list((cli.home / ".cache" / "aio-sts-session").glob("*.token"))
    assert len(entries) == 1
    assert data["SecretAccessKey"].encode() not in entries[0].read_bytes()
    key_file = cli.home / ".config" / "aio-sts-session" / "cache.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"  # apart from the cache, user-only


async def test_a_warm_run_does_not_load_aiobotocore(cli: Cli) -> None:
    """A run served from the cache needs botocore's configuration only: aiobotocore and
    aiohttp (~0.3 s of imports) are not loaded (benchmarks/bench_cli.py has the figures)."""
    await cli.run("credential-process", "--profile", "admin")
    probe = (
        "import sys; from aio_sts_session.cli.main import main; "
        "status = main(['credential-process', '--profile', 'admin']); "
        "sys.stderr.write(str(sorted(m for m in ('aiobotocore', 'aiohttp') if m in sys.modules)));"
        "sys.exit(status)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, env=cli.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err
    assert json.loads(out)["AccessKeyId"].startswith("ASIA")
    assert err.decode() == "[]"


async def test_a_role_profile(cli: Cli) -> None:
    result = await cli.run("credential-process", "--profile", "admin")
    assert result.status == 0, result.err
    [call] = cli.fake.role_calls
    assert call.outcome == "ok"
    assert call.signed_with_session
    assert cli.prompts == 1
    again = await cli.run("credential-process", "--profile", "admin")
    assert json.loads(again.out) == json.loads(result.out)
    assert len(cli.fake.role_calls) == 1


async def test_botocore_with_credential_process_makes_a_signed_call(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = f"{sys.executable} -m aio_sts_session credential-process --profile base"
    cli.write_config(
        f"\n[profile tool]\ncredential_process = {command} --mfa-command '{MFA_COMMAND}'\n"
        "region = us-east-1\n"
    )
    for name, value in cli.env.items():
        monkeypatch.setenv(name, value)

    def call() -> str:
        session = botocore.session.Session(profile="tool")
        client = session.create_client("sts", endpoint_url=cli.fake.url)
        return str(client.get_caller_identity()["UserId"])

    user = await asyncio.to_thread(call)
    assert user.startswith("ASIA")  # signed with the MFA session's credentials
    assert cli.prompts == 1
    assert [c.outcome for c in cli.fake.token_calls] == ["ok"]


async def test_exec_passes_the_status_and_replaces_shadowing_variables(cli: Cli) -> None:
    check = (
        "import os, sys; e = os.environ; "
        "ok = e['AWS_SESSION_TOKEN'] and e['AWS_ACCESS_KEY_ID'].startswith('ASIA') "
        "and 'AWS_PROFILE' not in e and e['AWS_REGION'] == 'us-east-1' "
        "and e['AIO_STS_SESSION_EXEC'] == 'base'; sys.exit(7 if ok else 1)"
    )
    result = await cli.run(
        "exec",
        "--profile",
        "base",
        "--",
        sys.executable,
        "-c",
        check,
        env={"AWS_ACCESS_KEY_ID": "AKIASHADOW", "AWS_PROFILE": "other"},
    )
    assert result.status == 7, result.err


async def test_exec_refuses_to_nest(cli: Cli) -> None:
    result = await cli.run(
        "exec", "--profile", "base", "--", "true", env={"AIO_STS_SESSION_EXEC": "base"}
    )
    assert result.status == 2
    assert "Already inside 'aio-sts-session exec'" in result.err
    assert cli.fake.calls == []


CHILD = """
import json, os, sys, urllib.error, urllib.request
import botocore.session

uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
statuses = []
for headers in ({}, {"Authorization": "wrong"}):
    try:
        urllib.request.urlopen(urllib.request.Request(uri, headers=headers), timeout=5)
        statuses.append(200)
    except urllib.error.HTTPError as exc:
        statuses.append(exc.code)
session = botocore.session.Session()
creds = session.get_credentials()
client = session.create_client("sts", endpoint_url=os.environ["FAKE_URL"])
arn = client.get_caller_identity()["Arn"]
print(json.dumps({"statuses": statuses, "method": creds.method, "arn": arn,
                  "keys": "AWS_ACCESS_KEY_ID" in os.environ,
                  "token_length": len(os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]),
                  "host": uri.split("/")[2].split(":")[0]}))
sys.exit(5)
"""


async def test_exec_server_gives_the_sdk_a_credential_endpoint(cli: Cli) -> None:
    result = await cli.run(
        "exec",
        "--server",
        "--profile",
        "admin",
        "--",
        sys.executable,
        "-c",
        CHILD,
        env={"FAKE_URL": cli.fake.url, "AWS_ACCESS_KEY_ID": "AKIASHADOW"},
    )
    assert result.status == 5, result.err  # the command's status
    report = json.loads(result.out.strip().splitlines()[-1])
    assert report["statuses"] == [401, 403]  # no token, wrong token
    assert report["method"] == "container-role"  # botocore's container provider
    assert report["arn"].startswith("arn:aws:sts::123456789012:assumed-role/admin/")
    assert report["keys"] is False  # no inherited keys shadow the endpoint
    assert report["token_length"] >= 43  # 32 random bytes, URL-safe base64
    assert report["host"] == "127.0.0.1"
    assert cli.prompts == 1


@pytest.mark.parametrize("fmt", ["sh", "fish", "powershell", "json"])
async def test_env_formats(cli: Cli, fmt: str) -> None:
    result = await cli.run("env", "--profile", "base", "--format", fmt)
    assert result.status == 0, result.err
    token = cli.fake.token_calls and next(i.token for i in cli.fake.issued.values() if not i.arn)
    assert token
    if fmt == "json":
        env = json.loads(result.out)
        assert env["AWS_SESSION_TOKEN"] == token
        assert env["AWS_REGION"] == "us-east-1"
        return
    prefix = {
        "sh": "export AWS_SESSION_TOKEN=",
        "fish": "set -gx AWS_SESSION_TOKEN ",
        "powershell": "$Env:AWS_SESSION_TOKEN = ",
    }[fmt]
    [line] = [x for x in result.out.splitlines() if x.startswith(prefix)]
    assert token in line
    if fmt == "sh":
        shell = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            result.out + 'printf %s "$AWS_SESSION_TOKEN"',
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await shell.communicate()
        assert out.decode() == token


async def test_cache_clear(cli: Cli) -> None:
    await cli.run("credential-process", "--profile", "admin")
    cleared = await cli.run("cache", "clear", "--profile", "admin", "--session")
    assert cleared.status == 0, cleared.err
    assert "removed 2 cached credentials" in cleared.out  # the role's and the MFA session's
    await cli.run("credential-process", "--profile", "base")
    assert cli.prompts == 2
    everything = await cli.run("cache", "clear")
    assert "removed 1 cached credential " in everything.out


async def test_help_says_where_the_cache_and_its_key_live(cli: Cli) -> None:
    result = await cli.run("--help", mfa=False)
    assert result.status == 0
    assert str(cli.home / ".cache" / "aio-sts-session") in result.out
    assert f"the key file {cli.home / '.config' / 'aio-sts-session' / 'cache.key'}" in result.out
    with_env = await cli.run("--help", mfa=False, env={"AIO_STS_SESSION_CACHE_KEY": "x" * 43})
    assert "cache key: the environment variable AIO_STS_SESSION_CACHE_KEY" in with_env.out


# -- errors: one line, non-zero, no traceback, no secret ---------------------------------------


async def test_unknown_profile(cli: Cli) -> None:
    result = await cli.run("credential-process", "--profile", "nope")
    assert_one_line_error(result, cli.fake, "Profiles found: admin, base")


async def test_no_terminal_and_no_command(cli: Cli) -> None:
    result = await cli.run("credential-process", "--profile", "base", mfa=False)
    assert_one_line_error(
        result, cli.fake, "no terminal, no display for a dialog and no MFA command"
    )
    assert "--mfa-command" in result.err
    assert cli.fake.token_calls == []


@pytest.mark.parametrize(
    ("command", "match"),
    [
        (f"{sys.executable} -c 'import sys; sys.exit(3)'", "exited with status 3"),
        (f"{sys.executable} -c pass", "printed no six-digit code"),
        ("/nonexistent/mfa-tool", "could not be started"),
    ],
)
async def test_a_failing_or_silent_mfa_command(cli: Cli, command: str, match: str) -> None:
    result = await cli.run(
        "credential-process", "--mfa-command", command, "--profile", "base", mfa=False
    )
    assert_one_line_error(result, cli.fake, match)
    assert cli.fake.token_calls == []


async def test_mfa_process_in_the_profile_is_used(cli: Cli) -> None:
    cli.write_config()
    config = (cli.home / "config").read_text()
    (cli.home / "config").write_text(
        config.replace("services = fake\n", f"services = fake\nmfa_process = {MFA_COMMAND}\n", 1)
    )
    result = await cli.run("credential-process", "--profile", "base", mfa=False)
    assert result.status == 0, result.err
    assert cli.prompts == 1


async def test_sts_refusing(cli: Cli) -> None:
    cli.write_config(secret="not-the-secret-0000000000000000000000000")
    result = await cli.run("credential-process", "--profile", "base")
    assert_one_line_error(result, cli.fake, "did not accept the long-term access key")
    assert "not-the-secret" not in result.err
    assert cli.prompts == 0  # refused before anyone was asked


async def test_a_cache_key_that_cannot_be_used(cli: Cli) -> None:
    result = await cli.run(
        "credential-process", "--profile", "base", env={"AIO_STS_SESSION_CACHE_KEY": "nonsense"}
    )
    assert_one_line_error(result, cli.fake, "AIO_STS_SESSION_CACHE_KEY is not a cache key")
    key_dir = cli.home / ".config" / "aio-sts-session"
    key_dir.mkdir(parents=True)
    (key_dir / "cache.key").write_text("whatever")
    (key_dir / "cache.key").chmod(0o644)
    result = await cli.run("credential-process", "--profile", "base")
    assert_one_line_error(result, cli.fake, "can be read by other users")
    assert cli.prompts == 0


# -- the terminal prompt, through a pseudo-terminal ----------------------------------------------


async def test_credential_process_prompts_on_the_terminal_with_stdout_and_stderr_piped(
    cli: Cli,
) -> None:
    async with on_a_terminal(cli, "credential-process", "--profile", "base") as (process, master):
        prompt = await asyncio.to_thread(read_until, master, b"MFA code for")
        assert SERIAL.encode() in prompt
        code = cli.fake.fresh_code(SERIAL)
        os.write(master, f"{code}\n".encode())
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    assert json.loads(out)["AccessKeyId"].startswith("ASIA")
    assert b"MFA code" not in out
    assert b"MFA code" not in err
    assert [c.code for c in cli.fake.token_calls] == [code]


def test_the_mfa_command_helper_gives_unused_codes(tmp_path: Path) -> None:
    """The test helper itself: distinct codes of the device, logged (prompt counting)."""
    import subprocess

    secret = pyotp.random_base32()
    env = {
        **os.environ,
        "FAKE_TOTP_SECRET": secret,
        "FAKE_NOW": "1800000000",
        "FAKE_MFA_LOG": str(tmp_path / "log"),
    }
    codes = [
        subprocess.run(
            MFA_COMMAND.split(), env=env, capture_output=True, text=True, check=True
        ).stdout.split()[-1]
        for _ in range(3)
    ]
    totp = pyotp.TOTP(secret)
    assert codes == [totp.at(1800000000), totp.at(1800000030), totp.at(1799999970)]


@pytest.mark.parametrize(
    ("lifetime", "left", "renewed"),
    [(3600, 930, True), (3600, 600, True), (3600, 990, False), (900, 600, False)],
)
async def test_credential_process_renews_before_the_sdks_15_minute_window(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, lifetime: int, left: int, renewed: bool
) -> None:
    """Cached credentials with less than 16 minutes left: botocore would run the process again
    on every call within a minute, so they are renewed now when the lifetime allows (15.5 min
    left is only in the prefetch window of a 1-hour credential, which a one-shot process
    would serve as it is: this rule renews it). 16.5 min left is served. A 15-minute
    credential cannot do better than it is: served as it is, with no call and no prompt."""
    import aio_sts_session as ass
    from aio_sts_session import CachedToken, EncryptedFileCache, SessionCredentials

    key = EncryptedFileCache.generate_key()
    for name, value in {**cli.env, "AIO_STS_SESSION_CACHE_KEY": key}.items():
        monkeypatch.setenv(name, value)

    async def never(request: object) -> str:
        raise AssertionError("no prompt here")

    provider = ass.from_profile("base", mfa_callback=never)
    entry = await provider.entry_key()  # computed from the configuration: no STS call
    await provider.close()
    expires = time.time() + left
    old = SessionCredentials(
        "ASIAOLDOLDOLD", "old-secret", "old-token",
        dt.datetime.fromtimestamp(expires, dt.timezone.utc),
    )  # fmt: skip
    cache = EncryptedFileCache(cli.home / ".cache" / "aio-sts-session", key=key)
    await cache.store(entry, CachedToken(old, expires_at=expires, lifetime=lifetime))
    result = await cli.run(
        "credential-process", "--profile", "base", env={"AIO_STS_SESSION_CACHE_KEY": key}
    )
    assert result.status == 0, result.err
    data = json.loads(result.out)
    if renewed:
        assert data["AccessKeyId"] != "ASIAOLDOLDOLD"
        assert len(cli.fake.token_calls) == 1
        assert cli.prompts == 1
    else:
        assert data["AccessKeyId"] == "ASIAOLDOLDOLD"
        assert cli.fake.calls == []
        assert cli.prompts == 0
