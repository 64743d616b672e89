"""The STS calls (GetSessionToken, AssumeRole, GetCallerIdentity): request, response parsing,
clock-skew correction, error mapping.

The aiobotocore STS client itself is built in :mod:`.integrations.aiobotocore`; this module
only calls it and maps botocore's exceptions onto :mod:`.exceptions`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import email.utils
import enum
from collections.abc import Awaitable, Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError

from ._clock import Clock
from ._log import logger
from ._models import CachedToken, SessionCredentials
from ._rolesession import RoleSessionOptions
from ._text import first_line, quote
from .exceptions import (
    ConfigurationError,
    MfaError,
    SourceCredentialsError,
    StsError,
    StsSessionError,
    StsUnavailableError,
)

__all__ = [
    "CodeRejected",
    "ErrorKind",
    "KeysChanged",
    "RoleCall",
    "SessionExpired",
    "SourceKeys",
    "call_assume_role",
    "call_get_caller_identity",
    "call_get_session_token",
    "cap_expiry",
    "check_source_keys",
    "classify_error",
    "correct_for_skew",
    "serial_account",
]


#: Below this many seconds a difference between our clock and STS's ``Date`` is noise
#: (``Date`` has one-second resolution).
SKEW_TOLERANCE = 2.0
#: STS refuses requests signed more than 15 minutes off its clock, so a genuine answer never
#: carries a ``Date`` further off than that: such a header (a proxy's, a cache's) is ignored.
MAX_PLAUSIBLE_SKEW = 900.0


@dataclasses.dataclass(frozen=True, repr=False)
class SourceKeys:
    """The long-term keys that sign GetSessionToken. ``repr`` hides the secret.

    ``load``: where the secret is kept when it has not been read yet (the OS keyring, whose
    item may ask for a passphrase or an unlock): :meth:`with_secret` reads it, only when
    something is about to be signed. Naming a cache entry needs the access key id alone, so a
    run served from the cache never reads it."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    method: str
    load: Callable[[], tuple[str, str]] | None = dataclasses.field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"SourceKeys(access_key_id={self.access_key_id!r}, method={self.method!r})"

    async def with_secret(self) -> SourceKeys:
        """These keys with their secret read (in a worker thread: a keyring may block). The
        keys read must be the ones these name, else :class:`KeysChanged`."""
        if self.load is None:
            return self
        key_id, secret = await asyncio.to_thread(self.load)
        if key_id != self.access_key_id:
            raise KeysChanged(key_id)
        return SourceKeys(key_id, secret, None, self.method)


class KeysChanged(Exception):
    """Internal signal: the long-term keys read are not the ones the plan named (another tool
    replaced them): the engine plans again, once, before anyone is asked for a code."""


def check_source_keys(keys: SourceKeys | None, where: str) -> SourceKeys:
    """Refuse missing or temporary keys before anyone is asked for a code."""
    if keys is None or not keys.access_key_id or not (keys.secret_access_key or keys.load):
        raise SourceCredentialsError(
            f"No long-term AWS credentials found ({where}). GetSessionToken must be signed with "
            "an IAM user's access key.",
            hint="Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, add them to ~/.aws/credentials, "
            "or pass source_session=AioSession(profile=...).",
            topic="source.missing",
        )
    if keys.session_token:
        raise SourceCredentialsError(
            f"The source credentials (access key {keys.access_key_id}, found by "
            f"{quote(keys.method)}) are temporary: they carry a session token, and STS refuses "
            "GetSessionToken signed with them.",
            hint="Use an IAM user's long-term access key (AKIA...), e.g. unset "
            "AWS_SESSION_TOKEN or pass source_session=AioSession(profile=<a profile with "
            "long-term keys>).",
            topic="source.temporary",
        )
    return keys


def correct_for_skew(
    expiration: float, server_date: float | None, received_at: float
) -> tuple[float, float, float]:
    """Translate STS's ``Expiration`` into our clock using the response's ``Date``.

    Returns ``(expires_at, lifetime, skew)``; pure, so it is tested as a table.
    """
    skew = 0.0 if server_date is None else server_date - received_at
    if abs(skew) < SKEW_TOLERANCE or abs(skew) > MAX_PLAUSIBLE_SKEW:
        skew = 0.0
    expires_at = expiration - skew
    return expires_at, expires_at - received_at, skew


class ErrorKind(enum.Enum):
    CODE_REJECTED = "code_rejected"  # ask the callback again
    SERIAL_INVALID = "serial_invalid"  # a new code won't help: the serial is wrong
    EXPIRED = "expired"  # the signing session credentials expired: renew them, retry once
    TOO_LONG = "too_long"  # DurationSeconds above the role's MaxSessionDuration
    SOURCE_TEMPORARY = "source_temporary"
    SOURCE_INVALID = "source_invalid"
    UNAVAILABLE = "unavailable"  # retried by botocore already; recover later
    DENIED = "denied"
    OTHER = "other"


_SOURCE_INVALID_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "IncompleteSignature",
        "AuthFailure",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "IDPCommunicationError",
    }
)


def classify_error(code: str, message: str, status: int | None) -> ErrorKind:
    """Map an STS error response onto what the provider should do about it."""
    lowered = message.lower()
    if code == "AccessDenied" and "multifactorauthentication failed" in lowered:
        if "invalid mfa one time pass code" in lowered:
            return ErrorKind.CODE_REJECTED
        return ErrorKind.SERIAL_INVALID
    if code == "AccessDenied" and "session credentials" in lowered:
        return ErrorKind.SOURCE_TEMPORARY
    if code in ("ExpiredToken", "ExpiredTokenException"):
        return ErrorKind.EXPIRED
    if code == "ValidationError" and "maxsessionduration" in lowered:
        return ErrorKind.TOO_LONG
    if code in _SOURCE_INVALID_CODES:
        return ErrorKind.SOURCE_INVALID
    if code in _UNAVAILABLE_CODES or (status is not None and status >= 500):
        return ErrorKind.UNAVAILABLE
    if code == "AccessDenied":
        return ErrorKind.DENIED
    return ErrorKind.OTHER


class CodeRejected(Exception):
    """Internal signal: STS refused this MFA code; the provider asks for another."""


class SessionExpired(Exception):
    """Internal signal: the session credentials that signed the call have expired at STS;
    the role provider renews them and retries once."""


@dataclasses.dataclass(frozen=True)
class RoleCall:
    """What an AssumeRole error message names: the role, who asked, and for how long."""

    role_arn: str
    identity: str
    duration: int
    external_id: str | None
    with_mfa: bool
    chained: bool  # signed with session credentials (which STS may refuse as expired)
    # tags, source identity, session policies
    session: RoleSessionOptions = dataclasses.field(default_factory=RoleSessionOptions)


def _map_client_error(
    exc: ClientError,
    serial: str | None,
    key_id: str,
    role: RoleCall | None = None,
    endpoint: str | None = None,
) -> Exception:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    kind = classify_error(code, message, status)
    if kind is ErrorKind.CODE_REJECTED:
        return CodeRejected(code)
    if kind is ErrorKind.EXPIRED or (
        kind is ErrorKind.SOURCE_INVALID and role is not None and role.chained
    ):
        return SessionExpired(code)  # the session credentials are no longer valid: renew
    if role is not None:
        mapped = _map_role_error(kind, code, status, role)
        if mapped is not None:
            return mapped
    if kind is ErrorKind.SERIAL_INVALID:
        return MfaError(
            f"STS could not validate MFA codes for {quote(serial)}: check that mfa_serial is the "
            f"ARN (or hardware serial) of an MFA device assigned to the IAM user of {key_id}."
        )
    if kind is ErrorKind.SOURCE_TEMPORARY:
        return SourceCredentialsError(
            f"STS refused GetSessionToken signed with {key_id}: those are session credentials. "
            "Sign with an IAM user's long-term access key."
        )
    if kind is ErrorKind.SOURCE_INVALID:
        return SourceCredentialsError(
            f"STS did not accept the long-term access key {key_id} ({code}): check the key id "
            "and secret (rotated or deleted key?) and the local clock."
        )
    if kind is ErrorKind.UNAVAILABLE:
        return _unavailable(str(code or status), endpoint)
    if kind is ErrorKind.DENIED:
        return StsError(
            f"STS denied GetSessionToken for {key_id} ({code}): allow sts:GetSessionToken "
            "for this IAM user."
        )
    return StsError(
        f"GetSessionToken failed with {code or status}: see the chained botocore error."
    )


def _map_role_error(
    kind: ErrorKind, code: str, status: int | None, role: RoleCall
) -> Exception | None:
    """The AssumeRole refusals that name the role (``None``: map as for any call)."""
    if kind is ErrorKind.TOO_LONG:
        return ConfigurationError(
            f"duration_seconds={role.duration} exceeds the MaxSessionDuration of "
            f"{role.role_arn}: ask for less, or raise the role's maximum (IAM: "
            "update-role --max-session-duration, up to 43200)."
        )
    if kind is ErrorKind.DENIED:
        actions = ["sts:AssumeRole"]
        if role.session.tags:
            actions.append("sts:TagSession (for the session tags)")
        if role.session.source_identity is not None:
            actions.append("sts:SetSourceIdentity (for the source identity)")
        hints = [
            "the role's trust policy must allow this identity to call " + " and ".join(actions)
        ]
        if not role.with_mfa:
            hints.append("roles that demand MFA need mfa_serial (and a callback)")
        if role.external_id is not None:
            hints.append("and the external id must be the one the trust policy names")
        return StsError(
            f"STS refused AssumeRole of {role.role_arn} for {role.identity} ({code}): "
            f"{'; '.join(hints)}."
        )
    if kind is ErrorKind.OTHER and code == "PackedPolicyTooLarge":
        return ConfigurationError(
            f"STS refused AssumeRole of {role.role_arn}: its session tags and session policies "
            f"({role.session.describe()}) are too large once packed; pass fewer or shorter "
            "tags, or a shorter policy."
        )
    if kind is ErrorKind.OTHER and code in _INVALID_CODES:
        sent = f"duration_seconds={role.duration}, external_id given: "
        sent += str(role.external_id is not None)
        hint = ""
        if role.session:
            sent += f"; {role.session.describe()}"
            hint = (
                "; along a chain of roles a source identity cannot change, and a tag an earlier "
                "role passed as transitive cannot be set again"
            )
        return ConfigurationError(
            f"STS refused AssumeRole of {role.role_arn} as invalid ({sent}): see the chained "
            f"botocore error{hint}."
        )
    return None


#: What STS answers to a request it will never take as it is.
_INVALID_CODES = frozenset({"ValidationError", "InvalidParameterValue", "MalformedPolicyDocument"})


def _map_botocore_error(exc: BotoCoreError, endpoint: str | None) -> StsSessionError:
    if isinstance(exc, NoCredentialsError):
        return SourceCredentialsError(
            "botocore found no credentials to sign GetSessionToken: configure an IAM user's "
            "long-term access key."
        )
    # Connection, timeout, and other transport failures: botocore already retried them.
    return _unavailable(type(exc).__name__, endpoint)


def _unavailable(problem: str, endpoint: str | None) -> StsUnavailableError:
    where = endpoint or "the STS endpoint"
    return StsUnavailableError(
        f"STS at {where} kept failing ({problem}) after retries.",
        hint="The provider retries by itself shortly; check network access to the endpoint "
        "(endpoint_url, AWS_ENDPOINT_URL_STS, the profile's endpoint settings) if this persists.",
        topic="sts.unavailable",
        endpoint=where,
    )


def _parse_credentials(response: dict[str, Any], action: str) -> SessionCredentials:
    """The ``Credentials`` of an STS answer, or :class:`StsError` if any field is missing."""
    raw = response.get("Credentials") or {}
    fields = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
    missing = [name for name in fields if not raw.get(name)]
    expiration = raw.get("Expiration")
    if missing or not isinstance(expiration, _dt.datetime):
        raise StsError(
            f"STS's answer to {action} lacks {', '.join(missing) or 'a valid Expiration'} in "
            "Credentials (a proxy or a broken endpoint in between?): check endpoint_url / "
            "AWS_ENDPOINT_URL_STS and retry."
        )
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=_dt.timezone.utc)
    return SessionCredentials(
        access_key_id=str(raw["AccessKeyId"]),
        secret_access_key=str(raw["SecretAccessKey"]),
        session_token=str(raw["SessionToken"]),
        expiration=expiration.astimezone(_dt.timezone.utc),
    )


def _server_date(response: dict[str, Any]) -> float | None:
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    raw = headers.get("date")
    if not raw:
        return None
    try:
        return email.utils.parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError):
        return None


async def _send(
    action: str,
    client: Any,
    request: Callable[[], Awaitable[dict[str, Any]]],
    on_client_error: Callable[[ClientError, str | None], Exception],
) -> dict[str, Any]:
    """Make one STS call (botocore retries transient faults) on ``client``, mapping its
    failures (naming the client's endpoint where it matters): STS's
    error answers by ``on_client_error``, transport failures to :class:`StsUnavailableError`,
    and an answer that cannot be read, whatever botocore's parser raised for it, to
    :class:`StsError` naming what was wrong.

    An unreadable answer's own exception is not chained: botocore quotes the body in it, and a
    body that is nearly right holds the secret key and the session token."""
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
    try:
        return await request()
    except ClientError as exc:
        raise on_client_error(exc, endpoint) from exc
    except BotoCoreError as exc:
        raise _map_botocore_error(exc, endpoint) from exc
    except ResponseParserError as exc:
        problem = first_line(str(exc))
    except (ValueError, KeyError, TypeError, RuntimeError, OverflowError, AttributeError) as exc:
        # What botocore's parser raises for a well-formed body it cannot use: a KeyError for a
        # missing <ActionResult>, a ValueError or RuntimeError for an unreadable timestamp.
        problem = _describe_parse_error(action, exc)
    logger.debug("STS's answer to %s could not be read: %s", action, problem)
    raise StsError(
        f"STS's answer to {action} could not be read ({problem}): a proxy or a broken endpoint "
        "in between? Check the STS endpoint (endpoint_url, AWS_ENDPOINT_URL_STS or the "
        "profile's endpoint settings); the provider retries after a backoff."
    ) from None


def _describe_parse_error(action: str, exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no {first_line(str(exc.args[0]) if exc.args else '?', 60)} element"
    if isinstance(exc, (ValueError, RuntimeError, OverflowError)) and "timestamp" in str(exc):
        return "a timestamp that is not a date"
    if isinstance(exc, RuntimeError) and "timezone offset" in str(exc):
        return "a timestamp that is not a date"
    return f"{type(exc).__name__}: {first_line(str(exc), 60)}"


async def call_get_caller_identity(client: Any, *, key_id: str) -> tuple[str, str]:
    """Check the long-term keys with STS (GetCallerIdentity needs no permission) and return
    their account id and ARN. Raises :class:`SourceCredentialsError` if STS refuses them."""
    response = await _send(
        "GetCallerIdentity",
        client,
        client.get_caller_identity,
        lambda exc, endpoint: _map_client_error(exc, None, key_id, endpoint=endpoint),
    )
    return str(response.get("Account", "")), str(response.get("Arn", ""))


def serial_account(serial: str) -> str | None:
    """The account id in an MFA device ARN (``None`` for a hardware serial)."""
    parts = serial.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "iam":
        return parts[4] or None
    return None


async def call_get_session_token(
    client: Any,
    *,
    duration_seconds: int,
    serial: str | None,
    code: str | None,
    key_id: str,
    clock: Clock,
) -> CachedToken:
    """Call GetSessionToken once (botocore retries transient faults with the same code).

    ``clock`` is read when the response arrives. Raises :class:`CodeRejected`
    when STS refuses the MFA code, or a :class:`StsSessionError` with the botocore error chained.
    """
    params: dict[str, Any] = {"DurationSeconds": duration_seconds}
    if serial is not None:
        params["SerialNumber"] = serial
        params["TokenCode"] = code
    response = await _send(
        "GetSessionToken",
        client,
        lambda: client.get_session_token(**params),
        lambda exc, endpoint: _map_client_error(exc, serial, key_id, endpoint=endpoint),
    )
    return _token(response, "GetSessionToken", clock(), duration_seconds)


def _token(response: dict[str, Any], action: str, now: float, requested: int) -> CachedToken:
    credentials = _parse_credentials(response, action)
    expires_at, lifetime, skew = correct_for_skew(
        credentials.expiration.timestamp(), _server_date(response), now
    )
    capped = cap_expiry(expires_at, now, requested)
    if capped != expires_at:
        logger.warning(
            "STS's answer to %s says the credentials expire at %s, %.0f s from now, but %d s "
            "were asked for: using %d s (a proxy or a broken endpoint in between?).",
            action,
            credentials.expiration.isoformat(),
            lifetime,
            requested,
            requested,
        )
        expires_at, lifetime = capped, capped - now
        credentials = dataclasses.replace(
            credentials,
            expiration=_dt.datetime.fromtimestamp(int(capped + skew), _dt.timezone.utc),
        )
    return CachedToken(credentials=credentials, expires_at=expires_at, lifetime=lifetime, skew=skew)


def cap_expiry(expires_at: float, now: float, requested: int) -> float:
    """STS never grants more than was asked for: an expiry further away than ``requested``
    seconds (plus :data:`SKEW_TOLERANCE`) is not taken at its word but brought back to
    ``now + requested``. Pure, so it is tested as a table."""
    if expires_at - now > requested + SKEW_TOLERANCE:
        return now + requested
    return expires_at


async def call_assume_role(
    client: Any,
    *,
    role: RoleCall,
    session_name: str,
    serial: str | None,
    code: str | None,
    key_id: str,
    clock: Clock,
) -> CachedToken:
    """Call AssumeRole once. Raises :class:`CodeRejected` for a refused MFA code,
    :class:`SessionExpired` when the signing session credentials have expired, or a
    :class:`StsSessionError` naming the role."""
    params: dict[str, Any] = {
        "RoleArn": role.role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": role.duration,
    }
    if role.external_id is not None:
        params["ExternalId"] = role.external_id
    params.update(role.session.params())
    if serial is not None and code is not None:
        params["SerialNumber"] = serial
        params["TokenCode"] = code
    response = await _send(
        "AssumeRole",
        client,
        lambda: client.assume_role(**params),
        lambda exc, endpoint: _map_client_error(exc, serial, key_id, role, endpoint),
    )
    return _token(response, "AssumeRole", clock(), role.duration)
