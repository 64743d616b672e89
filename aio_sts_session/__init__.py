"""aio-sts-session: asyncio credentials from STS GetSessionToken with an async MFA callback,
and roles assumed on that MFA session.

The public surface is what ``__all__`` lists; modules starting with ``_`` are private.
Names are loaded on first use (PEP 562): ``import aio_sts_session`` costs almost nothing, so
the command line decides what it needs before it imports botocore.
"""

from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs see: the names, eagerly
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
    from ._events import EventHandler, ProviderEvent
    from ._models import CachedToken, MfaCallback, MfaRequest, SessionCredentials
    from ._policy import State
    from ._provider import SessionTokenProvider, from_profile
    from ._role import AssumeRoleProvider
    from .exceptions import (
        CacheLockTimeoutError,
        ConfigurationError,
        MfaError,
        ProviderClosedError,
        ReentrantRefreshError,
        RefreshPendingError,
        SourceCredentialsError,
        StsError,
        StsSessionError,
        StsUnavailableError,
    )

#: Where each public name lives.
_HOMES = {
    "AssumeRoleProvider": "._role",
    "CacheLockTimeoutError": ".exceptions",
    "CachedToken": "._models",
    "CommandCallback": "._callbacks",
    "ConfigurationError": ".exceptions",
    "EncryptedFileCache": "._cache",
    "EventHandler": "._events",
    "MemoryCache": "._cache",
    "MfaCallback": "._models",
    "MfaError": ".exceptions",
    "MfaRequest": "._models",
    "ProviderClosedError": ".exceptions",
    "ProviderEvent": "._events",
    "ProviderStats": "._engine",
    "ReentrantRefreshError": ".exceptions",
    "RefreshPendingError": ".exceptions",
    "SessionCredentials": "._models",
    "SessionTokenProvider": "._provider",
    "SourceCredentialsError": ".exceptions",
    "State": "._policy",
    "StsError": ".exceptions",
    "StsSessionError": ".exceptions",
    "StsUnavailableError": ".exceptions",
    "TerminalPrompt": "._callbacks",
    "TokenCache": "._cache",
    "TotpCallback": "._callbacks",
    "command_callback": "._callbacks",
    "from_profile": "._provider",
    "terminal_prompt": "._callbacks",
    "totp_callback": "._callbacks",
}

__all__ = [
    "AssumeRoleProvider",
    "CacheLockTimeoutError",
    "CachedToken",
    "CommandCallback",
    "ConfigurationError",
    "EncryptedFileCache",
    "EventHandler",
    "MemoryCache",
    "MfaCallback",
    "MfaError",
    "MfaRequest",
    "ProviderClosedError",
    "ProviderEvent",
    "ProviderStats",
    "ReentrantRefreshError",
    "RefreshPendingError",
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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(home, __name__)
    for public, where in _HOMES.items():  # every public name of that module, at once
        if where == home:
            value = getattr(module, public)
            # (A typing alias such as EventHandler is no class, though 3.10 says it is.)
            if isinstance(value, type) and not isinstance(value, types.GenericAlias):
                # Tracebacks and reprs show the public name (aio_sts_session.MfaError).
                value.__module__ = __name__
            globals()[public] = value
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
