"""``SessionTokenProvider``: the refresh engine fed by STS GetSessionToken with an MFA code."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Union

from . import _aiobotocore
from ._cache import MemoryCache, TokenCache
from ._clock import Clock, system_clock
from ._codes import CodeAsker
from ._config import check_serial, validate
from ._engine import Plan, ProviderStats, RefreshEngine
from ._models import CachedToken, MfaCallback
from ._sts import (
    SourceKeys,
    call_get_caller_identity,
    call_get_session_token,
    serial_account,
)
from .exceptions import ConfigurationError, MfaError

if TYPE_CHECKING:
    import aioboto3
    from aiobotocore.session import AioSession

    from ._role import AssumeRoleProvider

    SourceSession = Union[AioSession, aioboto3.Session]  # noqa: UP007

__all__ = ["ProviderStats", "SessionTokenProvider"]

logger = logging.getLogger("aio_sts_session")

#: Waiting for another process's refresh: longer than any MFA prompt it may be showing.
DEFAULT_PROMPT_BOUND = 300.0


class SessionTokenProvider(RefreshEngine):
    """Temporary credentials from STS GetSessionToken, refreshed before they expire.

    Arguments (all keyword-only; see the README's configuration table):

    - ``mfa_serial``: the MFA device's ARN (``arn:aws:iam::ACCOUNT:mfa/NAME``) or a hardware
      serial. ``None``: the ``mfa_serial`` of the source (or attached) session's profile if it
      names one (then ``mfa_callback`` is required), else GetSessionToken without MFA.
    - ``mfa_callback``: ``async def ask(request: MfaRequest) -> str`` (or a plain function, run
      in a daemon thread); required with ``mfa_serial``.
    - ``duration_seconds``: 900..129600 (default 12 h); STS may grant less and the provider
      follows.
    - ``source_session``: the session whose credentials are the long-term keys; default: the
      attached session's own chain, else the default chain.
    - ``region_name``, ``endpoint_url``: the STS endpoint; by default what the source session's
      profile configures, resolved by botocore (``AWS_ENDPOINT_URL_STS``, ``services``
      sections, ``sts_regional_endpoints``, ``ca_bundle``, proxies).
    - ``cache``: a :class:`TokenCache`, e.g. :class:`EncryptedFileCache`; default memory.
    - ``prefetch_seconds`` (300), ``stale_seconds`` (60): the refresh windows.
    - ``mfa_attempts`` (3), ``mfa_timeout`` (none): codes per refresh, seconds per code.
    - ``sts_config``: a botocore ``Config`` merged over ours; ``clock``: wall-clock seconds.

    Construction validates every argument (:class:`ConfigurationError`) and does no I/O.
    :meth:`from_profile` builds one from ``~/.aws/config``; :meth:`assume_role` gives roles
    assumed on this MFA session.
    """

    def __init__(
        self,
        *,
        mfa_serial: str | None = None,
        mfa_callback: MfaCallback | None = None,
        duration_seconds: int = 43200,
        source_session: SourceSession | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        cache: TokenCache | None = None,
        prefetch_seconds: float = 300,
        stale_seconds: float = 60,
        mfa_attempts: int = 3,
        mfa_timeout: float | None = None,
        sts_config: Any | None = None,
        clock: Clock | None = None,
        _fallback_region: str | None = None,
    ) -> None:
        validate(
            mfa_serial,
            mfa_callback,
            duration_seconds,
            prefetch_seconds,
            stale_seconds,
            mfa_attempts,
            mfa_timeout,
            endpoint_url,
        )
        if cache is not None and not isinstance(cache, TokenCache):
            raise ConfigurationError(
                "cache must implement TokenCache (load/store/delete/lock), e.g. "
                "EncryptedFileCache(directory, key=...)."
            )
        clock = clock or system_clock
        stats = ProviderStats()
        sources = _aiobotocore.SourceResolver(source_session)
        source = _SessionTokenSource(
            serial=mfa_serial,
            callback=mfa_callback,
            duration=duration_seconds,
            attempts=mfa_attempts,
            timeout=mfa_timeout,
            sources=sources,
            sts=_aiobotocore.StsClientFactory(
                region_name=region_name,
                endpoint_url=endpoint_url,
                config=sts_config,
                session_for=sources.config_session,
                use_session_region=lambda: not sources.is_default,
                fallback_region=_fallback_region,
            ),
            clock=clock,
            stats=stats,
        )
        super().__init__(
            source,
            cache=cache if cache is not None else MemoryCache(),
            clock=clock,
            prefetch_seconds=prefetch_seconds,
            stale_seconds=stale_seconds,
            lock_timeout=(mfa_timeout or DEFAULT_PROMPT_BOUND) * mfa_attempts + 60.0,
            stats=stats,
        )
        self._sts = source.sts
        self._root_source = source

    @classmethod
    def from_profile(
        cls,
        name: str | None = None,
        *,
        mfa_callback: MfaCallback | None = None,
        cache: TokenCache | None = None,
        **overrides: Any,
    ) -> SessionTokenProvider:
        """The MFA session a ``~/.aws/config`` profile without ``role_arn`` means: its
        long-term keys, ``mfa_serial``, ``region``, STS endpoint settings (see
        :func:`aio_sts_session.from_profile`). A role profile is refused: use
        :func:`aio_sts_session.from_profile` for it."""
        from ._profiles import session_from_profile

        return session_from_profile(name, mfa_callback=mfa_callback, cache=cache, **overrides)

    def assume_role(
        self,
        role_arn: str,
        *,
        duration_seconds: int = 3600,
        role_session_name: str | None = None,
        external_id: str | None = None,
        **options: Any,
    ) -> AssumeRoleProvider:
        """An :class:`AssumeRoleProvider` for ``role_arn`` on this provider's credentials: every
        role on one MFA session shares its one prompt. ``duration_seconds`` above 3600 (AWS's
        cap for role chaining) assumes the role with the long-term keys and an MFA code instead
        (one prompt per role refresh); on a role provider (a chain of roles) it is refused.
        Region, endpoint, cache and clock are this provider's unless given in ``options``
        (``region_name``, ``endpoint_url``, ``cache``, ``prefetch_seconds``,
        ``stale_seconds``, ``sts_config``). The same method serves both providers."""
        from ._role import AssumeRoleProvider

        return AssumeRoleProvider(
            role_arn,
            source=self,
            duration_seconds=duration_seconds,
            role_session_name=role_session_name,
            external_id=external_id,
            **options,
        )

    async def prepare(self) -> None:
        """Check what can be checked without a prompt, and warm up: find the long-term keys,
        have STS confirm them (GetCallerIdentity, which needs no permission) when an MFA code
        will be at stake, and create the STS client. Optional; call it at start-up to fail fast
        (:class:`SourceCredentialsError`) and to take this work off the first request."""
        await super().prepare()


class _SessionTokenSource:
    """GetSessionToken with an MFA code: what a :class:`SessionTokenProvider` refreshes from.

    Also the root of every role assumed on it: roles chained on the session take its
    credentials, roles assumed directly take its long-term keys, STS client and codes."""

    def __init__(
        self,
        *,
        serial: str | None,
        callback: MfaCallback | None,
        duration: int,
        attempts: int,
        timeout: float | None,
        sources: _aiobotocore.SourceResolver,
        sts: _aiobotocore.StsClientFactory,
        clock: Clock,
        stats: ProviderStats,
    ) -> None:
        self.serial = serial
        self._callback = callback
        self.duration = duration
        self._attempts = attempts
        self._timeout = timeout
        self.sources = sources
        self.sts = sts
        self.clock = clock
        self._stats = stats
        self._asker: CodeAsker | None = None
        self.profile: str | None = None  # the profile the provider was made from, if any
        self._mfa_settled_for: object = None  # the config session the MFA choice was made for
        self.identity_arn: str | None = None  # the IAM user, once STS confirmed the keys
        self._verified_keys: set[str] = set()
        self._verify_lock: tuple[asyncio.Lock, asyncio.AbstractEventLoop] | None = None

    def describe(self) -> str:
        return f"mfa_serial={self.serial!r}, duration_seconds={self.duration}"

    def use_attached(self, session: Any) -> None:
        self.sources.use_attached(session)

    async def close(self) -> None:
        await self.sts.close()

    async def prepare(self) -> None:
        await self.mfa()
        await self.client_for(await self.sources.resolve())

    async def plan(self) -> Plan:
        asker = await self.mfa()
        keys = await self.sources.resolve()
        region, endpoint = await self.sts.target()  # no client: a warm cache needs none
        return Plan(
            cache_key=self._cache_key(keys, region, endpoint),
            fetch=lambda: self._fetch(keys, asker),
        )

    async def mfa(self) -> CodeAsker | None:
        """Who asks for codes, or ``None`` without MFA. With no ``mfa_serial`` given, the
        source session's profile may name one: then it is used (a callback is required), so a
        profile that demands MFA never gets a session without it."""
        await self.sources.ready()
        session = self.sources.config_session()
        if self._mfa_settled_for is session:
            return self._asker
        serial, where = self.serial, "mfa_serial="
        if serial is None:
            profile = await _aiobotocore.read_config(session)
            serial = profile.get("mfa_serial") or None
            where = f"the profile {session.profile or 'default'!r}"
        if serial is not None and self._callback is None:
            raise ConfigurationError(
                f"{where} names mfa_serial {serial}, but no mfa_callback was given: pass "
                "mfa_callback=<async function returning the code> (or use from_profile with "
                "mfa_callback), so the session is made with MFA as the profile demands."
            )
        if serial is None and self._callback is not None:
            raise ConfigurationError(
                "mfa_callback is set but there is no mfa_serial (neither given nor in the "
                "source session's profile): pass mfa_serial=arn:aws:iam::<account>:mfa/<name>."
            )
        if serial is not None and serial != self.serial:
            check_serial(serial)
            logger.info("Using mfa_serial %s from %s.", serial, where)
        self.serial = serial
        self._asker = None
        if serial is not None and self._callback is not None:
            self._asker = CodeAsker(
                serial=serial,
                callback=self._callback,
                attempts=self._attempts,
                timeout=self._timeout,
                clock=self.clock,
                profile=self.profile,
            )
        self._mfa_settled_for = session
        return self._asker

    def identity(self, keys: SourceKeys) -> str:
        """Who signs, for error messages: the IAM user's ARN once STS confirmed it."""
        return self.identity_arn or f"the IAM user of access key {keys.access_key_id}"

    def _cache_key(self, keys: SourceKeys, region: str, endpoint: str | None) -> str:
        """The entry: who, which device, how long, and which STS (the region, and an endpoint
        URL only when one is configured: AWS's own endpoints of a region are one service)."""
        return "|".join(
            (
                "v1",
                keys.access_key_id,
                self.serial or "-",
                str(self.duration),
                region,
                endpoint or "-",
            )
        )

    async def client_for(self, keys: SourceKeys) -> Any:
        """The STS client, after STS confirmed the long-term keys (once per key) when an MFA
        code is at stake: a bad key, an mfa_serial of another account or an STS outage is
        reported before anyone types a code. Without MFA nothing is at stake: no extra call."""
        client = await self.sts.get(keys)
        if self.serial is None or keys.access_key_id in self._verified_keys:
            return client
        loop = asyncio.get_running_loop()
        if self._verify_lock is None or self._verify_lock[1] is not loop:
            self._verify_lock = (asyncio.Lock(), loop)
        async with self._verify_lock[0]:  # prepare() and a first refresh: one check
            if keys.access_key_id in self._verified_keys:
                return client
            account, arn = await call_get_caller_identity(client, key_id=keys.access_key_id)
            expected = serial_account(self.serial)
            if expected and account and expected != account:
                raise MfaError(
                    f"mfa_serial {self.serial} belongs to account {expected}, but the long-term "
                    f"key {keys.access_key_id} is of account {account}: use the MFA device of "
                    "the IAM user whose keys sign the request."
                )
            self.identity_arn = arn or None
            self._verified_keys.add(keys.access_key_id)
        return client

    def unjudged(self, keys: SourceKeys) -> None:
        """STS did not answer: check it answers (no prompt) before the next code is asked."""
        self._verified_keys.discard(keys.access_key_id)

    async def _fetch(self, keys: SourceKeys, asker: CodeAsker | None) -> CachedToken:
        client = await self.client_for(keys)
        if asker is None:
            return await self._call(client, keys, None)
        return await asker.run(
            lambda code: self._call(client, keys, code),
            duration=self.duration,
            stats=self._stats,
            on_unjudged=lambda: self.unjudged(keys),
        )

    async def _call(self, client: Any, keys: SourceKeys, code: str | None) -> CachedToken:
        self._stats.sts_calls += 1
        token = await call_get_session_token(
            client,
            duration_seconds=self.duration,
            serial=self.serial if code is not None else None,
            code=code,
            key_id=keys.access_key_id,
            clock=self.clock,
        )
        self._stats.refreshes += 1
        return token
