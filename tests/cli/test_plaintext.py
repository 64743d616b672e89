"""Removing a profile's keys from the credentials file (red-team review 2, the data-loss
findings): every section botocore's parser recognises, nothing else touched, verified before
writing, through symbolic links, and success only when the secret is gone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import botocore.configloader
import pytest

from aio_sts_session.cli.plaintext import (
    PlaintextError,
    classify,
    remove_plaintext,
    secret_locations,
)

BASE = "[base]\naws_access_key_id = AKIABASE000000000001\naws_secret_access_key = base-secret\n"


def parse(path: Path) -> dict[str, dict[str, object]]:
    return dict(botocore.configloader.raw_config_parse(str(path)))


def write(tmp_path: Path, text: str | bytes, name: str = "credentials") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def assert_removed_only_base(path: Path, before: dict[str, dict[str, object]]) -> None:
    after = parse(path)
    expected = {name: dict(options) for name, options in before.items()}
    expected["base"].pop("aws_access_key_id")
    expected["base"].pop("aws_secret_access_key")
    assert after == expected
    assert b"base-secret" not in path.read_bytes()


# The exact file of the report: a header with a trailing comment after [base]. The old remover
# took "[bobp] ; prod keys" for a key line of [base] and deleted bob's keys for good.
REPORTED = BASE + "[bobp] ; prod keys\naws_access_key_id = AKIABOBP000000000001\n"
REPORTED += "aws_secret_access_key = bob-secret\n"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(REPORTED, id="header-with-a-trailing-comment"),
        pytest.param(BASE + "[bobp]   # prod\naws_access_key_id=AKIABOBP000000000001\n"
                     "aws_secret_access_key=bob-secret\n", id="hash-comment"),
        pytest.param("".join(f"  {line}\n" for line in (BASE + "[bobp]\nk = bob").splitlines()),
                     id="indented-file"),
        pytest.param("[base]\nAWS_ACCESS_KEY_ID: AKIABASE000000000001\n"
                     "aws_secret_access_key: base-secret\n[bobp]\n"
                     "aws_secret_access_key: bob-secret\n", id="colon-syntax-any-case"),
        pytest.param(BASE.replace("\n", "\r\n") + "[bobp]\r\naws_secret_access_key = bob\r\n",
                     id="crlf"),
        pytest.param(BASE.replace("\n", "\r") + "[bobp]\raws_secret_access_key = bob\r", id="cr"),
        pytest.param("[base]\naws_secret_access_key = base-secret\n    more\n    [bobp]\n"
                     "aws_access_key_id = AKIABASE000000000001\nregion = eu-west-1\n"
                     "[bobp]\naws_secret_access_key = bob\n", id="continuation-lines"),
        pytest.param("# keys\n[base]\n; mine\naws_access_key_id = AKIABASE000000000001\n\n"
                     "aws_secret_access_key = base-secret\n\n[bobp]\nx = 1\n",
                     id="comments-blanks"),
        pytest.param("[bobp]\naws_secret_access_key = bob\n" + BASE + "[a]b]\nk = v\n",
                     id="bracket-in-a-name"),
        pytest.param(BASE + "s3 =\n  max_concurrent_requests = 20\n[bobp]\nk = [x]\n",
                     id="nested-settings"),
    ],
)  # fmt: skip
def test_only_the_profiles_two_keys_go_and_every_other_profile_reads_as_before(
    tmp_path: Path, text: str
) -> None:
    path = write(tmp_path, text)
    before = parse(path)
    removal = remove_plaintext(path, "base")
    assert removal.lines >= 2
    assert_removed_only_base(path, before)


def test_the_reported_file_keeps_bobs_keys_byte_for_byte(tmp_path: Path) -> None:
    path = write(tmp_path, REPORTED)
    path.chmod(0o640)
    remove_plaintext(path, "base")
    assert path.read_text() == "[base]\n" + REPORTED[len(BASE) :]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_through_a_symbolic_link_the_target_is_edited_and_the_link_kept(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = write(dotfiles, REPORTED, "aws-credentials")
    link = tmp_path / "credentials"
    link.symlink_to(target)
    removal = remove_plaintext(link, "base")
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert removal.edited == target
    assert b"base-secret" not in target.read_bytes()
    assert b"bob-secret" in target.read_bytes()
    assert secret_locations([link], "base-secret") == []


def test_keys_inherited_from_default_change_nothing_and_say_why(tmp_path: Path) -> None:
    text = "[DEFAULT]\naws_secret_access_key = base-secret\n" + BASE
    path = write(tmp_path, text)
    with pytest.raises(PlaintextError, match=r"would still have keys.*Nothing was changed"):
        remove_plaintext(path, "base")
    assert path.read_text() == text
    assert not [p for p in tmp_path.iterdir() if p.name != "credentials"]  # no leftovers


def test_a_file_botocore_cannot_read_changes_nothing(tmp_path: Path) -> None:
    text = BASE + "[bobp]\nk = 1\n[bobp]\nk = 2\n"  # a duplicate section: botocore refuses it
    path = write(tmp_path, text)
    with pytest.raises(PlaintextError, match="cannot be read the way botocore reads it"):
        remove_plaintext(path, "base")
    assert path.read_text() == text


def test_no_key_line_of_the_profile_is_an_error_not_removed_0(tmp_path: Path) -> None:
    path = write(tmp_path, "[bobp]\naws_secret_access_key = bob\n[base]\nregion = x\n")
    with pytest.raises(PlaintextError, match="No aws_access_key_id or aws_secret_access_key"):
        remove_plaintext(path, "base")


def test_a_full_disk_changes_nothing_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, REPORTED)

    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(PlaintextError, match="No space left"):
        remove_plaintext(path, "base")
    monkeypatch.undo()
    assert path.read_text() == REPORTED
    assert [p.name for p in tmp_path.iterdir()] == ["credentials"]


def test_the_secret_left_elsewhere_is_found_by_line_and_section(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "[copy]\naws_secret_access_key = base-secret\n")
    remove_plaintext(path, "base")
    assert secret_locations([path], "base-secret") == [f"line 3 of {path} ([copy])"]


@pytest.mark.parametrize(
    ("lines", "kinds"),
    [
        (["[a] ; c", "k = v"], [("header", "a", None), ("option", "a", "k")]),
        (["[a]", "k =", "  x", "  [b]"],
         [("header", "a", None), ("option", "a", "k"), ("continuation", "a", "k"),
          ("continuation", "a", "k")]),
        (["[a]", "# c", "K: v", "", "  more"],
         [("header", "a", None), ("comment", "a", None), ("option", "a", "k"),
          ("blank", "a", "k"), ("continuation", "a", "k")]),
        (["k = v"], [("error", None, None)]),
    ],
)  # fmt: skip
def test_classify_as_configparser_does(lines: list[str], kinds: list[tuple[str, ...]]) -> None:
    assert [(line.kind, line.section, line.option) for line in classify(lines)] == kinds
