"""Long-term keys out of plain text (issue 16): ``add``, ``remove``, ``rotate`` and ``status``
as real subprocesses, with a real third-party keyring backend (``keyrings.alt``'s file backend
in a temporary home, chosen by ``PYTHON_KEYRING_BACKEND``), against the strict fake STS with
IAM's access-key calls (which demand an MFA session, with faults injectable on each)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from aio_sts_session.testing import Fault, issued_secrets

from ..conftest import ACCESS_KEY, SECRET_KEY, SERIAL
from .conftest import (
    BACKEND,
    CREDENTIALS,
    MFA_COMMAND,
    Cli,
    Result,
    add_from_stdin,
    keyring_item,
    run_with_input,
)


def assert_key_works(cli: Cli, key_id: str) -> None:
    """The key is one the fake IAM knows and accepts (created, active, not deleted)."""
    assert key_id in cli.fake.users
    assert cli.fake.pending_keys.get(key_id, 0) == 0


def no_secret_anywhere(cli: Cli, result: Result, secret: str = SECRET_KEY) -> None:
    assert secret not in result.out + result.err
    for path in (cli.home / ".config" / "aio-sts-session" / "keys").glob("*"):
        assert secret not in path.read_text()


async def test_add_keeps_the_keys_in_the_keyring_and_every_path_reads_them(
    keyring_cli: Cli,
) -> None:
    cli = keyring_cli
    added = await add_from_stdin(cli)
    assert added.status == 0, added.err
    assert "arn:aws:iam::123456789012:user/alice" in added.err
    no_secret_anywhere(cli, added)
    assert await keyring_item(cli) == {
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
    }
    (cli.home / "credentials").write_text("")  # no plain text left at all
    served = await cli.run("credential-process", "--profile", "admin")
    assert served.status == 0, served.err
    signed_by = {c.access_key_id for c in cli.fake.calls if c.action == "GetSessionToken"}
    assert signed_by == {ACCESS_KEY}
    status = await cli.run("status", "--json")
    rows = {row["profile"]: row for row in json.loads(status.out)}
    assert rows["base"]["keys"] == "keyring"
    assert rows["admin"]["keys"] == "keyring"
    assert rows["base"]["plaintext_copy"] is None


async def test_the_keyring_wins_over_the_credentials_file_and_status_flags_the_copy(
    keyring_cli: Cli,
) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    # The file now holds a stale key: the keyring's is the one used.
    stale = CREDENTIALS.replace(ACCESS_KEY, "AKIASTALEPLAINTEXT01")
    (cli.home / "credentials").write_text(stale)
    served = await cli.run("credential-process", "--profile", "base")
    assert served.status == 0, served.err
    status = await cli.run("status")
    assert "plain-text copy" in status.out
    assert "add base --from-credentials-file --remove-plaintext" in status.out


async def test_a_typo_is_an_error_now_and_nothing_is_stored(keyring_cli: Cli) -> None:
    cli = keyring_cli
    result = await add_from_stdin(cli, secret="not-the-secret-at-all-000000000000000000")
    assert result.status == 1
    assert "STS did not accept" in result.err or "check the key id" in result.err
    assert "not-the-secret" not in result.err
    assert await keyring_item(cli) is None
    assert not (cli.home / ".config" / "aio-sts-session" / "keys" / "base.json").exists()
    assert cli.prompts == 0


async def test_from_the_credentials_file_and_remove_plaintext_keeps_the_rest_byte_for_byte(
    keyring_cli: Cli,
) -> None:
    cli = keyring_cli
    path = cli.home / "credentials"
    before = (
        "# my keys\n[other]\naws_access_key_id = AKIAOTHER00000000001\n"
        "aws_secret_access_key = other-secret\n\n" + CREDENTIALS + "region_hint = keep me\n"
    )
    path.write_text(before)
    path.chmod(0o640)
    result = await cli.run(
        "add", "base", "--from-credentials-file", "--remove-plaintext", mfa=False
    )
    assert result.status == 0, result.err
    after = path.read_text()
    assert after == before.replace(
        f"aws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n", ""
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert SECRET_KEY not in after
    assert "other-secret" in after
    assert (await keyring_item(cli) or {}).get("aws_secret_access_key") == SECRET_KEY


async def test_add_over_existing_keys_needs_force_without_a_terminal(keyring_cli: Cli) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    again = await add_from_stdin(cli)
    assert again.status == 2
    assert "--force" in again.err
    forced = await run_with_input(
        cli, f"{ACCESS_KEY}\n{SECRET_KEY}\n".encode(), "add", "base", "--force"
    )
    assert forced.status == 0, forced.err


async def test_no_usable_backend_is_one_line_never_a_plaintext_fallback(keyring_cli: Cli) -> None:
    cli = keyring_cli
    result = await run_with_input(
        cli,
        f"{ACCESS_KEY}\n{SECRET_KEY}\n".encode(),
        "add",
        "base",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"},
    )
    assert result.status == 1
    assert result.err.count("\n") == 1, result.err
    assert "keyrings.cryptfile" in result.err
    assert not (cli.home / ".config" / "aio-sts-session" / "keys").exists()
    assert cli.fake.calls == []  # refused before anything else


async def test_remove_deletes_the_keys_and_the_cached_sessions(keyring_cli: Cli) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    await cli.run("credential-process", "--profile", "admin")
    removed = await cli.run("remove", "base", mfa=False)
    assert removed.status == 0, removed.err
    assert "1 cached credential" in removed.err  # the profile's MFA session
    assert await keyring_item(cli) is None
    status = await cli.run("status", "--json")
    rows = {row["profile"]: row for row in json.loads(status.out)}
    assert rows["base"]["keys"] == "credentials file"  # the plain-text keys are left alone
    assert rows["base"]["expires"] is None
    assert rows["admin"]["session"]["expires"] is None


async def rotate(cli: Cli, profile: str = "base") -> Result:
    return await cli.run("rotate", profile)


async def test_rotate_replaces_the_key_and_drops_the_old_keys_sessions(keyring_cli: Cli) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    await cli.run("credential-process", "--profile", "admin")  # cached under the old key
    cli.fake.key_activation_calls = 2  # IAM's eventual consistency: two refusals first
    result = await rotate(cli, "admin")
    assert result.status == 0, result.err
    assert "rotating the keys of its source profile base" in result.err
    assert result.err.count("has not activated") == 2
    item = await keyring_item(cli)
    assert item is not None
    new = item["aws_access_key_id"]
    assert new != ACCESS_KEY
    assert_key_works(cli, new)
    assert ACCESS_KEY not in cli.fake.users  # the old key is deleted
    assert "2 cached credential(s) of the old key dropped" in result.err
    iam = [c for c in cli.fake.calls if c.action in ("CreateAccessKey", "DeleteAccessKey")]
    assert [c.outcome for c in iam] == ["ok", "ok"]
    assert all(c.access_key_id.startswith("ASIA") for c in iam)  # signed by the MFA session
    for secret in [item["aws_secret_access_key"], *issued_secrets(cli.fake)]:
        assert secret not in result.out + result.err
    served = await cli.run("credential-process", "--profile", "base")
    assert served.status == 0, served.err
    assert {c.access_key_id for c in cli.fake.token_calls[-1:]} == {new}


async def test_rotate_with_two_keys_already_changes_nothing_and_names_them(
    keyring_cli: Cli,
) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    cli.fake.users["AKIASECONDKEY0000001"] = "second-secret"
    result = await rotate(cli)
    assert result.status == 1
    assert "already has two access keys" in result.err
    assert ACCESS_KEY in result.err
    assert "AKIASECONDKEY0000001" in result.err
    assert "Nothing changed" in result.err
    assert (await keyring_item(cli) or {})["aws_access_key_id"] == ACCESS_KEY
    assert_key_works(cli, ACCESS_KEY)


async def test_rotate_when_create_access_key_fails_changes_nothing(keyring_cli: Cli) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    cli.fake.faults.extend(
        Fault(500, "ServiceFailure", "boom", action="CreateAccessKey") for _ in range(5)
    )
    result = await rotate(cli)
    assert result.status == 1
    assert "Nothing changed" in result.err
    assert (await keyring_item(cli) or {})["aws_access_key_id"] == ACCESS_KEY
    assert_key_works(cli, ACCESS_KEY)


async def test_rotate_when_the_new_key_never_works_keeps_the_old_one(keyring_cli: Cli) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    cli.fake.key_activation_calls = 10_000  # never active (the checks take 7.5 s)
    result = await rotate(cli)
    assert result.status == 1
    created = [k for k in cli.fake.keys_of("alice") if k != ACCESS_KEY]
    assert len(created) == 1
    assert created[0] in result.err  # the key id left to delete by hand
    assert "delete-access-key" in result.err
    assert (await keyring_item(cli) or {})["aws_access_key_id"] == ACCESS_KEY
    assert_key_works(cli, ACCESS_KEY)


async def test_rotate_when_the_delete_fails_keeps_the_new_working_key(keyring_cli: Cli) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    cli.fake.faults.extend(
        Fault(500, "ServiceFailure", "boom", action="DeleteAccessKey") for _ in range(5)
    )
    result = await rotate(cli)
    assert result.status == 1
    item = await keyring_item(cli)
    assert item is not None
    assert item["aws_access_key_id"] != ACCESS_KEY
    assert_key_works(cli, item["aws_access_key_id"])
    assert ACCESS_KEY in result.err  # the old key id, still to delete by hand
    assert "delete-access-key" in result.err


async def test_rotate_needs_the_keys_in_the_keyring(keyring_cli: Cli) -> None:
    result = await rotate(keyring_cli)
    assert result.status == 1
    assert "add base --from-credentials-file --remove-plaintext" in result.err
    assert keyring_cli.fake.calls == []


def test_the_key_pair_never_shows_its_secret() -> None:
    from aio_sts_session._keys import KeyPair

    pair = KeyPair(ACCESS_KEY, SECRET_KEY)
    assert SECRET_KEY not in repr(pair)
    assert SECRET_KEY not in str(pair)


#: How a library user hands the provider a session (the README's and the aioboto3 guide's
#: forms): each must find the keys ``add`` put in the keyring, once they are out of plain text.
SESSION_FORMS = {
    "source-session-of-a-profile": ("p = make(source_session=AioSession(profile='base'))", {}),
    "attach-a-profile-session": ("p = make(); p.attach(AioSession(profile='base'))", {}),
    "attach-the-default-session": ("p = make(); p.attach(AioSession())", {"AWS_PROFILE": "base"}),
    "attach-after-the-session-resolved-a-stale-file": (
        "s = AioSession(profile='base'); await s.get_credentials(); p = make(); p.attach(s)",
        {"STALE": "1"},
    ),
    "aioboto3-session": (
        "import aioboto3; p = make(); p.attach(aioboto3.Session(profile_name='base'))",
        {},
    ),
}


@pytest.mark.parametrize("form", sorted(SESSION_FORMS))
async def test_every_library_path_reads_the_keyring(keyring_cli: Cli, form: str) -> None:
    """Red-team of a new user: after ``add NAME --from-credentials-file --remove-plaintext``
    the README's ``provider.attach(AioSession())`` failed with "No long-term AWS credentials
    found": an attached session never looked in the keyring."""
    if form == "aioboto3-session":
        pytest.importorskip("aioboto3")
    cli = keyring_cli
    await add_from_stdin(cli)
    statement, env = SESSION_FORMS[form]
    stale = CREDENTIALS.replace(ACCESS_KEY, "AKIASTALEPLAINTEXT01") if env.get("STALE") else ""
    (cli.home / "credentials").write_text(stale)
    code = f"""
import asyncio
import shutil
from aiobotocore.session import AioSession
import aio_sts_session as ass
def make(**options):
    return ass.SessionTokenProvider(
        mfa_serial={SERIAL!r}, mfa_callback=lambda r: {cli.fake.fresh_code(SERIAL)!r},
        duration_seconds=900, **options)
async def main():
    {statement}
    creds = await p.credentials()
    await p.close()
    print(creds.access_key_id)
asyncio.run(main())
"""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env={**cli.env, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("ASIA")
    assert [c.access_key_id for c in cli.fake.token_calls] == [ACCESS_KEY]
    assert os.environ.get("PYTHON_KEYRING_BACKEND") != BACKEND  # the test process untouched


async def test_rotate_against_motos_iam(tmp_path: Path) -> None:
    """moto as an independent IAM and STS (its SigV4 check off: it refuses the session
    credentials its own GetSessionToken returns): the calls are well-formed and the key is
    really replaced."""
    from aiobotocore.session import AioSession
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        async with AioSession().create_client(
            "iam", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="AKIAADMIN", aws_secret_access_key="admin",
        ) as iam:  # fmt: skip
            await iam.create_user(UserName="alice")
            old = (await iam.create_access_key(UserName="alice"))["AccessKey"]
            home = tmp_path / "home"
            home.mkdir()
            (home / "config").write_text(
                f"[profile m]\nmfa_serial = {SERIAL}\nregion = us-east-1\nservices = moto\n"
                f"[services moto]\nsts =\n  endpoint_url = {url}\niam =\n  endpoint_url = {url}\n"
            )
            (home / "credentials").write_text("")
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_CACHE_HOME": str(home / ".cache"),
                "XDG_DATA_HOME": str(home / ".local" / "share"),
                "AWS_CONFIG_FILE": str(home / "config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "PYTHON_KEYRING_BACKEND": BACKEND,
                "PYTHONPATH": os.pathsep.join(sys.path),
            }

            async def run(*args: str, stdin: bytes = b"") -> Result:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "aio_sts_session", *args, env=env,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, start_new_session=True,
                )  # fmt: skip
                out, err = await asyncio.wait_for(process.communicate(stdin), 90)
                assert process.returncode is not None
                return Result(process.returncode, out.decode(), err.decode())

            added = await run(
                "add", "m", stdin=f"{old['AccessKeyId']}\n{old['SecretAccessKey']}\n".encode()
            )
            assert added.status == 0, added.err
            rotated = await run("rotate", "m", "--mfa-command", "echo 123456")
            assert rotated.status == 0, rotated.err
            keys = (await iam.list_access_keys(UserName="alice"))["AccessKeyMetadata"]
            assert len(keys) == 1
            assert keys[0]["AccessKeyId"] != old["AccessKeyId"]
            assert keys[0]["AccessKeyId"] in rotated.err
    finally:
        server.stop()


async def test_add_over_existing_keys_asks_on_the_terminal(keyring_cli: Cli) -> None:
    from .conftest import on_a_terminal, read_until

    cli = keyring_cli
    await add_from_stdin(cli)
    args = ("add", "base", "--from-credentials-file")
    async with on_a_terminal(cli, *args) as (process, tty):
        question = await asyncio.to_thread(read_until, tty, b"[y/N] ")
        assert b"already has keys in the keyring" in question
        os.write(tty, b"y\n")
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    async with on_a_terminal(cli, *args) as (process, tty):
        await asyncio.to_thread(read_until, tty, b"[y/N] ")
        os.write(tty, b"n\n")
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert b"--force" in err


async def test_add_reads_the_keys_from_the_terminal_without_echoing_the_secret(
    keyring_cli: Cli,
) -> None:
    from .conftest import on_a_terminal, read_until

    cli = keyring_cli
    async with on_a_terminal(cli, "add", "base", stdin_too=True) as (process, tty):
        await asyncio.to_thread(read_until, tty, b"access key id: ")
        os.write(tty, f"{ACCESS_KEY}\n".encode())
        await asyncio.to_thread(read_until, tty, b"(not shown): ")
        os.write(tty, f"{SECRET_KEY}\n".encode())
        _, err = await asyncio.wait_for(process.communicate(), 60)
        shown = await asyncio.to_thread(_drain, tty)
    assert process.returncode == 0, err
    assert SECRET_KEY.encode() not in shown + err
    assert (await keyring_item(cli) or {}).get("aws_secret_access_key") == SECRET_KEY


def _drain(fd: int) -> bytes:
    import select

    seen = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen


# -- red-team review 2: --remove-plaintext --------------------------------------------------------


async def test_remove_plaintext_keeps_the_next_profiles_keys_when_its_header_has_a_comment(
    keyring_cli: Cli,
) -> None:
    """The reported file: the old remover took ``[bobp] ; prod keys`` for a line of [base] and
    deleted bob's keys for good ("removed 4 plain-text line(s) of [base]", exit 0)."""
    cli = keyring_cli
    path = cli.home / "credentials"
    bob = (
        "[bobp] ; prod keys\naws_access_key_id = AKIABOBP000000000001\n"
        "aws_secret_access_key = bob-secret\n"
    )
    path.write_text(CREDENTIALS + bob)
    result = await cli.run(
        "add", "base", "--from-credentials-file", "--remove-plaintext", mfa=False
    )
    assert result.status == 0, result.err
    assert path.read_text() == "[base]\n" + bob
    assert "removed 2 plain-text line(s) of [base]" in result.err


async def test_remove_plaintext_through_a_symlink_edits_the_target_and_keeps_the_link(
    keyring_cli: Cli,
) -> None:
    cli = keyring_cli
    dotfiles = cli.home / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "credentials"
    target.write_text(CREDENTIALS)
    link = cli.home / "credentials"
    link.unlink()
    link.symlink_to(target)
    result = await cli.run(
        "add", "base", "--from-credentials-file", "--remove-plaintext", mfa=False
    )
    assert result.status == 0, result.err
    assert link.is_symlink()
    assert SECRET_KEY not in target.read_text()
    assert "through the link" in result.err


async def test_remove_plaintext_with_colon_syntax_removes_the_secret(keyring_cli: Cli) -> None:
    """``aws_secret_access_key: …`` (botocore reads it): the old remover said "removed 0",
    exit 0, and left the secret on disk."""
    cli = keyring_cli
    path = cli.home / "credentials"
    path.write_text(CREDENTIALS.replace(" = ", ": "))
    result = await cli.run(
        "add", "base", "--from-credentials-file", "--remove-plaintext", mfa=False
    )
    assert result.status == 0, result.err
    assert SECRET_KEY not in path.read_text()
    assert "removed 2 plain-text line(s)" in result.err


async def test_remove_plaintext_never_reports_success_while_the_secret_is_on_disk(
    keyring_cli: Cli,
) -> None:
    cli = keyring_cli
    path = cli.home / "credentials"
    copy = f"[copy]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    path.write_text(CREDENTIALS + copy)
    result = await cli.run(
        "add", "base", "--from-credentials-file", "--remove-plaintext", mfa=False
    )
    assert result.status == 1
    assert "still in line 4 of" in result.err
    assert "([copy])" in result.err
    assert SECRET_KEY not in result.err
    assert path.read_text() == "[base]\n" + copy  # [base]'s lines went; [copy] is untouched


# -- red-team review 2: the keyring's index ---------------------------------------------------


def test_index_file_names_are_injective_and_case_safe() -> None:
    from aio_sts_session._keys import index_name

    names = ["prod:admin", "prod_admin", "Prod", "prod", "a%3Ab", "a:b", ".hidden", "%2Ehidden",
             "é", "e\u0301", "x" * 300, "x" * 301, "~" + "a" * 40, "a/b", "a\\b", "..",
             "."]  # fmt: skip
    encoded = [index_name(name) for name in names]
    assert len(set(encoded)) == len(names)
    assert len({e.lower() for e in encoded}) == len(names)  # a case-folding file system
    for name in encoded:
        assert "/" not in name
        assert "\\" not in name
        assert not name.startswith(".")
        assert len(name.encode()) <= 255


async def test_two_profiles_whose_old_index_names_collided_are_kept_apart(
    keyring_cli: Cli,
) -> None:
    """``prod:admin`` and ``prod_admin`` both mapped to ``keys/prod_admin.json``: adding the
    second was refused as existing, and removing the first orphaned the second's item."""
    cli = keyring_cli
    extra = "".join(
        f"\n[profile {name}]\nmfa_serial = {SERIAL}\nregion = us-east-1\nservices = fake\n"
        for name in ("prod:admin", "prod_admin")
    )
    config = (cli.home / "config").read_text()
    (cli.home / "config").write_text(config + extra)
    for name in ("prod:admin", "prod_admin"):
        stdin = f"{ACCESS_KEY}\n{SECRET_KEY}\n".encode()
        added = await run_with_input(cli, stdin, "add", name)
        assert added.status == 0, added.err
    removed = await cli.run("remove", "prod:admin", mfa=False)
    assert removed.status == 0, removed.err
    assert await keyring_item(cli, "prod_admin") is not None
    status = json.loads((await cli.run("status", "--json")).out)
    rows = {row["profile"]: row for row in status}
    assert rows["prod_admin"]["keys"] == "keyring"
    assert "prod:admin" not in rows or rows["prod:admin"]["keys"] != "keyring"


async def keyring_call(cli: Cli, code: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"import json, keyring; {code}", env=cli.env
    )
    assert await process.wait() == 0


async def test_a_keyring_item_replaced_by_another_tool_is_followed_by_both_paths(
    keyring_cli: Cli,
) -> None:
    """The warm path trusts the index; the full path reads the item only to make a session.
    Both serve the session in hand until it must be renewed; then the item's new key makes the
    next one (the index is rewritten, the warm path steps aside), with one prompt."""
    cli = keyring_cli
    await add_from_stdin(cli)
    (cli.home / "credentials").write_text("")
    first = await cli.run("credential-process", "--profile", "base")
    other = "AKIAFAKESTSALICE0002"
    cli.fake.users[other] = SECRET_KEY
    item = json.dumps({"aws_access_key_id": other, "aws_secret_access_key": SECRET_KEY})
    await keyring_call(cli, f"keyring.set_password('aio-sts-session', 'profile/base', {item!r})")
    full = await cli.run("-v", "credential-process", "--profile", "base")
    assert full.out == first.out  # what the warm path serves too: the session in hand
    await cli.run("cache", "clear", mfa=False)  # the session must be renewed now
    renewed = await cli.run("-v", "credential-process", "--profile", "base")
    assert renewed.status == 0, renewed.err
    assert "index now names AKIAFAKESTSALICE0002" in renewed.err
    default = await cli.run("credential-process", "--profile", "base")
    assert default.out == renewed.out
    assert [c.access_key_id for c in cli.fake.token_calls] == [ACCESS_KEY, other]
    assert cli.prompts == 2  # one per session: the change of key cost no extra code
    status = json.loads((await cli.run("status", "--json", "--profile", "base")).out)
    assert status[0]["key_id"] == "AKIA…0002"


async def test_a_keyring_item_deleted_by_another_tool_stops_both_paths(keyring_cli: Cli) -> None:
    cli = keyring_cli
    await add_from_stdin(cli)
    (cli.home / "credentials").write_text("")
    first = await cli.run("credential-process", "--profile", "base")
    await keyring_call(cli, "keyring.delete_password('aio-sts-session', 'profile/base')")
    full = await cli.run("-v", "credential-process", "--profile", "base")
    assert full.out == first.out  # both paths serve the session in hand until it ends
    await cli.run("cache", "clear", mfa=False)
    renewing = await cli.run("-v", "credential-process", "--profile", "base")
    assert renewing.status == 1
    assert "item (service 'aio-sts-session') is missing" in renewing.err
    default = await cli.run("credential-process", "--profile", "base")
    assert default.status == 1
    assert "is missing" in default.err
    assert cli.prompts == 1  # nobody was asked for a code that could not be used


async def test_a_second_rotation_at_once_changes_nothing(keyring_cli: Cli) -> None:
    import filelock

    from aio_sts_session._keys import index_name

    cli = keyring_cli
    await add_from_stdin(cli)
    keys = cli.home / ".config" / "aio-sts-session" / "keys"
    lock = filelock.FileLock(str(keys / (index_name("base")[:-5] + ".rotating")), timeout=0)
    with lock:  # a first rotation, running
        result = await rotate(cli)
    assert result.status == 1
    assert "Another rotation of the keys of profile 'base' is running" in result.err
    assert "Nothing changed" in result.err
    assert not [c for c in cli.fake.calls if c.action == "CreateAccessKey"]
    assert (await keyring_item(cli) or {})["aws_access_key_id"] == ACCESS_KEY


async def test_two_keys_advice_never_names_the_key_the_keyring_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aio_sts_session import _keys
    from aio_sts_session._keys import KeyPair
    from aio_sts_session.cli import keys as _keycmds

    old = KeyPair("AKIAOLD0000000000001", "s")
    for held, expect in (("AKIAOLD0000000000001", "delete the other (AKIANEW"), (
        "AKIANEW0000000000001", "no longer the one this rotation started from")):  # fmt: skip
        monkeypatch.setattr(_keys, "load_keys", lambda profile, h=held: KeyPair(h, "s"))
        advice = await _keycmds._two_keys_advice(
            "alice", ["AKIAOLD0000000000001", "AKIANEW0000000000001"], old, "base"
        )
        assert expect in advice
        assert f"delete the other ({held}" not in advice


async def test_profile_names_with_terminal_escapes_are_printed_escaped(keyring_cli: Cli) -> None:
    cli = keyring_cli
    evil = "evil\x1b]0;TITLE\x07\x1b[2J"
    config = (cli.home / "config").read_text()
    (cli.home / "config").write_text(
        config + f"\n[profile {evil}]\nmfa_serial = {SERIAL}\nsource_profile = base\n"
        "role_arn = arn:aws:iam::123456789012:role/admin\n"
    )
    status = await cli.run("status")
    assert status.status == 0, status.err
    assert "evil\\x1b]0;TITLE\\x07\\x1b[2J" in status.out
    missing = await cli.run("credential-process", "--profile", "nosuch")
    assert missing.status == 1
    assert "Profiles found:" in missing.err
    for result in (status, missing):
        assert "\x1b" not in result.out + result.err
        assert "\x07" not in result.out + result.err


async def test_an_index_written_under_the_old_name_is_adopted_only_for_its_own_profile(
    keyring_cli: Cli,
) -> None:
    """Upgrading: ``Prod:Admin``'s index was ``keys/Prod_Admin.json``; it is read through the
    keyring's item of exactly that profile, and never for ``Prod_Admin``."""
    cli = keyring_cli
    code = f"""
import json, os
from aio_sts_session import _keys
from aio_sts_session._keys import KeyPair
_keys.store_keys("Prod:Admin", KeyPair({ACCESS_KEY!r}, {SECRET_KEY!r}))
new = _keys.index_path("Prod:Admin")
old = new.with_name("Prod_Admin.json")
os.replace(new, old)
old.write_text(json.dumps({{"aws_access_key_id": {ACCESS_KEY!r}, "stored_at": 1}}))
print(_keys.stored_key_id("Prod_Admin"), _keys.stored_key_id("Prod:Admin"), new.exists())
"""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=cli.env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert out.decode().split() == ["None", ACCESS_KEY, "True"]


# -- what a new user met: headless keyrings ----------------------------------------------------


async def test_add_with_neither_a_terminal_nor_standard_input_says_how(keyring_cli: Cli) -> None:
    """It ended in "unexpected AttributeError" / "unexpected EOFError"."""
    cli = keyring_cli
    argv = [sys.executable, "-m", "aio_sts_session", "add", "base"]
    process = await asyncio.create_subprocess_exec(
        "sh", "-c", 'exec 0<&-; exec "$@"', "sh", *argv, env=cli.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "No keys were given" in err.decode()
    assert "unexpected" not in err.decode()
    assert err.decode().count("\n") == 1


async def test_add_for_a_profile_in_neither_file_is_refused_before_reading_keys(
    keyring_cli: Cli,
) -> None:
    """``add nosuch`` stored keys nothing would ever read, without a word."""
    cli = keyring_cli
    result = await run_with_input(cli, f"{ACCESS_KEY}\n{SECRET_KEY}\n".encode(), "add", "nosuch")
    assert result.status == 2
    assert "Profile 'nosuch' is not in" in result.err
    assert "profiles found: admin, base" in result.err
    assert await keyring_item(cli, "nosuch") is None
    assert cli.fake.calls == []


async def test_a_passphrase_keyring_never_asks_per_aws_call(
    keyring_cli: Cli, tmp_path: Path
) -> None:
    """With the cache key in a keyring that asks for a passphrase in every process
    (keyrings.cryptfile), every AWS call asked (a warm run took 11.6 s). Now the cache key goes
    to the key file for such a keyring, and the long-term secret is read only when STS must be
    called: one passphrase for the first session, none for warm runs or runs the cache serves."""
    cli = keyring_cli
    log = tmp_path / "passphrases"
    cli.env.update(
        {
            "PYTHON_KEYRING_BACKEND": "tests.cli.passphrase_keyring.EncryptedKeyring",
            "FAKE_KEYRING_FILE": str(tmp_path / "keyring.json"),
            "FAKE_PASSPHRASE_LOG": str(log),
        }
    )

    def asked() -> int:
        return len(log.read_text().split()) if log.exists() else 0

    added = await add_from_stdin(cli)
    assert added.status == 0, added.err
    (cli.home / "credentials").write_text("")
    after_add = asked()
    first = await cli.run("credential-process", "--profile", "admin")
    assert first.status == 0, first.err
    assert asked() == after_add + 1  # the secret, to make the MFA session
    for _ in range(3):
        assert (await cli.run("credential-process", "--profile", "admin")).out == first.out
    exec_run = await cli.run("exec", "--profile", "admin", "--", "true")  # the full path
    assert exec_run.status == 0, exec_run.err
    verbose = await cli.run("-v", "credential-process", "--profile", "admin")
    assert verbose.out == first.out
    assert asked() == after_add + 1  # not one more
    assert (cli.home / ".config" / "aio-sts-session" / "cache.key").exists()
    status = await cli.run("--help", mfa=False)
    assert "the key file" in status.out


SECRET_SERVICE = """
printf 'test-password\\n' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
run() {  # run NAME ARGS...: the command line, its outputs and status in files named NAME.*
    name=$1; shift
    "$PYTHON" -m aio_sts_session "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" < "$OUT/$name.in"
    echo $? > "$OUT/$name.status"
}
run add add base
run first credential-process --profile admin --mfa-command "$MFA"
run warm credential-process --profile admin --mfa-command "$MFA"
run status status --json
"$PYTHON" -c 'import keyring; print(type(keyring.get_keyring()).__name__)' > "$OUT/backend"
"""


@pytest.mark.skipif(
    not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")),
    reason="needs dbus-run-session and gnome-keyring (apt-get install gnome-keyring "
    "dbus-user-session; .ci/run installs them when it can)",
)
async def test_a_real_secret_service_on_a_headless_machine(
    keyring_cli: Cli, tmp_path: Path
) -> None:
    """The headless path the docs give: GNOME Keyring in a D-Bus session of its own, unlocked
    once; then keys and the cache key live in a real Secret Service, with no prompt per run."""
    cli = keyring_cli
    out = tmp_path / "out"
    out.mkdir()
    for name in ("add", "first", "warm", "status"):
        (out / f"{name}.in").write_text(f"{ACCESS_KEY}\n{SECRET_KEY}\n" if name == "add" else "")
    (cli.home / "credentials").write_text("")
    env = {k: v for k, v in cli.env.items() if k != "PYTHON_KEYRING_BACKEND"}
    env.update({"PYTHON": sys.executable, "OUT": str(out), "MFA": MFA_COMMAND})
    process = await asyncio.create_subprocess_exec(
        "dbus-run-session", "--", "sh", "-c", SECRET_SERVICE, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    await asyncio.wait_for(process.wait(), 120)
    for name in ("add", "first", "warm", "status"):
        status = (out / f"{name}.status").read_text().strip()
        assert status == "0", (name, (out / f"{name}.err").read_text())
    assert "SecretService" in (out / "add.err").read_text()  # where add put them
    assert (out / "first.out").read_text() == (out / "warm.out").read_text()
    assert cli.prompts == 1
    rows = {row["profile"]: row for row in json.loads((out / "status.out").read_text())}
    assert rows["admin"]["keys"] == "keyring"
    assert (out / "backend").read_text().strip() in ("ChainerBackend", "Keyring")
    assert not (cli.home / ".config" / "aio-sts-session" / "cache.key").exists()  # in the keyring
