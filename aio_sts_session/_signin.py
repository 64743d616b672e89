"""The AWS console's federation endpoint: a sign-in link for role credentials.

``getSigninToken`` trades a role's temporary credentials for a sign-in token; the link
``…/federation?Action=login&Issuer=…&Destination=…&SigninToken=…`` signs whoever opens it in to
the console as that role, for 15 minutes (the token's life; the console session then lasts as
long as ``SessionDuration`` says, else as long as the credentials). The endpoint and the
console are per partition (``aws``, ``aws-cn``, ``aws-us-gov``); ``AIO_STS_SESSION_SIGNIN_URL``
names another endpoint (another partition, a test).

The link is a bearer secret: nothing here logs it or puts it in an exception.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
from typing import Any

from ._models import SessionCredentials
from ._text import first_line, quote
from .exceptions import ConfigurationError, StsError, StsUnavailableError

__all__ = [
    "ENV_SIGNIN_URL",
    "ISSUER",
    "MAX_SESSION_DURATION",
    "MIN_SESSION_DURATION",
    "console_destination",
    "federation_endpoint",
    "get_signin_token",
    "login_url",
]

ENV_SIGNIN_URL = "AIO_STS_SESSION_SIGNIN_URL"
#: Who made the link, as the console records it.
ISSUER = "aio-sts-session"
#: ``SessionDuration``'s range; a role assumed with temporary credentials (role chaining: a
#: role on the MFA session) gives a console session of at most one hour.
MIN_SESSION_DURATION, MAX_SESSION_DURATION = 900, 43200
CHAINED_MAX_SESSION_DURATION = 3600

#: partition -> (the federation endpoint's host, the console's domain)
_PARTITIONS = {
    "aws": ("signin.aws.amazon.com", "console.aws.amazon.com"),
    "aws-cn": ("signin.amazonaws.cn", "console.amazonaws.cn"),
    "aws-us-gov": ("signin.amazonaws-us-gov.com", "console.amazonaws-us-gov.com"),
}


def partition_of(role_arn: str) -> str:
    parts = role_arn.split(":")
    return parts[1] if len(parts) > 1 else ""


def federation_endpoint(role_arn: str, environ: dict[str, str] | None = None) -> str:
    """The federation endpoint for the role's partition, or ``AIO_STS_SESSION_SIGNIN_URL``."""
    environ = dict(os.environ) if environ is None else environ
    override = environ.get(ENV_SIGNIN_URL)
    if override:
        parsed = urllib.parse.urlsplit(override)
        if parsed.scheme not in ("https", "http") or not parsed.netloc or parsed.query:
            raise ConfigurationError(
                f"{ENV_SIGNIN_URL}={quote(override)} is not the URL of a federation endpoint "
                "(https://signin.aws.amazon.com/federation, say)."
            )
        return override
    partition = partition_of(role_arn)
    if partition not in _PARTITIONS:
        raise ConfigurationError(
            f"No console sign-in endpoint is known for the partition {quote(partition)} of "
            f"{role_arn}: set {ENV_SIGNIN_URL} to that partition's federation endpoint, and "
            "pass the console page as a full URL (--path https://…)."
        )
    return f"https://{_PARTITIONS[partition][0]}/federation"


def console_destination(role_arn: str, region: str | None, path: str | None) -> str:
    """The console page to land on: ``path`` (``/s3/home``; a full https URL is taken as it
    is) in ``region`` (the console's home when no path; the global console when no region)."""
    if path and urllib.parse.urlsplit(path).scheme == "https":
        return path
    partition = partition_of(role_arn)
    if partition not in _PARTITIONS:
        raise ConfigurationError(
            f"No console is known for the partition {quote(partition)} of {role_arn}: pass the "
            "console page as a full URL (--path https://…)."
        )
    domain = _PARTITIONS[partition][1]
    page = (path or "").lstrip("/")
    if region is None:
        return f"https://{domain}/{page}"
    page = page or "console/home"
    joiner = "&" if "?" in page else "?"
    return f"https://{region}.{domain}/{page}{joiner}region={urllib.parse.quote(region)}"


def check_session_duration(seconds: int | None, *, chained: bool, role_arn: str) -> None:
    """``SessionDuration``, held to AWS's rules before anyone is asked for a code."""
    if seconds is None:
        return
    if not MIN_SESSION_DURATION <= seconds <= MAX_SESSION_DURATION:
        raise ConfigurationError(
            f"A console session lasts {MIN_SESSION_DURATION} to {MAX_SESSION_DURATION} seconds "
            f"(15 minutes to 12 hours), not {seconds}."
        )
    if chained and seconds > CHAINED_MAX_SESSION_DURATION:
        raise ConfigurationError(
            f"{role_arn} is assumed with temporary credentials (role chaining: on the MFA "
            f"session, or on another role), and AWS limits a console session made from such "
            f"credentials to {CHAINED_MAX_SESSION_DURATION} seconds. Ask for at most that, or "
            "give the role profile duration_seconds above 3600: it is then assumed directly "
            "with the long-term keys and a code, and its console session can last up to 12 "
            "hours."
        )


async def get_signin_token(
    endpoint: str,
    credentials: SessionCredentials,
    *,
    session_duration: int | None = None,
    timeout: float = 30.0,
) -> str:
    """``getSigninToken`` for role ``credentials``: the sign-in token (a secret)."""
    import aiohttp

    session = json.dumps(
        {
            "sessionId": credentials.access_key_id,
            "sessionKey": credentials.secret_access_key,
            "sessionToken": credentials.session_token,
        }
    )
    query: dict[str, Any] = {"Action": "getSigninToken", "Session": session}
    if session_duration is not None:
        query["SessionDuration"] = str(session_duration)
    try:
        async with (
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=timeout), trust_env=True
            ) as http,
            http.get(endpoint, params=query) as response,
        ):
            body = await response.text()
            status = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise StsUnavailableError(
            f"The AWS console's federation endpoint {endpoint} could not be reached "
            f"({type(exc).__name__}): check the network (HTTPS_PROXY) or {ENV_SIGNIN_URL}."
        ) from None  # the request's URL holds the credentials: not chained
    if status != 200:
        raise StsError(
            f"The AWS console's federation endpoint {endpoint} refused the role's credentials "
            f"(HTTP {status}: {quote(first_line(body)[:200])})."
        )
    try:
        token = json.loads(body)["SigninToken"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise StsError(
            f"The AWS console's federation endpoint {endpoint} answered without a sign-in token."
        )
    return token


def login_url(endpoint: str, token: str, destination: str) -> str:
    """The sign-in link (a bearer secret for 15 minutes)."""
    query = urllib.parse.urlencode(
        {"Action": "login", "Issuer": ISSUER, "Destination": destination, "SigninToken": token}
    )
    return f"{endpoint}?{query}"
