"""Every exception aio-sts-session raises.

The hierarchy::

    StsSessionError                     base of everything raised here
    ├── ConfigurationError (ValueError) bad constructor argument; raised before any prompt
    ├── SourceCredentialsError          long-term keys missing, temporary, or refused by STS
    ├── MfaError                        callback raised / timed out / gave malformed codes,
    │                                   or STS rejected every code
    ├── StsError                        GetSessionToken failed (botocore error as __cause__)
    │   └── StsUnavailableError         throttling, 5xx or network after botocore's retries
    ├── CacheLockTimeoutError           another process held the cache lock too long
    └── ProviderClosedError             the provider was used after close()

Every message says what to do next. No message ever contains a secret.
"""

from __future__ import annotations

__all__ = [
    "CacheLockTimeoutError",
    "ConfigurationError",
    "MfaError",
    "ProviderClosedError",
    "SourceCredentialsError",
    "StsError",
    "StsSessionError",
    "StsUnavailableError",
]


class StsSessionError(Exception):
    """Base class of every error raised by aio-sts-session."""


class ConfigurationError(StsSessionError, ValueError):
    """An argument is invalid. Raised by constructors, before any MFA prompt."""


class SourceCredentialsError(StsSessionError):
    """The long-term IAM user keys that sign GetSessionToken are missing or unusable."""


class MfaError(StsSessionError):
    """The MFA step failed: the callback raised, timed out or returned malformed codes,
    or STS rejected every code offered."""


class StsError(StsSessionError):
    """The GetSessionToken call failed; the botocore exception is the ``__cause__``."""


class StsUnavailableError(StsError):
    """STS stayed unreachable, throttled or failing after botocore's retries.

    The provider recovers by itself once STS answers again.
    """


class CacheLockTimeoutError(StsSessionError):
    """Waited too long for another process holding the credential cache lock."""


class ProviderClosedError(StsSessionError):
    """The provider was used after :meth:`SessionTokenProvider.close`."""
