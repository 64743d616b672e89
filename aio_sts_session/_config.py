"""Checking the provider's arguments, all at construction, before anyone is asked for a code."""

from __future__ import annotations

import dataclasses
import math
import re

from ._text import quote
from .exceptions import ConfigurationError

__all__ = [
    "CHAINING_CAP",
    "DEFAULT_MFA_TIMEOUT",
    "MAX_DURATION",
    "MIN_DURATION",
    "ROLE_MAX_DURATION",
    "ROLE_MIN_DURATION",
    "SessionSettings",
    "check_serial",
    "validate",
    "validate_endpoint",
    "validate_role",
    "validate_service_options",
    "validate_windows",
]

MIN_DURATION, MAX_DURATION = 900, 129600
#: AWS's pattern for SerialNumber: an MFA device ARN or a hardware token's serial.
_SERIAL = re.compile(r"[\w+=/:,.@-]{9,256}")
#: An ARN must name an MFA device (``arn:aws:iam::123456789012:mfa/alice``), in any partition.
_MFA_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:mfa/[\w+=/,.@-]+")


@dataclasses.dataclass(frozen=True)
class SessionSettings:
    """What a :class:`~aio_sts_session.SessionTokenProvider` is made of, checked as one by
    :func:`validate`. ``fallback_region`` is a profile's region, used for STS after the
    source session's own; ``profile`` is the profile the settings come from (prompts name
    it)."""

    mfa_serial: str | None = None
    mfa_callback: object = None
    duration_seconds: int = 43200
    prefetch_seconds: float = 300
    stale_seconds: float = 60
    mfa_attempts: int = 3
    mfa_timeout: float | None = 300.0  # DEFAULT_MFA_TIMEOUT
    region_name: str | None = None
    endpoint_url: str | None = None
    fallback_region: str | None = None
    profile: str | None = None
    max_wait: float | None = None
    on_event: object = None


def validate(settings: SessionSettings) -> None:
    """Every argument of a session provider, before anyone is asked for a code."""
    duration_seconds = settings.duration_seconds
    mfa_serial, mfa_callback = settings.mfa_serial, settings.mfa_callback
    if isinstance(duration_seconds, bool) or not isinstance(duration_seconds, int):
        raise ConfigurationError(
            f"duration_seconds must be an int, got {type(duration_seconds).__name__}."
        )
    if not MIN_DURATION <= duration_seconds <= MAX_DURATION:
        raise ConfigurationError(
            f"duration_seconds={duration_seconds} is outside GetSessionToken's range "
            f"{MIN_DURATION}..{MAX_DURATION} (15 min to 36 h); pick a value inside it."
        )
    if mfa_serial is not None:
        check_serial(mfa_serial)
        if mfa_callback is None:
            raise ConfigurationError(
                "mfa_serial is set but mfa_callback is not: pass mfa_callback=<async or plain "
                "function taking an MfaRequest and returning the six-digit code>."
            )
    if mfa_callback is not None and not callable(mfa_callback):
        raise ConfigurationError(
            f"mfa_callback must be callable, got {type(mfa_callback).__name__}."
        )
    validate_windows(settings.prefetch_seconds, settings.stale_seconds)
    mfa_attempts, mfa_timeout = settings.mfa_attempts, settings.mfa_timeout
    if isinstance(mfa_attempts, bool) or not isinstance(mfa_attempts, int) or mfa_attempts < 1:
        raise ConfigurationError(f"mfa_attempts must be an int >= 1, got {quote(mfa_attempts)}.")
    if mfa_timeout is not None and not (
        isinstance(mfa_timeout, (int, float))
        and not isinstance(mfa_timeout, bool)
        and 0 < mfa_timeout < math.inf
    ):
        raise ConfigurationError(
            f"mfa_timeout must be a positive number of seconds or None, got {quote(mfa_timeout)}."
        )
    validate_endpoint(settings.endpoint_url)
    validate_service_options(settings.max_wait, settings.on_event)


#: A code is waited for this long by default: nothing waits for a person for ever unless asked
#: (``mfa_timeout=None``). Five minutes: enough to find a phone, or for an approver to answer.
DEFAULT_MFA_TIMEOUT = 300.0


def validate_service_options(max_wait: object, on_event: object) -> None:
    """``max_wait`` (seconds a caller waits for a refresh, or ``None``) and ``on_event``."""
    if max_wait is not None and not (
        isinstance(max_wait, (int, float))
        and not isinstance(max_wait, bool)
        and 0 < max_wait < math.inf
    ):
        raise ConfigurationError(
            f"max_wait must be a positive number of seconds or None, got {quote(max_wait)}."
        )
    if on_event is not None and not callable(on_event):
        raise ConfigurationError(
            f"on_event must be a function taking a ProviderEvent (plain or async), got "
            f"{type(on_event).__name__}."
        )


def validate_windows(prefetch_seconds: object, stale_seconds: object) -> None:
    """The refresh windows: finite seconds, stale inside prefetch."""
    for name, value in (("prefetch_seconds", prefetch_seconds), ("stale_seconds", stale_seconds)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ConfigurationError(f"{name} must be a finite number of seconds.")
    assert isinstance(prefetch_seconds, (int, float))
    assert isinstance(stale_seconds, (int, float))
    if stale_seconds < 0:
        raise ConfigurationError(f"stale_seconds must be >= 0, got {stale_seconds}.")
    if stale_seconds > prefetch_seconds:
        raise ConfigurationError(
            f"stale_seconds ({stale_seconds}) must not exceed prefetch_seconds "
            f"({prefetch_seconds}): the prefetch window opens before the stale window."
        )


def validate_endpoint(endpoint_url: object) -> None:
    if endpoint_url is not None and not (
        isinstance(endpoint_url, str) and re.match(r"https?://", endpoint_url)
    ):
        raise ConfigurationError(
            f"endpoint_url must start with http:// or https://, got {quote(endpoint_url)}."
        )


def check_serial(mfa_serial: object) -> None:
    """An MFA device ARN or a hardware serial, whether given or read from a profile."""
    if not isinstance(mfa_serial, str) or not _SERIAL.fullmatch(mfa_serial):
        raise ConfigurationError(
            "mfa_serial must be an MFA device ARN (arn:aws:iam::123456789012:mfa/name) or a "
            "hardware serial: 9 to 256 characters of letters, digits and +=/:,.@_-; "
            f"got {quote(mfa_serial)}."
        )
    if mfa_serial.startswith("arn:") and not _MFA_ARN.fullmatch(mfa_serial):
        raise ConfigurationError(
            f"mfa_serial {quote(mfa_serial)} is an ARN but not of an MFA device: use the device's "
            "ARN, arn:aws:iam::<account>:mfa/<device name> (IAM console: Security "
            "credentials > Multi-factor authentication), not the user's or a role's ARN."
        )


#: AssumeRole's limits (AWS STS API reference).
ROLE_MIN_DURATION, ROLE_MAX_DURATION = 900, 43200
#: AWS caps a role assumed with temporary credentials ("role chaining") at one hour.
CHAINING_CAP = 3600
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")


def validate_role(
    role_arn: object, duration_seconds: object, session_name: object, external_id: object
) -> None:
    """AssumeRole's arguments, checked before any prompt or STS call."""
    if not isinstance(role_arn, str) or not _ROLE_ARN.fullmatch(role_arn):
        raise ConfigurationError(
            f"role_arn must be a role's ARN, arn:aws:iam::<12-digit account>:role/<name>; got "
            f"{quote(role_arn)}."
        )
    if isinstance(duration_seconds, bool) or not isinstance(duration_seconds, int):
        raise ConfigurationError(
            f"duration_seconds for {role_arn} must be an int, got {quote(duration_seconds)}."
        )
    if not ROLE_MIN_DURATION <= duration_seconds <= ROLE_MAX_DURATION:
        raise ConfigurationError(
            f"duration_seconds={duration_seconds} for {role_arn} is outside AssumeRole's range "
            f"{ROLE_MIN_DURATION}..{ROLE_MAX_DURATION} (15 min to 12 h)."
        )
    if not isinstance(session_name, str) or not _SESSION_NAME.fullmatch(session_name):
        raise ConfigurationError(
            f"role_session_name must be 2 to 64 characters of letters, digits and +=,.@_-; "
            f"got {quote(session_name)}."
        )
    if external_id is not None and (
        not isinstance(external_id, str) or not _EXTERNAL_ID.fullmatch(external_id)
    ):
        raise ConfigurationError(
            "external_id must be 2 to 1224 characters of letters, digits and +=,.@:/_-."
        )
