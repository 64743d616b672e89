"""aio-sts-session: asyncio credentials from STS GetSessionToken with an async MFA callback,
and roles assumed on that MFA session.

The public surface is what ``__all__`` lists; modules starting with ``_`` are private.
"""

from ._cache import EncryptedFileCache, MemoryCache, TokenCache
from ._callbacks import (
    CommandCallback,
    TerminalPrompt,
    TotpCallback,
    command_callback,
    terminal_prompt,
    totp_callback,
)
from ._engine import ProviderStats
from ._models import CachedToken, MfaCallback, MfaRequest, SessionCredentials
from ._policy import State
from ._profiles import from_profile
from ._provider import SessionTokenProvider
from ._role import AssumeRoleProvider
from ._version import __version__
from .exceptions import (
    CacheLockTimeoutError,
    ConfigurationError,
    MfaError,
    ProviderClosedError,
    ReentrantRefreshError,
    SourceCredentialsError,
    StsError,
    StsSessionError,
    StsUnavailableError,
)

__all__ = [
    "AssumeRoleProvider",
    "CacheLockTimeoutError",
    "CachedToken",
    "CommandCallback",
    "ConfigurationError",
    "EncryptedFileCache",
    "MemoryCache",
    "MfaCallback",
    "MfaError",
    "MfaRequest",
    "ProviderClosedError",
    "ProviderStats",
    "ReentrantRefreshError",
    "SessionCredentials",
    "SessionTokenProvider",
    "SourceCredentialsError",
    "State",
    "StsError",
    "StsSessionError",
    "StsUnavailableError",
    "TerminalPrompt",
    "TokenCache",
    "TotpCallback",
    "__version__",
    "command_callback",
    "from_profile",
    "terminal_prompt",
    "totp_callback",
]

# Tracebacks and reprs show the public name (aio_sts_session.MfaError), not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
