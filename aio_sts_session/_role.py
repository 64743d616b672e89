"""``AssumeRoleProvider``: the refresh engine fed by STS AssumeRole on an MFA session.

Two ways to assume a role, chosen by the duration asked for (AWS caps a role assumed with
temporary credentials at one hour, "role chaining"):

- **chained** (``duration_seconds <= 3600``): AssumeRole signed with the MFA session's
  credentials. The session carries MFA into the call, so no code is asked for: every role on
  one session provider shares its one prompt, and refreshing a role costs none while the
  session lives. An ``ExpiredToken`` answer renews the session (one prompt) and retries once.
- **direct** (``duration_seconds > 3600``): AssumeRole signed with the long-term keys, with
  ``SerialNumber``/``TokenCode``: one prompt per role refresh, as botocore would do, but async,
  cached and refreshable.
"""

from __future__ import annotations

import dataclasses
import getpass
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ._cache import TokenCache
from ._clock import Clock
from ._config import (
    CHAINING_CAP,
    validate_endpoint,
    validate_role,
    validate_service_options,
    validate_windows,
)
from ._engine import Plan, ProviderStats, RefreshEngine
from ._log import logger
from ._models import CachedToken, SessionCredentials
from ._rolesession import RoleSessionOptions
from ._sts import RoleCall, SessionExpired, SourceKeys, call_assume_role
from .exceptions import ConfigurationError, StsError

if TYPE_CHECKING:
    from botocore.config import Config

    from ._codes import CodeAsker
    from ._events import EventHandler
    from .integrations.aiobotocore import SourceResolver, StsClientFactory

__all__ = ["AssumeRoleProvider", "RoleHolder", "SessionRoot", "default_session_name"]


class SessionRoot(Protocol):
    """What a role needs of the MFA session at the root of its chain (the session provider's
    source): its STS client factory, long-term keys, codes and identity."""

    serial: str | None
    identity_arn: str | None
    sts: StsClientFactory
    sources: SourceResolver

    async def mfa(self) -> CodeAsker | None: ...

    async def client_for(self, keys: SourceKeys) -> Any: ...

    def identity(self, keys: SourceKeys) -> str: ...

    def unjudged(self, keys: SourceKeys) -> None: ...


class RoleHolder(RefreshEngine):
    """A provider whose credentials can assume roles: the MFA session
    (:class:`~aio_sts_session.SessionTokenProvider`) and a role (a chain of roles). Both
    inherit :meth:`assume_role` from here."""

    _root_source: SessionRoot

    def assume_role(
        self,
        role_arn: str,
        *,
        duration_seconds: int = 3600,
        role_session_name: str | None = None,
        external_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        transitive_tag_keys: Sequence[str] | None = None,
        source_identity: str | None = None,
        policy: str | Mapping[str, Any] | None = None,
        policy_arns: Sequence[str] | None = None,
        **options: Any,
    ) -> AssumeRoleProvider:
        """An :class:`AssumeRoleProvider` for ``role_arn`` on this provider's credentials: every
        role on one MFA session shares its one prompt. ``duration_seconds`` above 3600 (AWS's
        cap for role chaining) assumes the role with the long-term keys and an MFA code instead
        (one prompt per role refresh); on a role provider (a chain of roles) it is refused.
        ``tags``, ``transitive_tag_keys``, ``source_identity``, ``policy`` and ``policy_arns``
        go to AssumeRole as STS takes them (see :class:`AssumeRoleProvider`). Region,
        endpoint, cache and clock are this provider's unless given in ``options``
        (``region_name``, ``endpoint_url``, ``cache``, ``prefetch_seconds``,
        ``stale_seconds``, ``sts_config``)."""
        return AssumeRoleProvider(
            role_arn,
            source=self,
            duration_seconds=duration_seconds,
            role_session_name=role_session_name,
            external_id=external_id,
            tags=tags,
            transitive_tag_keys=transitive_tag_keys,
            source_identity=source_identity,
            policy=policy,
            policy_arns=policy_arns,
            **options,
        )


ParentProvider = RoleHolder


class Inherit:
    """A role's ``max_wait``/``on_event`` default: its source provider's."""

    def __repr__(self) -> str:
        return "INHERIT"


INHERIT = Inherit()


def default_session_name() -> str:
    """A stable ``RoleSessionName`` (it is part of the cache entry key, so it must be the same
    in every process): ``aio-sts-session-<login name>``, shown in CloudTrail."""
    try:
        user = re.sub(r"[^\w+=,.@-]", "-", getpass.getuser())
    except Exception:  # no login name (some containers)
        return "aio-sts-session"
    return f"aio-sts-session-{user}"[:64]


class AssumeRoleProvider(RoleHolder):
    """Temporary credentials of an IAM role, from STS AssumeRole on an MFA session, refreshed
    before they expire. Usually made by :meth:`SessionTokenProvider.assume_role` or
    :func:`aio_sts_session.from_profile`; same surface as :class:`SessionTokenProvider`.

    - ``role_arn``: ``arn:aws:iam::ACCOUNT:role/NAME``.
    - ``source``: the :class:`SessionTokenProvider` (or another role provider, for a chain of
      roles) whose credentials sign AssumeRole.
    - ``duration_seconds`` (3600): up to 3600 the role is chained on the session (no prompt of
      its own); above, up to 43200, it is assumed with the long-term keys and an MFA code.
      Above the role's ``MaxSessionDuration`` STS refuses: :class:`ConfigurationError`.
    - ``role_session_name``: default ``aio-sts-session-<login name>``, the same in every
      process (it is part of the cache entry key); ``external_id``: as the trust policy says.
    - ``tags`` (a mapping, up to 50 session tags) and ``transitive_tag_keys`` (which of them
      pass on to roles assumed with this one's credentials); ``source_identity`` (2 to 64
      characters, fixed for the rest of a chain of roles); session policies that narrow the
      role's permissions: ``policy`` (a JSON policy document, as a str or a dict) and
      ``policy_arns`` (up to 10 managed policies). Each is held to STS's limits before anyone
      is asked for a code, and each is part of the session's identity: the same role with
      other tags or another policy is another cache entry. Session tags need
      ``sts:TagSession`` in the role's trust policy, a source identity
      ``sts:SetSourceIdentity``.
    - ``region_name``, ``endpoint_url``, ``cache``, ``clock``, ``sts_config``: the source's
      unless given; ``prefetch_seconds`` (300), ``stale_seconds`` (60); ``max_wait`` and
      ``on_event``: the source's unless given.

    ``close()`` closes this provider's STS client, not the source (which other roles may
    share), unless the source was made for it (by :func:`from_profile`).
    """

    role_arn: str
    source: ParentProvider

    def __init__(
        self,
        role_arn: str,
        *,
        source: ParentProvider,
        duration_seconds: int = 3600,
        role_session_name: str | None = None,
        external_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        transitive_tag_keys: Sequence[str] | None = None,
        source_identity: str | None = None,
        policy: str | Mapping[str, Any] | None = None,
        policy_arns: Sequence[str] | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        cache: TokenCache | None = None,
        prefetch_seconds: float = 300,
        stale_seconds: float = 60,
        sts_config: Config | None = None,
        clock: Clock | None = None,
        max_wait: float | Inherit | None = INHERIT,
        on_event: EventHandler | Inherit | None = INHERIT,
        _owns_source: bool = False,
    ) -> None:
        session_name = role_session_name or default_session_name()
        validate_role(role_arn, duration_seconds, session_name, external_id)
        session_options = RoleSessionOptions.checked(
            role_arn,
            tags=tags,
            transitive_tag_keys=transitive_tag_keys,
            source_identity=source_identity,
            policy=policy,
            policy_arns=policy_arns,
        )
        validate_windows(prefetch_seconds, stale_seconds)
        validate_endpoint(endpoint_url)
        if isinstance(max_wait, Inherit):
            max_wait = getattr(source, "_max_wait", None)
        if isinstance(on_event, Inherit):
            on_event = getattr(source, "_on_event", None)
        validate_service_options(max_wait, on_event)
        if not isinstance(source, RoleHolder):
            raise ConfigurationError(
                f"source must be a SessionTokenProvider or an AssumeRoleProvider, got "
                f"{type(source).__name__}: use session_provider.assume_role(role_arn)."
            )
        direct = duration_seconds > CHAINING_CAP
        if direct and isinstance(source, AssumeRoleProvider):
            raise ConfigurationError(
                f"duration_seconds={duration_seconds} for {role_arn}, assumed with the "
                f"credentials of role {source.role_arn}: AWS caps a role assumed with another "
                f"role's credentials (role chaining) at {CHAINING_CAP} s. Ask for at most "
                f"{CHAINING_CAP}, or assume {role_arn} from the MFA session."
            )
        if cache is not None and not isinstance(cache, TokenCache):
            raise ConfigurationError("cache must implement TokenCache (load/store/delete/lock).")
        root = source._root_source
        clock = clock or source._clock
        stats = ProviderStats()
        self.role_arn = role_arn
        self.source = source
        self._root_source = root
        self._owns_source = _owns_source
        role_source = _RoleSource(
            role=RoleCall(
                role_arn=role_arn,
                identity="",  # filled in per call
                duration=duration_seconds,
                external_id=external_id,
                with_mfa=True,
                chained=not direct,
                session=session_options,
            ),
            session_name=session_name,
            parent=source,
            root=root,
            direct=direct,
            sts=root.sts.derive(
                region_name=region_name, endpoint_url=endpoint_url, config=sts_config
            ),
            clock=clock,
            stats=stats,
        )
        super().__init__(
            role_source,
            cache=cache if cache is not None else source._cache,
            clock=clock,
            prefetch_seconds=prefetch_seconds,
            stale_seconds=stale_seconds,
            lock_timeout=source._lock_timeout + 60.0,
            stats=stats,
            max_wait=max_wait,
            on_event=on_event,
        )
        self._sts = role_source.sts

    def _chain_members(self) -> list[RefreshEngine]:
        return [self, *self.source._chain_members()]

    async def close(self) -> None:
        """Cancel any refresh in flight and close this provider's STS client (and its source
        if it was made for this provider). Idempotent."""
        await super().close()
        if self._owns_source:
            await self.source.close()


class _RoleSource:
    """AssumeRole, chained on the parent's credentials or direct with the long-term keys."""

    def __init__(
        self,
        *,
        role: RoleCall,
        session_name: str,
        parent: ParentProvider,
        root: SessionRoot,
        direct: bool,
        sts: StsClientFactory,
        clock: Clock,
        stats: ProviderStats,
    ) -> None:
        self.role = role
        self.session_name = session_name
        self.parent = parent
        self.root = root
        self.direct = direct
        self.sts = sts
        self._clock = clock
        self._stats = stats
        self._refused: ConfigurationError | None = None  # STS said the request can never work

    def describe(self) -> str:
        mode = "direct with MFA" if self.direct else "chained on the MFA session"
        options = self.role.session.describe()
        return (
            f"role_arn={self.role.role_arn!r}, role_session_name={self.session_name!r}, "
            f"duration_seconds={self.role.duration} ({mode})" + (f", {options}" if options else "")
        )

    def use_attached(self, session: Any) -> None:
        self.root.sources.use_attached(session)

    async def close(self) -> None:
        await self.sts.close()

    async def prepare(self) -> None:
        await self.parent.prepare()

    async def plan(self) -> Plan:
        if self._refused is not None:
            raise self._refused  # no prompt and no STS call for what STS refused as invalid
        parent_key = await self.parent.entry_key()  # validates the chain: no prompt
        key = "|".join(
            (
                "v1-role",
                self.role.role_arn,
                self.session_name,
                self.role.external_id or "-",
                str(self.role.duration),
                "direct" if self.direct else "chained",
                *await self._target(),
                # Tags, source identity, session policies: another session (absent when none,
                # so an entry made before they existed keeps its name).
                *filter(None, [self.role.session.key()]),
                parent_key,
            )
        )
        return Plan(cache_key=key, fetch=self._fetch_direct if self.direct else self._fetch)

    async def _target(self) -> tuple[str, str]:
        """This role's STS, when it differs from the MFA session's (which its key names)."""
        if self.sts.explicit_region is None and self.sts.explicit_endpoint is None:
            return "-", "-"
        region, endpoint = await self.sts.target()
        return region, endpoint or "-"

    async def _fetch(self) -> CachedToken:
        """Chained: sign with the parent's credentials; renew them once if STS says they
        expired (revoked early, or a clock far off)."""
        creds = await self.parent.credentials()
        try:
            return await self._call(self._keys(creds), None)
        except SessionExpired:
            logger.info(  # what follows is the outcome: the role, or the session's error
                "STS refused the credentials signing AssumeRole of %s as expired or invalid; "
                "renewing them and retrying once.",
                self.role.role_arn,
            )
        creds = await self.parent.refresh(rejected=creds)
        try:
            return await self._call(self._keys(creds), None)
        except SessionExpired:
            raise StsError(
                f"STS refused the renewed credentials signing AssumeRole of "
                f"{self.role.role_arn} as expired or invalid too: check this machine's clock "
                "and the STS endpoint (endpoint_url / AWS_ENDPOINT_URL_STS), then call refresh()."
            ) from None

    async def _fetch_direct(self) -> CachedToken:
        """Direct: the long-term keys and a code, for a role longer than the chaining cap."""
        root = self.root
        asker = await root.mfa()
        keys = await root.sources.resolve()
        await root.client_for(keys)
        if asker is None:
            return await self._call(keys, None)
        return await asker.run(
            lambda code: self._call(keys, code),
            duration=self.role.duration,
            stats=self._stats,
            role_arn=self.role.role_arn,
            on_unjudged=lambda: root.unjudged(keys),
        )

    @staticmethod
    def _keys(creds: SessionCredentials) -> SourceKeys:
        return SourceKeys(
            access_key_id=creds.access_key_id,
            secret_access_key=creds.secret_access_key,
            session_token=creds.session_token,
            method="session",
        )

    def _identity(self, keys: SourceKeys) -> str:
        if isinstance(self.parent, AssumeRoleProvider):
            return f"role {self.parent.role_arn}"
        if self.direct:
            return self.root.identity(keys)
        who = self.root.identity_arn or f"mfa_serial={self.root.serial!r}"
        return f"the MFA session of {who}"

    async def _call(self, keys: SourceKeys, code: str | None) -> CachedToken:
        client = await self.sts.get(keys) if not self.direct else await self.root.client_for(keys)
        role = dataclasses.replace(
            self.role, identity=self._identity(keys), with_mfa=self.root.serial is not None
        )
        self._stats.sts_calls += 1
        try:
            token = await call_assume_role(
                client,
                role=role,
                session_name=self.session_name,
                serial=self.root.serial if code is not None else None,
                code=code,
                key_id=keys.access_key_id,
                clock=self._clock,
            )
        except ConfigurationError as exc:
            self._refused = exc
            raise
        self._stats.refreshes += 1
        return token
