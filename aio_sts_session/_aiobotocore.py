"""Everything that touches aiobotocore: the STS client, source credentials, and ``attach``.

This is the only module importing aiobotocore, so a change in its internals is fixed here.
What we rely on (checked on aiobotocore 2.25 and 3.x):

- ``AioSession.get_credentials()`` returns ``session._credentials`` once it is set, and
  clients take their credentials from it when created;
- the signer awaits ``credentials.get_frozen_credentials()`` for every request and retry;
- client creation reads ``credentials.method``, ``credentials.get_deferred_property`` and
  ``credentials.get_account_id``.

We do not inherit ``AioRefreshableCredentials`` (its windows, lock and retry-per-waiter
behaviour are what this library exists to avoid): ``ProviderCredentials`` is a small object
with those four members, answering from the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.config import Config
from botocore.credentials import CredentialProvider, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ProfileNotFound

from ._models import SessionCredentials
from ._sts import SourceKeys, check_source_keys
from .exceptions import ConfigurationError

__all__ = [
    "METHOD",
    "ProviderCredentials",
    "SourceResolver",
    "StsClientFactory",
    "attach",
    "default_region",
    "profile_session",
    "read_config",
    "read_profiles",
]

METHOD = "custom-sts-session"

#: Settings for the one STS client: botocore's standard retry mode (backoff with jitter;
#: retries throttling, 5xx and connection errors by resending the same request, so the same
#: code), timeouts that bound a persistent outage to well under a minute, and no keep-alive:
#: STS is called once per refresh, hours apart, so an idle pooled connection would only hold a
#: socket (bound to one event loop) between refreshes.
DEFAULT_STS_CONFIG = AioConfig(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=5,
    read_timeout=10,
    connector_args={"force_close": True, "keepalive_timeout": None},
)


class _Provider(Protocol):
    def peek(self) -> SessionCredentials | None: ...

    async def credentials(self) -> SessionCredentials: ...


def default_region(session: AioSession, *, session_first: bool, fallback: str | None = None) -> str:
    """The STS region when none is given. ``session_first`` (a source or attached session):
    that session's region, then ``fallback`` (the named profile's, for a role profile), then
    ``AWS_REGION``; otherwise ``AWS_REGION`` first, then the default session's
    (``AWS_DEFAULT_REGION`` or the default profile's); us-east-1 last. Call it after
    :func:`read_config` so botocore has the files in memory."""
    region = session.get_config_variable("region") if session_first else None
    region = region or fallback or os.environ.get("AWS_REGION")
    if not region and not session_first:
        region = session.get_config_variable("region")
    return region or "us-east-1"


async def read_config(session: AioSession) -> dict[str, Any]:
    """The session's profile settings, read (with botocore's loader, both files, once per
    session) in a worker thread so the event loop never waits on the disk."""

    def scoped() -> dict[str, Any]:
        try:
            return dict(session.get_scoped_config())
        except ProfileNotFound as exc:
            raise ConfigurationError(
                f"The session's profile {session.profile!r} is not in the AWS config files "
                f"({exc}): fix AWS_PROFILE or the profile name."
            ) from None

    return await asyncio.to_thread(scoped)


def read_profiles(name: str | None) -> tuple[str, bool, dict[str, dict[str, Any]], str]:
    """Both AWS config files, read by botocore's loader: ``(profile name, named explicitly,
    profiles, where they were read)``. ``name=None`` follows botocore (``AWS_PROFILE``,
    ``AWS_DEFAULT_PROFILE``, then ``default``). Synchronous: reads the disk."""
    reading = AioSession()
    chosen = name or reading.get_config_variable("profile")
    where = (
        f"{reading.get_config_variable('config_file')} and "
        f"{reading.get_config_variable('credentials_file')}"
    )
    try:
        profiles = dict(reading.full_config.get("profiles", {}))
    except BotoCoreError as exc:
        raise ConfigurationError(f"The AWS config files ({where}) cannot be read: {exc}") from None
    return chosen or "default", chosen is not None, profiles, where


def profile_session(profile: str, keys: dict[str, str | None]) -> AioSession:
    """A session for ``profile`` (botocore reads its settings when the STS client is made)
    holding the long-term keys read from it."""
    session = AioSession(profile=profile)
    session.set_credentials(
        keys["aws_access_key_id"], keys["aws_secret_access_key"], keys.get("aws_session_token")
    )
    return session


def _botocore_session(session: Any) -> AioSession:
    """An ``AioSession`` itself, or the one inside an ``aioboto3.Session``."""
    inner = getattr(session, "_session", session)
    if not isinstance(inner, AioSession):
        raise ConfigurationError(
            f"Expected an aiobotocore AioSession or an aioboto3 Session, got "
            f"{type(session).__name__}. For botocore (sync) sessions this library does not apply."
        )
    return inner


async def _frozen_keys(creds: Any, method: str) -> SourceKeys | None:
    if creds is None:
        return None
    frozen = await creds.get_frozen_credentials()
    return SourceKeys(
        access_key_id=frozen.access_key or "",
        secret_access_key=frozen.secret_key or "",
        session_token=frozen.token,
        method=getattr(creds, "method", None) or method,
    )


class SourceResolver:
    """Finds the long-term keys that sign GetSessionToken (design notes, section 2):
    ``source_session`` if given; else, once attached, the attached session's explicit keys or
    the providers after ours in its chain; else a fresh ``AioSession()``'s default chain."""

    def __init__(self, source_session: Any | None) -> None:
        self._explicit = _botocore_session(source_session) if source_session is not None else None
        self._attached: AioSession | None = None
        self._default: AioSession | None = None

    def use_attached(self, session: Any) -> None:
        """Take long-term keys from ``session`` (being attached) unless ``source_session`` was
        given. A second, different session would silently sign with the first one's keys:
        refused."""
        if self._explicit is not None:
            return
        inner = _botocore_session(session)
        if self._attached is None:
            self._attached = inner
        elif self._attached is not inner:
            raise ConfigurationError(
                "This provider already takes its long-term keys from another attached session; "
                "a second session would get credentials made from the first one's keys. Create "
                "one provider per session, or pass source_session= to share one source of keys."
            )

    def config_session(self) -> AioSession:
        """The session whose configuration (profile, region, endpoints, ca_bundle, proxies)
        the STS client follows: ``source_session``, else the attached one, else a default
        session."""
        if self._explicit is not None:
            return self._explicit
        if self._attached is not None:
            return self._attached
        if self._default is None:
            self._default = AioSession()
        return self._default

    @property
    def is_default(self) -> bool:
        return self._explicit is None and self._attached is None

    def describe(self) -> str:
        if self._explicit is not None:
            return "source_session"
        if self._attached is not None:
            return "the attached session's credential chain"
        return "the default credential chain (environment, ~/.aws files)"

    async def resolve(self) -> SourceKeys:
        keys = await self._resolve()
        return check_source_keys(keys, self.describe())

    async def _resolve(self) -> SourceKeys | None:
        if self._explicit is not None:
            creds = await self._explicit.get_credentials()
            if isinstance(creds, ProviderCredentials):
                # The source session is itself attached to a provider: look behind it.
                return await _keys_behind_link(self._explicit)
            return await _frozen_keys(creds, "source_session")
        if self._attached is not None:
            return await _keys_behind_link(self._attached)
        default = self.config_session()
        return await _frozen_keys(await default.get_credentials(), "default chain")


def _chain(session: AioSession) -> Any:
    return session.get_component("credential_provider")


async def _keys_behind_link(session: AioSession) -> SourceKeys | None:
    """The keys an attached session had before ``attach`` (given explicitly or already
    resolved), else the first found by the providers after ours in its chain."""
    providers = list(_chain(session).providers)
    link = next((p for p in providers if isinstance(p, _ChainLink)), None)
    if link is not None and link.pre_attach is not None:
        return await _frozen_keys(link.pre_attach, "explicit")
    start = providers.index(link) + 1 if link is not None else 0
    for provider in providers[start:]:
        if isinstance(provider, _ChainLink):
            continue  # never recurse into a provider of ours
        creds = await provider.load()
        if creds is not None:
            return await _frozen_keys(creds, provider.METHOD)
    return None


class StsClientFactory:
    """Owns the one long-lived STS client (creating one costs ~50 ms of model loading).

    The client is created from ``session_for()`` (the source profile's session), so botocore
    resolves what that profile configures: region, ``sts_regional_endpoints``, ``ca_bundle``,
    proxies and configured endpoint URLs (``AWS_ENDPOINT_URL_STS``, ``services`` sections,
    ``AWS_IGNORE_CONFIGURE_ENDPOINT_URLS``). ``region_name``/``endpoint_url`` override it.
    After :meth:`get`, :attr:`region_name` and :attr:`endpoint_url` are the resolved values.
    """

    def __init__(
        self,
        *,
        region_name: str | None,
        endpoint_url: str | None,
        config: Config | None,
        session_for: Callable[[], AioSession],
        use_session_region: Callable[[], bool] = lambda: True,
        fallback_region: str | None = None,
    ) -> None:
        self.explicit_region = region_name
        self.explicit_endpoint = endpoint_url
        self.region_name: str | None = region_name
        self.endpoint_url: str | None = endpoint_url
        self._config = DEFAULT_STS_CONFIG if config is None else DEFAULT_STS_CONFIG.merge(config)
        self._session_for = session_for
        self._use_session_region = use_session_region
        self._fallback_region = fallback_region
        self._client: Any = None
        self._client_keys: tuple[str, str, str | None] | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._creating: asyncio.Lock | None = None
        self._creating_loop: asyncio.AbstractEventLoop | None = None

    def derive(
        self, *, region_name: str | None, endpoint_url: str | None, config: Config | None
    ) -> StsClientFactory:
        """A factory for another identity (a role's) with this one's configuration."""
        return StsClientFactory(
            region_name=region_name or self.explicit_region,
            endpoint_url=endpoint_url or self.explicit_endpoint,
            config=self._config if config is None else self._config.merge(config),
            session_for=self._session_for,
            use_session_region=self._use_session_region,
            fallback_region=self._fallback_region,
        )

    async def get(self, keys: SourceKeys) -> Any:
        """The client for these keys on the running loop (a client is bound to the loop that
        created it: a CLI calling ``asyncio.run`` twice gets a new one). Concurrent callers
        (``prepare()`` and a first ``credentials()``) share one creation."""
        loop = asyncio.get_running_loop()
        wanted = (keys.access_key_id, keys.secret_access_key, keys.session_token)
        if self._client is not None and self._client_keys == wanted and self._client_loop is loop:
            return self._client
        if self._creating is None or self._creating_loop is not loop:
            self._creating, self._creating_loop = asyncio.Lock(), loop
        async with self._creating:
            if (
                self._client is not None
                and self._client_keys == wanted
                and self._client_loop is loop
            ):
                return self._client
            return await self._create(keys, loop)

    async def _create(self, keys: SourceKeys, loop: asyncio.AbstractEventLoop) -> Any:
        wanted = (keys.access_key_id, keys.secret_access_key, keys.session_token)
        await self.close()
        session = self._session_for()
        await read_config(session)  # botocore reads the files now, in a thread, once
        region = self.explicit_region or default_region(
            session, session_first=self._use_session_region(), fallback=self._fallback_region
        )
        self._client = await session.create_client(
            "sts",
            region_name=region,
            endpoint_url=self.explicit_endpoint,
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key,
            aws_session_token=keys.session_token,
            config=self._config,
        ).__aenter__()
        self.region_name = self._client.meta.region_name
        self.endpoint_url = self._client.meta.endpoint_url
        self._client_keys, self._client_loop = wanted, loop
        return self._client

    async def close(self) -> None:
        client, loop = self._client, self._client_loop
        self._client, self._client_keys, self._client_loop = None, None, None
        if client is None:
            return
        if loop is asyncio.get_running_loop():
            await client.__aexit__(None, None, None)
            return
        # Made on an event loop that has ended (asyncio.run per command). With no pooled
        # connection nothing is bound to that loop but the objects: close them best-effort.
        with contextlib.suppress(Exception):
            await client.__aexit__(None, None, None)


class ProviderCredentials:
    """What an attached session's clients hold as their credentials.

    Per request the signer awaits :meth:`get_frozen_credentials`: while the provider's
    credentials are fresh this is one clock read and one comparison; otherwise it awaits the
    provider, which decides whether to serve, prefetch in the background or wait.
    """

    method = METHOD

    def __init__(self, provider: _Provider) -> None:
        self._provider = provider
        self._source: SessionCredentials | None = None
        self._frozen: Any = None

    def __repr__(self) -> str:
        return f"ProviderCredentials(method={self.method!r})"

    async def get_frozen_credentials(self) -> Any:
        creds = self._provider.peek()
        if creds is None:
            creds = await self._provider.credentials()
        if creds is not self._source:
            self._frozen = ReadOnlyCredentials(
                creds.access_key_id, creds.secret_access_key, creds.session_token, None
            )
            self._source = creds
        return self._frozen

    async def get_account_id(self) -> None:
        return None  # GetSessionToken does not report the account id

    def get_deferred_property(self, property_name: str) -> Callable[[], None]:
        def get_property() -> None:
            return None

        return get_property


class _ChainLink(CredentialProvider):  # type: ignore[misc]
    """Our entry at the head of a session's credential chain; ``load`` returns one memoised
    :class:`ProviderCredentials`, however many clients are created concurrently."""

    METHOD = METHOD
    CANONICAL_NAME = "custom-sts-session"

    def __init__(self, owner: Any, credentials: ProviderCredentials, pre_attach: Any) -> None:
        super().__init__()
        self.owner = owner
        self.credentials = credentials
        self.pre_attach = pre_attach  # what the session held before attach, if anything

    async def load(self) -> ProviderCredentials:
        return self.credentials


def attach(
    owner: Any,
    credentials: ProviderCredentials,
    use_attached: Callable[[Any], None],
    session: Any,
) -> None:
    """Put ``owner``'s credentials at the head of ``session``'s chain and make them the
    session's credentials now, even if it had resolved others already."""
    inner = _botocore_session(session)
    chain = _chain(inner)
    for existing in chain.providers:
        if isinstance(existing, _ChainLink):
            if existing.owner is owner:
                return
            raise ConfigurationError(
                "This session already has another provider attached; create a new session for "
                "the second provider."
            )
    use_attached(inner)  # may refuse; nothing is changed yet
    # Credentials the session resolved or was given before attach become the source of
    # long-term keys (they are what the user meant to sign with) and are replaced as the
    # session's own, so clients created from now on use the provider.
    link = _ChainLink(owner, credentials, pre_attach=inner._credentials)
    if chain.providers:
        chain.insert_before(chain.providers[0].METHOD, link)
    else:
        chain.providers.append(link)
    inner._credentials = credentials
