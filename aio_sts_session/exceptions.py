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
    ├── RefreshPendingError             a caller waited max_wait seconds for a refresh (one
    │                                   waiting for a person, say); the refresh goes on
    ├── ReentrantRefreshError           credentials asked for from inside their own refresh
    │                                   (e.g. by the MFA callback through the attached session)
    └── ProviderClosedError             the provider was used after close()

Every message says what to do next. No message ever contains a secret.

An error's ``what`` says what happened and its ``hint`` what to do about it in Python; the
message is both. ``topic`` (with ``facts``) names the situation for a front end that says what
to do in its own words: the command line prints ``what`` and its own advice (flags, profile
settings, environment variables) instead of ``hint``. One message, two audiences, no copy.
"""

from __future__ import annotations

__all__ = [
    "CacheLockTimeoutError",
    "ConfigurationError",
    "MfaError",
    "ProviderClosedError",
    "ReentrantRefreshError",
    "RefreshPendingError",
    "SourceCredentialsError",
    "StsError",
    "StsSessionError",
    "StsUnavailableError",
]


class StsSessionError(Exception):
    """Base class of every error raised by aio-sts-session.

    ``what``: what happened; ``hint``: what to do in Python; ``topic`` and ``facts``: the
    situation, for front ends that give advice of their own (see the module's docstring).
    """

    def __init__(
        self, what: str = "", *, hint: str = "", topic: str | None = None, **facts: str
    ) -> None:
        self.what = what
        self.hint = hint
        self.topic = topic
        self.facts = facts
        super().__init__(f"{what} {hint}" if hint else what)


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


class RefreshPendingError(StsSessionError):
    """A caller waited ``max_wait`` seconds for a refresh in flight (one waiting for an MFA
    code, say) and gave up: the refresh goes on, and a later call gets its result."""


class ReentrantRefreshError(StsSessionError):
    """Credentials were requested from inside their own refresh (the MFA callback, or something
    it awaits, used a client of the attached session): raised at once instead of waiting
    forever."""


class ProviderClosedError(StsSessionError):
    """The provider was used after ``close()``, or its refresh was cancelled (the provider was
    closed or its event loop ended) while a caller waited."""
