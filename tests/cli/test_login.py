"""``login``: the AWS console as a role profile, through the strict fake STS and its federation
endpoint (``AIO_STS_SESSION_SIGNIN_URL``); the command runs as a real subprocess. And session
tags from a profile, on every command-line path."""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

import aiohttp
import pytest

from aio_sts_session._signin import console_destination, federation_endpoint
from aio_sts_session.exceptions import ConfigurationError

from .conftest import Cli, assert_one_line_error

ADMIN = "arn:aws:iam::123456789012:role/admin"
ENV = "AIO_STS_SESSION_SIGNIN_URL"


def signin_env(cli: Cli) -> dict[str, str]:
    return {"AIO_STS_SESSION_SIGNIN_URL": cli.fake.signin_url}


async def open_link(url: str) -> str:
    """What the console says to whoever opens the link."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.text()


async def test_login_stdout_prints_a_link_that_signs_in_as_the_role(cli: Cli) -> None:
    result = await cli.run("login", "--profile", "admin", "--stdout", env=signin_env(cli))
    assert result.status == 0, result.err
    url = result.out.strip()
    assert url.startswith(cli.fake.signin_url + "?Action=login&Issuer=aio-sts-session&")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["Destination"] == [
        "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1"
    ]
    said = await open_link(url)
    assert "signed in to the console as arn:aws:sts::123456789012:assumed-role/admin/" in said
    [token_call] = cli.fake.calls["getSigninToken"]
    assert token_call.outcome == "ok"
    assert "session_duration" not in token_call.options  # as long as the credentials
    assert cli.prompts == 1
    # Again: the cached session, no prompt; a new sign-in token.
    again = await cli.run("login", "--profile", "admin", "--stdout", env=signin_env(cli))
    assert again.status == 0, again.err
    assert cli.prompts == 1
    assert len(cli.fake.calls["getSigninToken"]) == 2
    assert len(cli.fake.calls["GetSessionToken"]) == 1
    with pytest.raises(AssertionError):
        await open_link(url)  # a sign-in token works once


async def test_login_opens_the_browser_and_logs_no_secret(cli: Cli, tmp_path: Path) -> None:
    opened = tmp_path / "opened"
    browser = tmp_path / "browser.py"
    browser.write_text(f"import sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    env = {**signin_env(cli), "BROWSER": f"{sys.executable} {browser} %s"}
    result = await cli.run(
        "-v", "login", "--profile", "admin", "--path", "/s3/home", "--region", "eu-west-1", env=env
    )
    assert result.status == 0, result.err
    assert result.out == ""
    url = opened.read_text()
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["SigninToken"][0]
    assert token not in result.err
    assert "SigninToken" not in result.err
    assert "Opened the console as arn:aws:iam::123456789012:role/admin" in result.err
    assert "going to https://eu-west-1.console.aws.amazon.com/s3/home?region=eu-west-1" in (
        await open_link(url)
    )


async def test_a_session_profile_is_refused_before_anyone_is_asked(cli: Cli) -> None:
    result = await cli.run("login", "--profile", "base", "--stdout", env=signin_env(cli))
    assert_one_line_error(result, cli.fake, "the AWS console accepts only role credentials")
    assert "source_profile = base" in result.err
    assert cli.prompts == 0
    assert cli.fake.calls == []


async def test_the_console_session_duration_rules(cli: Cli) -> None:
    """A role chained on the MFA session: a console session of an hour at most, refused
    before any prompt; within it, sent. A role assumed directly (duration_seconds above an
    hour) may ask for up to 12 hours."""
    too_long = await cli.run(
        "login", "--profile", "admin", "--stdout", "--session-duration", "7200", env=signin_env(cli)
    )
    assert too_long.status == 2
    assert "--session-duration 7200" in too_long.err
    assert "role chaining" in too_long.err
    assert cli.prompts == 0
    ok = await cli.run(
        "login", "--profile", "admin", "--stdout", "--session-duration", "1800", env=signin_env(cli)
    )
    assert ok.status == 0, ok.err
    assert cli.fake.calls["getSigninToken"][-1].options["session_duration"] == "1800"
    cli.fake.roles[ADMIN].max_session = 43200
    cli.write_config("\n[profile long]\nrole_arn = " + ADMIN + "\nsource_profile = base\n"
                     "duration_seconds = 28800\n")  # fmt: skip
    direct = await cli.run(
        "login", "--profile", "long", "--stdout", "--session-duration", "43200", env=signin_env(cli)
    )
    assert direct.status == 0, direct.err
    assert cli.fake.calls["getSigninToken"][-1].options["session_duration"] == "43200"
    assert cli.fake.calls["AssumeRole"][-1].serial is not None  # direct, with a code


async def test_a_federation_endpoint_that_refuses_is_one_line(cli: Cli) -> None:
    cli.fake.fail("getSigninToken", status=400, code="-", message="Bad request")
    result = await cli.run("login", "--profile", "admin", "--stdout", env=signin_env(cli))
    assert_one_line_error(result, cli.fake, "federation endpoint")
    assert "HTTP 400" in result.err


async def test_an_unreachable_federation_endpoint_is_one_line(cli: Cli) -> None:
    env = {"AIO_STS_SESSION_SIGNIN_URL": "http://127.0.0.1:9/federation"}
    result = await cli.run("login", "--profile", "admin", "--stdout", env=env)
    assert_one_line_error(result, cli.fake, "could not be reached")


async def test_no_browser_says_what_to_do(cli: Cli) -> None:
    env = {**signin_env(cli), "BROWSER": "false"}
    result = await cli.run("login", "--profile", "admin", env=env)
    assert_one_line_error(result, cli.fake, "--stdout")


@pytest.mark.parametrize(
    ("role_arn", "region", "path", "destination"),
    [
        (ADMIN, None, None, "https://console.aws.amazon.com/"),
        (ADMIN, "eu-west-1", None, "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"),
        (ADMIN, "eu-west-1", "/s3/home", "https://eu-west-1.console.aws.amazon.com/s3/home?region=eu-west-1"),
        (ADMIN, "eu-west-1", "ec2/home?x=1", "https://eu-west-1.console.aws.amazon.com/ec2/home?x=1&region=eu-west-1"),
        ("arn:aws-cn:iam::123456789012:role/a", "cn-north-1", None, "https://cn-north-1.console.amazonaws.cn/console/home?region=cn-north-1"),
        ("arn:aws-us-gov:iam::123456789012:role/a", None, "/iam", "https://console.amazonaws-us-gov.com/iam"),
        ("arn:aws-iso:iam::123456789012:role/a", None, "https://console.example/x", "https://console.example/x"),
    ],
)  # fmt: skip
def test_the_console_page(
    role_arn: str, region: str | None, path: str | None, destination: str
) -> None:
    assert console_destination(role_arn, region, path) == destination


@pytest.mark.parametrize(
    ("role_arn", "environ", "endpoint"),
    [
        (ADMIN, {}, "https://signin.aws.amazon.com/federation"),
        ("arn:aws-cn:iam::123456789012:role/a", {}, "https://signin.amazonaws.cn/federation"),
        ("arn:aws-us-gov:iam::1:role/a", {}, "https://signin.amazonaws-us-gov.com/federation"),
        ("arn:aws-iso:iam::1:role/a", {ENV: "https://s.example/federation"}, "https://s.example/federation"),
    ],
)  # fmt: skip
def test_the_federation_endpoint_of_the_partition(
    role_arn: str, environ: dict[str, str], endpoint: str
) -> None:
    assert federation_endpoint(role_arn, environ) == endpoint


def test_an_unknown_partition_or_a_bad_override_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="AIO_STS_SESSION_SIGNIN_URL"):
        federation_endpoint("arn:aws-iso:iam::123456789012:role/a", {})
    with pytest.raises(ConfigurationError, match="not the URL of a federation endpoint"):
        federation_endpoint(ADMIN, {"AIO_STS_SESSION_SIGNIN_URL": "signin.example"})
    with pytest.raises(ConfigurationError, match="full URL"):
        console_destination("arn:aws-iso:iam::123456789012:role/a", None, "/s3")


# -- session tags from the profile, on the command line -------------------------------------------


async def test_session_tags_in_a_profile_reach_sts_from_every_path(cli: Cli) -> None:
    cli.write_config(
        "\n[profile tagged]\nrole_arn = " + ADMIN + "\nsource_profile = base\n"
        "session_tags = team=payments, env=prod\ntransitive_session_tags = team\n"
        "source_identity = alice\n"
    )
    result = await cli.run("credential-process", "--profile", "tagged")
    assert result.status == 0, result.err
    [call] = cli.fake.calls["AssumeRole"]
    assert call.options == {
        "tags": {"team": "payments", "env": "prod"},
        "transitive_tag_keys": ["team"],
        "source_identity": "alice",
    }
    # The plain role profile on the same role is another session: not the tagged one.
    plain = await cli.run("credential-process", "--profile", "admin")
    assert json.loads(plain.out)["AccessKeyId"] != json.loads(result.out)["AccessKeyId"]
    assert len(cli.fake.calls["AssumeRole"]) == 2
    assert cli.prompts == 1
    bad = cli.home / "config"
    bad.write_text(bad.read_text().replace("env=prod", "env"))
    refused = await cli.run("credential-process", "--profile", "tagged")
    assert_one_line_error(refused, cli.fake, "session_tags in profile 'tagged': 'env'")
