"""Value types: the credentials handed out, the MFA request, the callback protocol."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Awaitable
from typing import Any, Protocol, Union

__all__ = [
    "AttachableSession",
    "CachedToken",
    "MfaCallback",
    "MfaRequest",
    "SessionCredentials",
]


@dataclasses.dataclass(frozen=True, repr=False)
class SessionCredentials:
    """Temporary credentials from GetSessionToken.

    ``expiration`` is an aware UTC datetime, as STS stated it. ``repr`` and ``str`` never show
    the secret key or the session token.

    Example:
        >>> import datetime as dt
        >>> creds = SessionCredentials(
        ...     access_key_id="ASIAEXAMPLE",
        ...     secret_access_key="wJalr-never-shown",
        ...     session_token="FwoG-never-shown",
        ...     expiration=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc),
        ... )
        >>> "never-shown" in repr(creds)
        False
        >>> creds.expiration.isoformat()
        '2030-01-01T00:00:00+00:00'
    """

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: _dt.datetime

    def __post_init__(self) -> None:
        if self.expiration.tzinfo is None:
            raise ValueError("SessionCredentials.expiration must be timezone-aware")
        if self.expiration.utcoffset() != _dt.timedelta(0):
            object.__setattr__(self, "expiration", self.expiration.astimezone(_dt.timezone.utc))

    def __repr__(self) -> str:
        return (
            f"SessionCredentials(access_key_id={self.access_key_id!r}, "
            f"secret_access_key='***', session_token='***', "
            f"expiration={self.expiration.isoformat()!r})"
        )

    __str__ = __repr__


@dataclasses.dataclass(frozen=True)
class MfaRequest:
    """What the MFA callback is asked for.

    ``attempt`` is 1-based and counts codes asked for within one refresh; ``max_attempts``
    is the provider's ``mfa_attempts``. ``reason`` is ``"initial"`` for the first code of a
    refresh, ``"rejected"`` after STS refused the previous code and ``"malformed"`` after the
    previous answer was not six digits. ``role_arn`` is set when the code goes with an
    AssumeRole call (a role longer than the 1-hour chaining cap), ``None`` for the MFA session.
    ``profile`` is the profile the code is for, when the provider was made from one
    (``from_profile``, the command line), else ``None``.

    Example: a callback that says what the code is for.
        >>> def ask(request: MfaRequest) -> str:
        ...     where = f"profile {request.profile}" if request.profile else request.serial_number
        ...     return input(f"MFA code for {where} (try {request.attempt}): ")
        >>> MfaRequest("arn:aws:iam::123456789012:mfa/alice", 1, 3, 3600, profile="admin").profile
        'admin'
    """

    serial_number: str
    attempt: int
    max_attempts: int
    duration_seconds: int
    reason: str = "initial"
    role_arn: str | None = None
    profile: str | None = None


class MfaCallback(Protocol):
    """``async def ask(request) -> str`` or a plain ``def ask(request) -> str``.

    A plain function is run in a worker thread, so it may block (``input()``, a GUI dialog).
    """

    def __call__(self, request: MfaRequest, /) -> Union[str, Awaitable[str]]: ...  # noqa: UP007


class AttachableSession(Protocol):
    """What ``attach()`` and ``source_session=`` take: an aiobotocore ``AioSession`` or an
    ``aioboto3.Session`` (a botocore ``Session`` too, as a ``source_session``: its keys and
    configuration only). A structural type, so it needs neither package to type-check."""

    def get_credentials(self) -> Any: ...

    def get_available_services(self) -> Any: ...


@dataclasses.dataclass(frozen=True, repr=False)
class CachedToken:
    """Credentials as a cache stores them: with their expiry in this machine's clock.

    ``expires_at`` is wall-clock seconds since the epoch, corrected for the difference between
    STS's clock and ours (``skew``, STS minus local); ``lifetime`` is what STS granted, in
    seconds. ``repr`` never shows secrets.
    """

    credentials: SessionCredentials
    expires_at: float
    lifetime: float
    skew: float = 0.0

    def __repr__(self) -> str:
        return (
            f"CachedToken({self.credentials!r}, expires_at={self.expires_at:.0f}, "
            f"lifetime={self.lifetime:.0f}, skew={self.skew:.0f})"
        )
