"""Session tags, transitive tag keys, source identity and session policies, held to STS's
limits: each row is a value and what is said about it (tables: pure functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aio_sts_session import ConfigurationError
from aio_sts_session._rolesession import RoleSessionOptions, from_profile_settings

ROLE = "arn:aws:iam::123456789012:role/admin"
TWO_TAGS = {"team": "payments", "env": "prod"}


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"tags": {"k": "v"} | {f"t{i}": "v" for i in range(50)}}, "51 session tags"),
        ({"tags": {"": "v"}}, r"tag key '' .* 1 to 128"),
        ({"tags": {"k" * 129: "v"}}, "1 to 128"),
        ({"tags": {"a!b": "v"}}, "letters, digits, spaces"),
        ({"tags": {"aws:team": "v"}}, "reserved by AWS"),
        ({"tags": {"Team": "a", "team": "b"}}, "differ only in case"),
        ({"tags": {"k": "v" * 257}}, "up to 256"),
        ({"tags": {"k": "semi;colon"}}, "value of session tag 'k'"),
        ({"tags": {"k": 3}}, "value of session tag 'k'"),
        ({"tags": [("k", "v")]}, "must be a mapping"),
        ({"tags": {"k": "v"}, "transitive_tag_keys": ["other"]}, "not one of its session tags"),
        ({"transitive_tag_keys": ["k"]}, "not one of its session tags"),
        ({"tags": {"k": "v"}, "transitive_tag_keys": "k"}, "must be a list"),
        ({"tags": {"k": "v"}, "transitive_tag_keys": ["k", "K"]}, "repeats a key"),
        ({"source_identity": "a"}, "2 to 64"),
        ({"source_identity": "x" * 65}, "2 to 64"),
        ({"source_identity": "alice smith"}, "2 to 64"),
        ({"source_identity": "aws:alice"}, "2 to 64"),
        ({"policy": "{not json"}, r"not JSON \(Expecting property name"),
        ({"policy": "[]"}, "must be a JSON object"),
        ({"policy": "  "}, "empty"),
        ({"policy": '{"Statement": "\u2603"}'}, "characters STS refuses"),
        ({"policy": 42}, "JSON policy document"),
        ({"policy_arns": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, "must be a list"),
        ({"policy_arns": ["arn:aws:iam::aws:role/x"]}, "managed policy's ARN"),
        ({"policy_arns": [f"arn:aws:iam::aws:policy/p{i}" for i in range(11)]}, "at most 10"),
        (
            {"policy": json.dumps({"Version": "2012-10-17", "Sid": "x" * 2000}),
             "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]},
            r"are 20\d\d characters .* at most 2048",
        ),
    ],
)  # fmt: skip
def test_what_sts_would_refuse_is_named_before_any_call(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        RoleSessionOptions.checked(ROLE, **options)


def test_what_sts_takes_is_sent_as_botocore_takes_it() -> None:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}
    options = RoleSessionOptions.checked(
        ROLE,
        tags={"team": "payments", "Cost Center": "42 / eu", "ünïcode": "ok"},
        transitive_tag_keys=["team"],
        source_identity="alice@example.com",
        policy=policy,
        policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    )
    assert options.params() == {
        "Tags": [
            {"Key": "team", "Value": "payments"},
            {"Key": "Cost Center", "Value": "42 / eu"},
            {"Key": "ünïcode", "Value": "ok"},
        ],
        "TransitiveTagKeys": ["team"],
        "SourceIdentity": "alice@example.com",
        "Policy": json.dumps(policy, separators=(",", ":")),
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
    }
    assert "payments" not in options.describe()  # the keys, not the values
    assert "session tags team, Cost Center, ünïcode" in options.describe()


def test_none_is_empty_and_adds_nothing_to_the_entry_key() -> None:
    empty = RoleSessionOptions.checked(ROLE)
    assert not empty
    assert empty.params() == {}
    assert empty.key() == ""


def test_the_entry_key_part_is_stable_and_tells_every_option_apart() -> None:
    def key(**options: Any) -> str:
        return RoleSessionOptions.checked(ROLE, **options).key()

    variants = [
        {"tags": {"team": "a"}},
        {"tags": {"team": "b"}},
        {"tags": {"team": "a"}, "transitive_tag_keys": ["team"]},
        {"source_identity": "alice"},
        {"source_identity": "bob"},
        {"policy": '{"Version": "2012-10-17"}'},
        {"policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]},
    ]
    keys = [key(**v) for v in variants]
    assert len(set(keys)) == len(keys)
    assert keys[0] == key(tags={"team": "a"})  # the same in every process


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"session_tags": "team=payments, env=prod"}, {"tags": TWO_TAGS}),
        ({"session_tags": "\nteam = payments\nenv = prod"}, {"tags": TWO_TAGS}),
        ({"session_tags": "url=a=b"}, {"tags": {"url": "a=b"}}),
        ({"transitive_session_tags": "team, env"}, {"transitive_tag_keys": ["team", "env"]}),
        ({"source_identity": " alice "}, {"source_identity": "alice"}),
        ({"region": "eu-west-1"}, {}),
    ],
)  # fmt: skip
def test_profile_settings_with_aws_vaults_names(
    settings: dict[str, str], expected: dict[str, Any]
) -> None:
    assert from_profile_settings("admin", settings) == expected


def test_a_malformed_session_tags_setting_names_the_profile() -> None:
    with pytest.raises(ConfigurationError, match=r"session_tags in profile 'admin': 'team'"):
        from_profile_settings("admin", {"session_tags": "team, env=prod"})
