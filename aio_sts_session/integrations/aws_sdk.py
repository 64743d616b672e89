"""The new AWS SDK for Python (smithy-python: ``aws-sdk-dynamodb``, ``aws-sdk-bedrock-runtime``,
…): an identity resolver backed by any provider of this library, and an opt-in link in the
SDK's default credential chain.

The SDK asks its identity resolver before every attempt of every call and caches nothing; its
signer refuses an identity past ``expiration`` by the machine's clock, with no margin. So
:class:`IdentityResolver` answers from the provider's fast path (the same identity object while
the credentials are unchanged), and hands out the expiry in this machine's clock (corrected for
STS's skew, which the provider measured): the provider renews before it, in its prefetch
window, and never hands out credentials the signer would refuse.

Errors of this library reach the caller as themselves (their class, which the SDK also takes for
its own ``SmithyError``, so that it does not wrap them), never as the SDK's
``SmithyIdentityError``: a chain that saw one would fall through to the next source, the
profile's long-term keys, without MFA.

The only module importing the SDK (smithy); it needs Python 3.12+.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from smithy_aws_core.identity import AWSCredentialsIdentity
from smithy_core.exceptions import SmithyError

from .._models import SessionCredentials
from .._sts import serial_account
from ..exceptions import StsSessionError

if TYPE_CHECKING:
    from .._engine import RefreshEngine

__all__ = ["IdentityResolver", "as_sdk_error", "resolver_for"]


class IdentityResolver:
    """An ``IdentityResolver`` for ``AWSCredentialsIdentity`` backed by ``provider``
    (a :class:`~aio_sts_session.SessionTokenProvider`, an
    :class:`~aio_sts_session.AssumeRoleProvider`, what
    :func:`~aio_sts_session.from_profile` gives)::

        resolver = IdentityResolver(provider)
        config = await AsyncDynamoDBConfig.resolve(
            region="eu-west-1", aws_credentials_identity_resolver=resolver
        )
        async with AsyncDynamoDBClient(config=config) as dynamodb: ...

    ``get_identity`` costs about what ``await provider.credentials()`` costs, and returns the
    same object while the credentials are unchanged. ``invalidate()`` (after an
    ``ExpiredToken`` answer) makes the next ``get_identity`` a forced refresh that reuses newer
    credentials if another caller already got them (``refresh(rejected=…)``): several callers
    that saw the same refusal cause one refresh and one prompt.

    Do not wrap it in the SDK's caching resolvers: they hold an identity until it expires and
    skip the early refresh. The provider is yours to close (``async with provider:``); the
    resolver holds nothing else.
    """

    def __init__(self, provider: RefreshEngine) -> None:
        self.provider = provider
        self._credentials: SessionCredentials | None = None
        self._identity: AWSCredentialsIdentity | None = None
        self._rejected: SessionCredentials | None = None
        self._account_id = _account_of(provider)

    def __repr__(self) -> str:
        return f"IdentityResolver({self.provider!r})"

    async def get_identity(self, *, properties: Mapping[str, Any]) -> AWSCredentialsIdentity:
        # The fast path (before every attempt of every call): the provider's fresh credentials
        # are still the ones the identity in hand was made of, and nobody saw them refused.
        identity = self._identity
        fresh = self.provider.peek()
        if fresh is self._credentials and identity is not None and self._rejected is None:
            return identity
        try:
            return await self._get_identity()
        except StsSessionError as exc:
            raise as_sdk_error(exc) from exc.__cause__

    async def _get_identity(self) -> AWSCredentialsIdentity:
        rejected = self._rejected
        if rejected is not None:
            creds = await self.provider.refresh(rejected=rejected)
            if self._rejected is rejected:
                self._rejected = None
        else:
            creds = self.provider.peek() or await self.provider.credentials()
        identity = self._identity
        if creds is not self._credentials or identity is None:
            identity = self._identity = self._make(creds)
            self._credentials = creds
        return identity

    async def invalidate(self) -> None:
        """The credentials in hand were refused (``ExpiredToken``): renew at the next call."""
        current = self._credentials or self.provider.peek()
        if current is not None:
            self._rejected = current

    def _make(self, creds: SessionCredentials) -> AWSCredentialsIdentity:
        token = self.provider.token()
        expiration = creds.expiration
        if token is not None and token.credentials is creds:
            # In this machine's clock, as the signer judges it.
            expiration = _dt.datetime.fromtimestamp(token.expires_at, _dt.timezone.utc)
        return AWSCredentialsIdentity(
            access_key_id=creds.access_key_id,
            secret_access_key=creds.secret_access_key,
            session_token=creds.session_token,
            expiration=expiration,
            account_id=self._account_id,
        )


_SDK_CLASSES: dict[type[StsSessionError], type[StsSessionError]] = {}


def as_sdk_error(exc: StsSessionError) -> StsSessionError:
    """``exc`` as an instance of its own class that the SDK also takes for its own
    (``SmithyError``, never ``SmithyIdentityError``): the SDK then neither wraps it in a
    ``SmithyError`` nor lets a credential chain fall through to the next source. ``except
    MfaError`` (and every other class of this library) catches it as before."""
    cls = type(exc)
    combined = _SDK_CLASSES.get(cls)
    if combined is None:
        combined = type(cls.__name__, (cls, SmithyError), {})
        combined.__module__, combined.__qualname__ = cls.__module__, cls.__qualname__
        combined.__doc__ = cls.__doc__
        _SDK_CLASSES[cls] = combined
    again = combined.__new__(combined)
    again.__dict__.update(exc.__dict__)
    again.args = exc.args
    again.__traceback__ = exc.__traceback__
    return again


def _account_of(provider: Any) -> str | None:
    """The account the credentials are of, where it is known without a call: a role's ARN,
    else the MFA device's ARN (a hardware serial says nothing)."""
    role_arn = getattr(provider, "role_arn", None)
    if isinstance(role_arn, str) and role_arn.count(":") >= 5:
        return role_arn.split(":")[4] or None
    root = getattr(provider, "_root_source", None)
    serial = getattr(root, "serial", None)
    return serial_account(serial) if isinstance(serial, str) else None


# -- the SDK's default chain (the link is in .aws_sdk_chain) -----------------------------------

_PROVIDERS: dict[tuple[str, str], IdentityResolver] = {}
_LOCK = threading.Lock()


def resolver_for(profile: str) -> IdentityResolver:
    """The process's one resolver (and provider) for ``profile``: what the default chain's
    link (:mod:`.aws_sdk_chain`) adds for a profile that opted in."""
    files = (
        os.environ.get("AWS_CONFIG_FILE", ""),
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE", ""),
    )
    key = (profile, "\0".join(files))
    with _LOCK:
        resolver = _PROVIDERS.get(key)
        if resolver is None:
            resolver = _PROVIDERS[key] = IdentityResolver(_provider_for(profile))
        return resolver


def _provider_for(profile: str) -> RefreshEngine:
    from .._cache import EncryptedFileCache
    from .._cachekey import cache_directory, resolve_cache_key
    from .._callbacks import CommandCallback, TerminalPrompt
    from .._models import MfaCallback
    from .._profiles import read_chain
    from .._provider import build

    def ask(mfa_process: str | None) -> MfaCallback:
        return CommandCallback(mfa_process) if mfa_process else TerminalPrompt()

    # The key (keyring or key file) is read at first use, in a worker thread.
    cache = EncryptedFileCache.with_key_from(cache_directory(), lambda: resolve_cache_key().key)
    return build(read_chain(profile), cache=cache, default_callback=ask)
