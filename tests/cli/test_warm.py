"""The command line's warm path (``_warm``): the same answer as the full path, or none.

Every run is a real subprocess against the strict fake STS; each reports the modules it
loaded, so a test knows which path answered (the full path loads botocore)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aio_sts_session import EncryptedFileCache

from ..conftest import ACCESS_KEY, SECRET_KEY

# The command-line fixtures of test_cli (the wall clock, as the CLI runs on it):
from .conftest import MFA_COMMAND, Cli, Result

BOOT = """
import atexit, json, sys
report = sys.argv.pop(1)
atexit.register(lambda: open(report, "w").write(json.dumps(sorted(sys.modules))))
from aio_sts_session.cli.console import main
sys.exit(main())
"""
HEAVY = ("botocore", "aiobotocore", "aiohttp", "asyncio", "filelock", "platformdirs", "keyring")


class Run:
    def __init__(self, result: Result, modules: list[str]) -> None:
        self.result = result
        self.modules = set(modules)

    @property
    def warm(self) -> bool:
        return not any(m == h or m.startswith(h + ".") for m in self.modules for h in HEAVY)


async def run(cli: Cli, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    import asyncio

    report = tmp_path / "modules.json"
    report.unlink(missing_ok=True)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BOOT, str(report), args[0], "--mfa-command", MFA_COMMAND,
        *args[1:],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**cli.env, **(env or {})},
        start_new_session=True,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    result = Result(process.returncode, out.decode(), err.decode())
    assert result.status == 0, result.err
    return Run(result, json.loads(report.read_text()))


async def test_a_warm_run_gives_the_full_paths_answer_and_loads_nothing_heavy(
    cli: Cli, tmp_path: Path
) -> None:
    full = await run(cli, tmp_path, "credential-process", "--profile", "base")
    assert not full.warm
    calls = len(cli.fake.calls)
    warm = await run(cli, tmp_path, "credential-process", "--profile", "base")
    assert warm.warm, sorted(m for m in warm.modules if "." not in m)
    assert "datetime" not in warm.modules  # the expiry is rendered from the entry's text
    assert warm.result.out == full.result.out
    assert len(cli.fake.calls) == calls
    assert cli.prompts == 1


async def test_a_role_profile_is_served_warm_too(cli: Cli, tmp_path: Path) -> None:
    full = await run(cli, tmp_path, "credential-process", "--profile", "admin")
    warm = await run(cli, tmp_path, "credential-process", "--profile", "admin")
    assert warm.warm
    assert warm.result.out == full.result.out
    assert json.loads(warm.result.out)["AccessKeyId"].startswith("ASIA")


@pytest.mark.parametrize("style", ["sh", "fish", "powershell", "json"])
async def test_env_is_served_warm_in_every_format(cli: Cli, tmp_path: Path, style: str) -> None:
    full = await run(cli, tmp_path, "env", "--profile", "base", "--format", style)
    warm = await run(cli, tmp_path, "env", "--profile", "base", "--format", style)
    assert warm.warm
    assert warm.result.out == full.result.out
    assert "us-east-1" in warm.result.out


def edit_config(cli: Cli, old: str, new: str) -> None:
    path = cli.home / "config"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


OTHER_SERIAL = "arn:aws:iam::123456789012:mfa/alice-2"


async def change_mfa_serial(cli: Cli, tmp_path: Path) -> dict[str, str]:
    cli.fake.devices[OTHER_SERIAL] = cli.fake.devices[next(iter(cli.fake.devices))]
    edit_config(
        cli, "mfa_serial = arn:aws:iam::123456789012:mfa/alice\n", f"mfa_serial = {OTHER_SERIAL}\n"
    )
    return {}


async def change_region(cli: Cli, tmp_path: Path) -> dict[str, str]:
    cli.fake.regions.add("eu-west-1")
    edit_config(cli, "region = us-east-1", "region = eu-west-1")
    return {}


async def change_endpoint(cli: Cli, tmp_path: Path) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL_STS": cli.fake.url + "/"}


async def change_duration(cli: Cli, tmp_path: Path) -> dict[str, str]:
    edit_config(cli, "region = us-east-1\n", "region = us-east-1\nduration_seconds = 7200\n")
    return {}


async def change_keys(cli: Cli, tmp_path: Path) -> dict[str, str]:
    cli.fake.users["AKIAFAKESTSALICE0002"] = SECRET_KEY
    path = cli.home / "credentials"
    path.write_text(path.read_text().replace(ACCESS_KEY, "AKIAFAKESTSALICE0002"))
    return {}


async def change_aws_profile(cli: Cli, tmp_path: Path) -> dict[str, str]:
    return {"AWS_PROFILE": "admin"}  # with no --profile: a different profile


async def change_config_file(cli: Cli, tmp_path: Path) -> dict[str, str]:
    copy = tmp_path / "config-copy"
    copy.write_text((cli.home / "config").read_text().replace("us-east-1", "us-east-1"))
    return {"AWS_CONFIG_FILE": str(copy)}


async def change_credentials_file(cli: Cli, tmp_path: Path) -> dict[str, str]:
    copy = tmp_path / "credentials-copy"
    copy.write_text((cli.home / "credentials").read_text())
    return {"AWS_SHARED_CREDENTIALS_FILE": str(copy)}


async def change_cache_key(cli: Cli, tmp_path: Path) -> dict[str, str]:
    return {"AIO_STS_SESSION_CACHE_KEY": EncryptedFileCache.generate_key()}


async def touch_config(cli: Cli, tmp_path: Path) -> dict[str, str]:
    """The same content, written again: the files' identity is all the warm path knows."""
    path = cli.home / "config"
    path.write_text(path.read_text())
    return {}


CHANGES = [
    change_mfa_serial,
    change_region,
    change_endpoint,
    change_duration,
    change_keys,
    change_aws_profile,
    change_config_file,
    change_credentials_file,
    change_cache_key,
    touch_config,
]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__ for c in CHANGES])
async def test_every_input_changed_between_two_runs_is_followed(
    cli: Cli, tmp_path: Path, change: object
) -> None:
    uses_aws_profile = change is change_aws_profile
    args = (
        ["credential-process"] if uses_aws_profile else ["credential-process", "--profile", "base"]
    )
    before_env = {"AWS_PROFILE": "base"} if uses_aws_profile else {}
    if change is change_cache_key:
        before_env = {"AIO_STS_SESSION_CACHE_KEY": EncryptedFileCache.generate_key()}
    first = await run(cli, tmp_path, *args, env=before_env)
    assert (await run(cli, tmp_path, *args, env=before_env)).warm  # the record works ...
    env = await change(cli, tmp_path)  # type: ignore[operator]
    after = await run(cli, tmp_path, *args, env={**before_env, **env})
    assert not after.warm  # ... and a changed input sends the next run to the full path
    again = await run(cli, tmp_path, *args, env={**before_env, **env})
    assert again.warm  # which wrote a record for the new inputs
    assert again.result.out == after.result.out
    if change in (change_mfa_serial, change_region, change_duration, change_keys):
        assert after.result.out != first.result.out  # new credentials: the change mattered


async def test_credentials_near_the_renewal_margin_go_to_the_full_path(
    cli: Cli, tmp_path: Path
) -> None:
    edit_config(cli, "region = us-east-1\n", "region = us-east-1\nduration_seconds = 900\n")
    first = await run(cli, tmp_path, "credential-process", "--profile", "base")
    second = await run(cli, tmp_path, "credential-process", "--profile", "base")
    assert not second.warm  # 15 minutes: never more than the margin left
    assert second.result.out == first.result.out  # the full path serves them (lifetime too short)


async def test_a_missing_entry_goes_to_the_full_path(cli: Cli, tmp_path: Path) -> None:
    await run(cli, tmp_path, "credential-process", "--profile", "base")
    for entry in (cli.home / ".cache" / "aio-sts-session").glob("*.token"):
        entry.unlink()
    again = await run(cli, tmp_path, "credential-process", "--profile", "base")
    assert not again.warm
    assert cli.prompts == 2


@pytest.mark.parametrize(
    "args",
    [
        ["-v", "credential-process", "--profile", "base"],
        ["credential-process", "--profile", "base", "--unknown"],
        ["env", "--profile", "base", "--format", "cmd"],
        ["credential-process", "--help"],
    ],
)
def test_only_command_lines_it_knows_are_taken(args: list[str]) -> None:
    from aio_sts_session.cli.warm import recognise

    assert recognise(args) is None


def test_the_quick_directories_agree_with_platformdirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aio_sts_session._cachekey import cache_directory, key_file_path, quick_directories

    cases: list[dict[str, str | None]] = [
        {"XDG_CACHE_HOME": None, "XDG_CONFIG_HOME": None},
        {"XDG_CACHE_HOME": str(tmp_path / "c"), "XDG_CONFIG_HOME": str(tmp_path / "k")},
        {"XDG_CACHE_HOME": "", "XDG_CONFIG_HOME": "  "},
    ]
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for case in cases:
        for name, value in case.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        assert quick_directories() == (cache_directory(), key_file_path()), case


@pytest.mark.parametrize(
    "text",
    ["2026-11-30T21:00:00+00:00", "2026-11-30T21:00:00.123456+00:00", "2026-11-30T21:00:00Z"],
)
def test_iso_text_agrees_with_the_datetime_rendering(text: str) -> None:
    import datetime as dt

    from aio_sts_session.cli.output import iso, iso_text

    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert iso_text(text) == iso(parsed) == "2026-11-30T21:00:00Z"


# -- red-team review 2 ------------------------------------------------------------------------


async def test_a_config_path_with_a_variable_follows_what_it_resolves_to(
    cli: Cli, tmp_path: Path
) -> None:
    """botocore expands ``$PROJ`` in AWS_CONFIG_FILE: a record made for PROJ=a must not answer
    for PROJ=b (the old fingerprint covered the variable's text, and served a's session)."""
    config = (cli.home / "config").read_text()
    for project, duration in (("a", 3600), ("b", 7200)):
        (tmp_path / project).mkdir()
        (tmp_path / project / "config").write_text(
            config.replace(
                "region = us-east-1\n", f"region = us-east-1\nduration_seconds = {duration}\n", 1
            )
        )
    env = {"AWS_CONFIG_FILE": "$PROJ/config"}
    a = {**env, "PROJ": str(tmp_path / "a")}
    b = {**env, "PROJ": str(tmp_path / "b")}
    first = await run(cli, tmp_path, "credential-process", "--profile", "base", env=a)
    assert (await run(cli, tmp_path, "credential-process", "--profile", "base", env=a)).warm
    other = await run(cli, tmp_path, "credential-process", "--profile", "base", env=b)
    assert not other.warm
    assert other.result.out != first.result.out  # project b's own session
    assert [c.duration for c in cli.fake.token_calls] == [3600, 7200]


def test_the_files_the_fingerprint_names_are_the_ones_botocore_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from aio_sts_session._botoconfig import aws_file_paths
    from aio_sts_session.cli.warm import aws_files

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PROJ", str(tmp_path / "p"))
    cases: list[dict[str, str | None]] = [
        {"AWS_CONFIG_FILE": None, "AWS_SHARED_CREDENTIALS_FILE": None},
        {"AWS_CONFIG_FILE": "$PROJ/config", "AWS_SHARED_CREDENTIALS_FILE": "${PROJ}/c"},
        {"AWS_CONFIG_FILE": "~/x", "AWS_SHARED_CREDENTIALS_FILE": "relative/c"},
        {"AWS_CONFIG_FILE": "", "AWS_SHARED_CREDENTIALS_FILE": "$UNSET_VAR/c"},
    ]
    for case in cases:
        for name, value in case.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        botocore_reads = [os.path.abspath(p) if p else p for p in aws_file_paths()]
        assert aws_files() == botocore_reads, case


def test_a_non_ascii_digit_duration_is_left_to_the_full_path() -> None:
    """``--duration ²`` (``str.isdigit`` but not ``int``): an uncaught ValueError traceback."""
    from aio_sts_session.cli.warm import answer, recognise

    assert recognise(["credential-process", "--duration", "\u00b2"]) is None
    assert answer(["credential-process", "--duration", "\u00b2"]) is None


async def test_a_non_ascii_digit_duration_is_a_usage_error_naming_the_flag(cli: Cli) -> None:
    result = await cli.run("credential-process", "--profile", "base", "--duration", "\u00b2")
    assert result.status == 2
    assert "--duration" in result.err
    assert "Traceback" not in result.err


def test_a_record_that_cannot_be_written_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk: every full run left a ``.tmp-<pid>-<fp>.warm`` behind."""
    import os

    from aio_sts_session import _entry

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"):
        _entry.write_private_file(tmp_path / "x.warm", b"record")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
