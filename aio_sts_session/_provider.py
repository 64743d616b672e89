"""``SessionTokenProvider``: the refresh engine fed by STS GetSessionToken with an MFA code."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Union

from . import _botoconfig
from ._cache import MemoryCache, TokenCache
from ._callbacks import command_callback
from ._clock import Clock, system_clock
from ._codes import CodeAsker
from ._config import DEFAULT_MFA_TIMEOUT, SessionSettings, check_serial, validate
from ._engine import Plan, ProviderStats
from ._log import logger
from ._models import AttachableSession, CachedToken, MfaCallback
from ._profiles import ProfileChain, read_chain, split_options
from ._role import AssumeRoleProvider, RoleHolder
from ._sts import (
    SourceKeys,
    call_get_caller_identity,
    call_get_session_token,
    serial_account,
)
from ._text import quote
from .exceptions import ConfigurationError, SourceCredentialsError
from .integrations import aiobotocore as _aiobotocore

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.config import Config

    from ._events import EventHandler

__all__ = ["ProviderStats", "SessionTokenProvider", "build", "from_profile"]

Provider = Union["SessionTokenProvider", AssumeRoleProvider]


#: Waiting for another process's refresh: longer than any MFA prompt it may be showing.
DEFAULT_PROMPT_BOUND = 300.0


class SessionTokenProvider(RoleHolder):
    """Temporary credentials from STS GetSessionToken, refreshed before they expire.

    Arguments (all keyword-only; see the configuration reference):

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
    - ``mfa_attempts`` (3), ``mfa_timeout`` (300): codes per refresh, seconds per code
      (``None``: wait for a person for ever).
    - ``max_wait`` (none): seconds a caller waits for a refresh in flight before it gets
      :class:`RefreshPendingError` (the refresh goes on); ``None``: as long as the refresh
      takes, which ``mfa_timeout`` bounds.
    - ``on_event``: a function (plain or async) receiving a :class:`ProviderEvent` for each
      step of a refresh.
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
        source_session: AttachableSession | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        cache: TokenCache | None = None,
        prefetch_seconds: float = 300,
        stale_seconds: float = 60,
        mfa_attempts: int = 3,
        mfa_timeout: float | None = DEFAULT_MFA_TIMEOUT,
        max_wait: float | None = None,
        on_event: EventHandler | None = None,
        sts_config: Config | None = None,
        clock: Clock | None = None,
    ) -> None:
        settings = SessionSettings(
            mfa_serial=mfa_serial,
            mfa_callback=mfa_callback,
            duration_seconds=duration_seconds,
            prefetch_seconds=prefetch_seconds,
            stale_seconds=stale_seconds,
            mfa_attempts=mfa_attempts,
            mfa_timeout=mfa_timeout,
            region_name=region_name,
            endpoint_url=endpoint_url,
            max_wait=max_wait,
            on_event=on_event,
        )
        self._setup(settings, source_session, cache, sts_config, clock)

    @classmethod
    def _from_settings(
        cls,
        settings: SessionSettings,
        *,
        source_session: Any | None = None,
        cache: TokenCache | None = None,
        sts_config: Any | None = None,
        clock: Clock | None = None,
    ) -> SessionTokenProvider:
        """A provider from settings read elsewhere (a profile: its region as a fallback for
        STS, its name for the prompts)."""
        provider = cls.__new__(cls)
        provider._setup(settings, source_session, cache, sts_config, clock)
        return provider

    def _setup(
        self,
        settings: SessionSettings,
        source_session: Any | None,
        cache: TokenCache | None,
        sts_config: Any | None,
        clock: Clock | None,
    ) -> None:
        validate(settings)
        if cache is not None and not isinstance(cache, TokenCache):
            raise ConfigurationError(
                "cache must implement TokenCache (load/store/delete/lock), e.g. "
                "EncryptedFileCache(directory, key=...)."
            )
        clock = clock or system_clock
        stats = ProviderStats()
        sources = _aiobotocore.SourceResolver(source_session)
        callback: MfaCallback | None = settings.mfa_callback  # type: ignore[assignment]
        source = _SessionTokenSource(
            serial=settings.mfa_serial,
            callback=callback,
            duration=settings.duration_seconds,
            attempts=settings.mfa_attempts,
            timeout=settings.mfa_timeout,
            sources=sources,
            sts=_aiobotocore.StsClientFactory(
                region_name=settings.region_name,
                endpoint_url=settings.endpoint_url,
                config=sts_config,
                session_for=sources.config_session,
                use_session_region=lambda: not sources.is_default,
                fallback_region=settings.fallback_region,
            ),
            clock=clock,
            stats=stats,
        )
        source.profile = settings.profile
        super().__init__(
            source,
            cache=cache if cache is not None else MemoryCache(),
            clock=clock,
            prefetch_seconds=settings.prefetch_seconds,
            stale_seconds=settings.stale_seconds,
            lock_timeout=(settings.mfa_timeout or DEFAULT_PROMPT_BOUND) * settings.mfa_attempts
            + 60.0,
            stats=stats,
            max_wait=settings.max_wait,
            on_event=settings.on_event,  # type: ignore[arg-type]
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
        return session_from_profile(name, mfa_callback=mfa_callback, cache=cache, **overrides)

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
        self._secrets: dict[str, SourceKeys] = {}  # secrets read from the keyring, by key id
        self._refused: dict[str, ConfigurationError] = {}  # keys of another account's device
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
            profile = await _botoconfig.read_config(session)
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
        reported before anyone types a code. Without MFA nothing is at stake: no extra call.
        A secret kept in the keyring is read here, once per provider and key."""
        if keys.load is not None:
            loaded = self._secrets.get(keys.access_key_id)
            if loaded is None:
                loaded = self._secrets[keys.access_key_id] = await keys.with_secret()
            keys = loaded
        if keys.access_key_id in self._refused:
            raise self._refused[keys.access_key_id]
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
                # A configuration that can never work: refused before anyone is asked, and
                # again at once (no STS call) until the configuration changes.
                refusal = ConfigurationError(
                    f"mfa_serial {self.serial} belongs to account {expected}, but the long-term "
                    f"key {keys.access_key_id} is of account {account}: use the MFA device of "
                    "the IAM user whose keys sign the request."
                )
                self._refused[keys.access_key_id] = refusal
                raise refusal
            self.identity_arn = arn or None
            self._verified_keys.add(keys.access_key_id)
        return client

    def unjudged(self, keys: SourceKeys) -> None:
        """STS did not answer: check it answers (no prompt) before the next code is asked."""
        self._verified_keys.discard(keys.access_key_id)

    async def _fetch(self, keys: SourceKeys, asker: CodeAsker | None) -> CachedToken:
        try:
            client = await self.client_for(keys)
            if asker is None:
                return await self._call(client, keys, None)
            return await asker.run(
                lambda code: self._call(client, keys, code),
                duration=self.duration,
                stats=self._stats,
                on_unjudged=lambda: self.unjudged(keys),
            )
        except SourceCredentialsError:
            self.sources.forget()  # refused: look for the keys again next time
            raise

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


# -- from profiles ------------------------------------------------------------------------------


def _session_provider(
    chain: ProfileChain,
    mfa_callback: MfaCallback | None,
    cache: TokenCache | None,
    options: dict[str, Any],
    default_callback: Callable[[str | None], MfaCallback] | None,
) -> SessionTokenProvider:
    serial = options.pop("mfa_serial", None) or chain.mfa_serial
    duration = options.pop("session_duration_seconds", None) or chain.session_duration or 43200
    if serial is not None and mfa_callback is None:
        if default_callback is not None:
            mfa_callback = default_callback(chain.mfa_process)
        elif chain.mfa_process:
            try:
                mfa_callback = command_callback(chain.mfa_process)
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"mfa_process in profile {quote(chain.name)}: {exc}"
                ) from None
        else:
            raise ConfigurationError(
                f"Profile {quote(chain.name)} uses mfa_serial {quote(serial)}, but no "
                "mfa_callback was given: pass mfa_callback= (e.g. "
                "aio_sts_session.terminal_prompt()), or set mfa_process in the profile."
            )
    if serial is None and mfa_callback is not None:
        raise ConfigurationError(
            f"mfa_callback was given, but profile {quote(chain.name)} (and its sources) name no "
            "mfa_serial: add mfa_serial = arn:aws:iam::<account>:mfa/<name> to the profile, "
            "or pass mfa_serial=."
        )
    source = None
    if chain.keys is not None:
        in_files = chain.keys if chain.key_source != "keyring" else None
        source = _botoconfig.profile_session(chain.session, chain.root, in_files)
    shared = {k: options.pop(k) for k in ("sts_config", "clock") if k in options}
    settings = SessionSettings(
        mfa_serial=serial,
        mfa_callback=mfa_callback,
        duration_seconds=duration,
        fallback_region=chain.region,
        profile=chain.name,
        **options,
    )
    return SessionTokenProvider._from_settings(
        settings, source_session=source, cache=cache, **shared
    )


def from_profile(
    name: str | None = None,
    *,
    mfa_callback: MfaCallback | None = None,
    cache: TokenCache | None = None,
    **overrides: Any,
) -> Provider:
    """The provider a ``~/.aws/config`` profile means: an :class:`AssumeRoleProvider` for a
    profile with ``role_arn`` (on an MFA session made from the root of its ``source_profile``
    chain), else a :class:`SessionTokenProvider`.

    ``name=None`` follows botocore (``AWS_PROFILE``, then ``default``). Reads ``mfa_serial``
    (on the profile or any of its sources), ``duration_seconds``, ``role_arn``,
    ``source_profile``, ``role_session_name``, ``external_id``, each role's
    ``session_tags = key=value, key2=value2``, ``transitive_session_tags = key`` and
    ``source_identity = name`` (aws-vault's names), ``region``, ``mfa_process``
    (a command printing the code, used when no ``mfa_callback`` is given) and the root's
    long-term keys; the STS client follows the root profile's settings (region,
    ``sts_regional_endpoints``, ``ca_bundle``, endpoint URLs), resolved by botocore.

    ``overrides``: ``region_name``, ``endpoint_url``, ``sts_config``, ``clock``,
    ``prefetch_seconds``, ``stale_seconds``; for the MFA session ``mfa_serial``,
    ``session_duration_seconds``, ``mfa_attempts``, ``mfa_timeout``; for the role
    ``duration_seconds``, ``role_session_name``, ``external_id``, ``tags``,
    ``transitive_tag_keys``, ``source_identity``, ``policy``, ``policy_arns``.

    Reads the two files synchronously (a few ms, once): in async code call it at start-up
    or through ``asyncio.to_thread``. Raises :class:`ConfigurationError` for any problem in the
    profile chain, before any prompt or STS call.
    """
    return build(read_chain(name), mfa_callback=mfa_callback, cache=cache, **overrides)


def build(
    chain: ProfileChain,
    *,
    mfa_callback: MfaCallback | None = None,
    cache: TokenCache | None = None,
    default_callback: Callable[[str | None], MfaCallback] | None = None,
    **overrides: Any,
) -> Provider:
    """The providers for a resolved chain. ``default_callback(mfa_process)`` picks the
    callback when none is given and the chain uses MFA (the command line's order)."""
    session_options, shared, role_options = split_options(dict(overrides), bool(chain.roles))
    session = _session_provider(chain, mfa_callback, cache, session_options, default_callback)
    if not chain.roles:
        return session
    provider: Provider = session
    for index, role in enumerate(chain.roles):
        options: dict[str, Any] = {
            "duration_seconds": role.duration_seconds,
            "role_session_name": role.role_session_name,
            "external_id": role.external_id,
            **role.session_options,
            **shared,
        }
        if index == len(chain.roles) - 1:
            options.update(role_options)
        try:
            provider = AssumeRoleProvider(
                role.role_arn, source=provider, _owns_source=True, **options
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"Profile {quote(role.profile)}: {exc}") from None
    return provider


def session_from_profile(
    name: str | None = None,
    *,
    mfa_callback: MfaCallback | None = None,
    cache: TokenCache | None = None,
    **overrides: Any,
) -> SessionTokenProvider:
    """:meth:`SessionTokenProvider.from_profile`: refuses a role profile."""
    chain = read_chain(name)
    if chain.roles:
        raise ConfigurationError(
            f"Profile {quote(chain.name)} assumes role {chain.roles[-1].role_arn}: use "
            "aio_sts_session.from_profile() for it (it returns an AssumeRoleProvider), or "
            f"SessionTokenProvider.from_profile({quote(chain.root)}) for its MFA session."
        )
    session_options, _, _ = split_options(dict(overrides), False)
    return _session_provider(chain, mfa_callback, cache, session_options, None)
