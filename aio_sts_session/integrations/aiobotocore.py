"""The aiobotocore integration: the STS client, source credentials, and ``attach``.

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

aiobotocore (and aiohttp under it, ~0.3 s of imports) is imported when first needed: making an
STS client, attaching, or a default session. Everything a warm cache needs (reading the
profiles, finding the keys, the cache entry) uses botocore's configuration alone, so the
command line answers from the cache without loading it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import os
import sys
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, Protocol

import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, ReadOnlyCredentials

from .._botoconfig import configured_endpoint, default_region, read_config
from .._models import SessionCredentials
from .._sts import SourceKeys, check_source_keys
from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

__all__ = [
    "METHOD",
    "ProviderCredentials",
    "SourceResolver",
    "StsClientFactory",
    "attach",
    "new_session",
]

METHOD = "custom-sts-session"


async def import_aiobotocore() -> None:
    """Import aiobotocore (and aiohttp) in a worker thread the first time: ~0.3 s of imports
    that would otherwise stall the event loop (other tasks keep running meanwhile)."""
    if "aiobotocore.session" not in sys.modules:
        await asyncio.to_thread(importlib.import_module, "aiobotocore.session")
    if "aiobotocore.config" not in sys.modules:
        await asyncio.to_thread(importlib.import_module, "aiobotocore.config")


def default_sts_config() -> Config:
    """Settings for the one STS client: botocore's standard retry mode (backoff with jitter;
    retries throttling, 5xx and connection errors by resending the same request, so the same
    code), timeouts that bound a persistent outage to well under a minute, and no keep-alive:
    STS is called once per refresh, hours apart, so an idle pooled connection would only hold
    a socket (bound to one event loop) between refreshes."""
    from aiobotocore.config import AioConfig

    config: Config = AioConfig(
        retries={"mode": "standard", "total_max_attempts": 4},
        connect_timeout=5,
        read_timeout=10,
        connector_args={"force_close": True, "keepalive_timeout": None},
    )
    return config


def new_session(profile: str | None = None) -> AioSession:
    from aiobotocore.session import AioSession

    return AioSession(profile=profile)


class _Provider(Protocol):
    def peek(self) -> SessionCredentials | None: ...

    async def credentials(self) -> SessionCredentials: ...


def _botocore_session(session: Any) -> botocore.session.Session:
    """A source session: an ``AioSession`` itself, the one inside an ``aioboto3.Session``, or
    a botocore session (its keys and configuration only: from_profile's)."""
    inner = getattr(session, "_session", session)
    if not isinstance(inner, botocore.session.Session):
        raise ConfigurationError(
            f"Expected an aiobotocore AioSession or an aioboto3 Session, got "
            f"{type(session).__name__}. For botocore (sync) sessions this library does not apply."
        )
    return inner


async def _frozen_keys(creds: Any, method: str) -> SourceKeys | None:
    if creds is None:
        return None
    frozen = creds.get_frozen_credentials()
    if inspect.isawaitable(frozen):  # aiobotocore's; botocore's answer at once
        frozen = await frozen
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
        self._attached: botocore.session.Session | None = None
        self._default: botocore.session.Session | None = None
        # The keys an attached session's chain found: kept, so that its providers (and their
        # "Found credentials in …" log lines) run once, not at every refresh; forgotten when
        # STS refuses them.
        self._behind: SourceKeys | None = None

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

    def config_session(self) -> botocore.session.Session:
        """The session whose configuration (profile, region, endpoints, ca_bundle, proxies)
        the STS client follows: ``source_session``, else the attached one, else a default
        session."""
        if self._explicit is not None:
            return self._explicit
        if self._attached is not None:
            return self._attached
        if self._default is None:
            self._default = new_session()
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

    async def ready(self) -> None:
        """Make the default session (importing aiobotocore off the loop) if it will be used."""
        if self._explicit is None and self._attached is None and self._default is None:
            await import_aiobotocore()
            self.config_session()

    def forget(self) -> None:
        """STS refused the keys: look for them again next time (a rotated key, say)."""
        self._behind = None

    async def resolve(self) -> SourceKeys:
        await self.ready()
        keys = await self._resolve()
        return check_source_keys(keys, self.describe())

    async def _resolve(self) -> SourceKeys | None:
        in_keyring = await _keyring_keys(self.config_session())
        if in_keyring is not None:
            return in_keyring
        if self._explicit is not None:
            creds = self._explicit.get_credentials()
            if inspect.isawaitable(creds):  # an AioSession's; a botocore session's is not
                creds = await creds
            if isinstance(creds, ProviderCredentials):
                # The source session is itself attached to a provider: look behind it.
                return await _keys_behind_link(self._explicit)
            return await _frozen_keys(creds, "source_session")
        if self._attached is not None:
            if self._behind is None:
                self._behind = await _keys_behind_link(self._attached)
            return self._behind
        default = self.config_session()
        return await _frozen_keys(await default.get_credentials(), "default chain")


def _keys_set_on(session: botocore.session.Session) -> bool:
    """Whether keys were set on the session itself (``set_credentials``, or the
    ``aws_access_key_id=`` of a session that made them explicit), before ``attach`` if it is
    attached. Credentials the session merely resolved from its chain (the shared credentials
    file, say) do not count."""
    creds = getattr(session, "_credentials", None)
    if isinstance(creds, ProviderCredentials):
        link = next((p for p in _chain(session).providers if isinstance(p, _ChainLink)), None)
        creds = link.pre_attach if link is not None else None
    return creds is not None and getattr(creds, "method", None) in (None, "explicit")


async def _keyring_keys(session: botocore.session.Session) -> SourceKeys | None:
    """The session's profile's keys from the OS keyring, when ``aio-sts-session add`` put them
    there: they win over the shared credentials file (what the session's own chain would find),
    as keys set on the session win over them, and the environment's do for a session whose
    profile was not named (botocore's own rule); attached or not. ``None`` otherwise.

    Only the key id is read here (from the keyring's index: no keyring call); the secret is
    read when something is about to be signed (:meth:`SourceKeys.with_secret`)."""
    named = session.instance_variables().get("profile") is not None
    if _keys_set_on(session) or (os.environ.get("AWS_ACCESS_KEY_ID") and not named):
        return None
    from .._keys import load_keys, stored_key_id

    profile = session.get_config_variable("profile") or "default"
    key_id = stored_key_id(profile)
    if key_id is None:
        return None

    def load() -> tuple[str, str]:
        pair = load_keys(profile)
        return pair.access_key_id, pair.secret_access_key

    return SourceKeys(key_id, "", None, "keyring", load=load)


def _chain(session: botocore.session.Session) -> Any:
    return session.get_component("credential_provider")


async def _keys_behind_link(session: botocore.session.Session) -> SourceKeys | None:
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
    :meth:`target` says where the client will go without making it (a warm cache needs no
    client); after :meth:`get`, :attr:`region_name` and :attr:`endpoint_url` are the client's.
    """

    def __init__(
        self,
        *,
        region_name: str | None,
        endpoint_url: str | None,
        config: Config | None,
        session_for: Callable[[], botocore.session.Session],
        use_session_region: Callable[[], bool] = lambda: True,
        fallback_region: str | None = None,
    ) -> None:
        self.explicit_region = region_name
        self.explicit_endpoint = endpoint_url
        self.region_name: str | None = region_name
        self.endpoint_url: str | None = endpoint_url
        self._config = config  # merged over default_sts_config() when the client is made
        self._session_for = session_for
        self._use_session_region = use_session_region
        self._fallback_region = fallback_region
        # One client per event loop that uses it (a client is bound to the loop that made it;
        # a provider may serve several loops): loop -> (client, the keys it signs with, what
        # closes it on that loop, see _closing_at_loop_end).
        self._clients: dict[
            asyncio.AbstractEventLoop,
            tuple[Any, tuple[str, str, str | None], AsyncGenerator[None, None]],
        ] = {}
        self._creating: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._target: tuple[botocore.session.Session, str, str | None] | None = None
        self._client_session: AioSession | None = None
        self._parent: StsClientFactory | None = None

    async def target(self) -> tuple[str, str | None]:
        """The region and the configured endpoint URL (``None``: AWS's endpoint for the
        region) the client will use, as botocore resolves them for the configuration session;
        the files are read in a worker thread, once."""
        session = self._session_for()
        if self._target is None or self._target[0] is not session:
            await read_config(session)
            region = self.explicit_region or default_region(
                session, session_first=self._use_session_region(), fallback=self._fallback_region
            )
            endpoint = self.explicit_endpoint or configured_endpoint(session, self._config)
            self._target = (session, region, endpoint)
        return self._target[1], self._target[2]

    def derive(
        self, *, region_name: str | None, endpoint_url: str | None, config: Config | None
    ) -> StsClientFactory:
        """A factory for another identity (a role's) with this one's configuration."""
        child = StsClientFactory(
            region_name=region_name or self.explicit_region,
            endpoint_url=endpoint_url or self.explicit_endpoint,
            config=config if self._config is None else self._config.merge(config or Config()),
            session_for=self._session_for,
            use_session_region=self._use_session_region,
            fallback_region=self._fallback_region,
        )
        child._parent = self  # one AioSession for all: botocore loads the STS model once
        return child

    async def get(self, keys: SourceKeys) -> Any:
        """The client for these keys on the running loop (a client is bound to the loop that
        created it: a CLI calling ``asyncio.run`` twice, or a service with several loops, gets
        one per loop). Concurrent callers (``prepare()`` and a first ``credentials()``) share
        one creation."""
        loop = asyncio.get_running_loop()
        wanted = (keys.access_key_id, keys.secret_access_key, keys.session_token)
        held = self._clients.get(loop)
        if held is not None and held[1] == wanted:
            return held[0]
        self._drop_ended_loops()
        creating = self._creating.setdefault(loop, asyncio.Lock())
        async with creating:
            held = self._clients.get(loop)
            if held is not None and held[1] == wanted:
                return held[0]
            return await self._create(keys, loop)

    def _drop_ended_loops(self) -> None:
        """Forget clients of loops that have ended (``asyncio.run`` closed them as it ended,
        see :func:`_closing_at_loop_end`)."""
        for loop in [loop for loop in self._clients if loop.is_closed()]:
            del self._clients[loop]
        for loop in [loop for loop in self._creating if loop.is_closed()]:
            del self._creating[loop]

    async def _create(self, keys: SourceKeys, loop: asyncio.AbstractEventLoop) -> Any:
        wanted = (keys.access_key_id, keys.secret_access_key, keys.session_token)
        await self._close_here(loop)  # this loop's client for other keys, if any
        await import_aiobotocore()
        region, endpoint = await self.target()
        config = default_sts_config()
        if self._config is not None:
            config = config.merge(self._config)
        session = await self._aio_session()
        client = await session.create_client(
            "sts",
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key,
            aws_session_token=keys.session_token,
            config=config,
        ).__aenter__()
        self.region_name = client.meta.region_name
        self.endpoint_url = client.meta.endpoint_url
        closer = _closing_at_loop_end(client)
        await anext(closer)
        self._clients[loop] = (client, wanted, closer)
        return client

    async def _aio_session(self) -> AioSession:
        """The configuration session itself when it is an ``AioSession``; for a botocore one
        (from_profile's) an ``AioSession`` of the same profile, its files read off the loop."""
        from aiobotocore.session import AioSession

        if self._parent is not None:
            return await self._parent._aio_session()
        session = self._session_for()
        if isinstance(session, AioSession):
            return session
        if self._client_session is None:
            self._client_session = new_session(session.get_config_variable("profile"))
            await read_config(self._client_session)
        return self._client_session

    def iam_client(self, keys: SourceKeys) -> Any:
        """An IAM client (an async context manager) signed with ``keys`` (the MFA session's,
        for ``rotate``), following the same profile's configured endpoints."""

        @contextlib.asynccontextmanager
        async def client() -> Any:
            await import_aiobotocore()
            region, _ = await self.target()
            session = await self._aio_session()
            async with session.create_client(
                "iam",
                region_name=region,
                aws_access_key_id=keys.access_key_id,
                aws_secret_access_key=keys.secret_access_key,
                aws_session_token=keys.session_token,
                config=default_sts_config(),
            ) as iam:
                yield iam

        return client()

    async def _close_here(self, loop: asyncio.AbstractEventLoop) -> None:
        held = self._clients.pop(loop, None)
        if held is not None:
            await held[2].aclose()

    async def close(self) -> None:
        """Close the running loop's client; a client of another loop still running is closed
        on that loop; one of a loop that has ended was closed as it ended."""
        running = asyncio.get_running_loop()
        await self._close_here(running)
        for loop, (_, _, closer) in list(self._clients.items()):
            del self._clients[loop]
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closing meanwhile: it closes it
                    asyncio.run_coroutine_threadsafe(closer.aclose(), loop)
        self._creating.clear()


async def _closing_at_loop_end(client: Any) -> AsyncGenerator[None, None]:
    """Closes ``client`` on its own loop when the provider closes it (``aclose()``) or when
    the loop ends first: ``asyncio.run`` finalizes every suspended async generator of its loop
    (``shutdown_asyncgens``) before closing it, so a provider serving threads that each run
    ``asyncio.run`` leaves no client (and no unclosed aiohttp session) behind."""
    try:
        yield
    finally:
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
    from aiobotocore.session import AioSession

    inner = _botocore_session(session)
    if not isinstance(inner, AioSession):
        raise ConfigurationError(
            f"attach() takes an aiobotocore AioSession or an aioboto3 Session, got "
            f"{type(inner).__name__}: clients of a botocore (sync) session cannot await this "
            "provider."
        )
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
