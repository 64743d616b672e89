"""aio-sts-session: asyncio credentials from STS GetSessionToken with an async MFA callback.

The public surface is what ``__all__`` lists; modules starting with ``_`` are private.
"""

from ._cache import CacheWarning, EncryptedFileCache, MemoryCache, TokenCache
from ._models import CachedToken, MfaCallback, MfaRequest, SessionCredentials
from ._policy import State
from ._provider import ProviderStats, SessionTokenProvider
from ._version import __version__
from .exceptions import (
    CacheLockTimeoutError,
    ConfigurationError,
    MfaError,
    ProviderClosedError,
    SourceCredentialsError,
    StsError,
    StsSessionError,
    StsUnavailableError,
)

__all__ = [
    "CacheLockTimeoutError",
    "CacheWarning",
    "CachedToken",
    "ConfigurationError",
    "EncryptedFileCache",
    "MemoryCache",
    "MfaCallback",
    "MfaError",
    "MfaRequest",
    "ProviderClosedError",
    "ProviderStats",
    "SessionCredentials",
    "SessionTokenProvider",
    "SourceCredentialsError",
    "State",
    "StsError",
    "StsSessionError",
    "StsUnavailableError",
    "TokenCache",
    "__version__",
]
