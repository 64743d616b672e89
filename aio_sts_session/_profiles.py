"""``from_profile``: the provider a ``~/.aws/config`` profile means.

The files are read once, with botocore's own loader; the profile chain (``role_arn`` /
``source_profile``) is checked whole before anything else happens, so a missing profile, a
cycle or a malformed value is a :class:`ConfigurationError` from ``from_profile`` itself,
before any prompt and any STS call.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from . import _aiobotocore
from ._cache import TokenCache
from ._callbacks import command_callback
from ._models import MfaCallback
from ._provider import SessionTokenProvider
from ._role import AssumeRoleProvider
from ._text import quote
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ProfileChain", "build", "from_profile", "read_chain", "session_from_profile"]

Provider = SessionTokenProvider | AssumeRoleProvider

#: Keyword arguments ``from_profile`` passes on, by who takes them.
_SESSION_OPTIONS = frozenset(
    {"mfa_serial", "session_duration_seconds", "mfa_attempts", "mfa_timeout"}
)
_SHARED_OPTIONS = frozenset(
    {"region_name", "endpoint_url", "sts_config", "clock", "prefetch_seconds", "stale_seconds"}
)
_ROLE_OPTIONS = frozenset({"duration_seconds", "role_session_name", "external_id"})
#: Root-profile settings that are a source of credentials this library does not take.
_UNSUPPORTED_SOURCES = (
    "credential_process",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
    "credential_source",
)


@dataclasses.dataclass(frozen=True)
class RoleSettings:
    profile: str
    role_arn: str
    duration_seconds: int
    role_session_name: str | None
    external_id: str | None


@dataclasses.dataclass(frozen=True)
class ProfileChain:
    """A profile resolved down to its long-term keys: ``roles`` run from the one assumed on
    the MFA session to the named profile's."""

    name: str
    root: str
    # None: the named profile does not exist; default chain. Never in the repr: it holds the
    # long-term secret.
    keys: dict[str, str | None] | None = dataclasses.field(repr=False, compare=False)
    mfa_serial: str | None
    mfa_process: str | None
    session_duration: int | None
    region: str | None  # the named profile's (a fallback after the source profile's)
    source_region: str | None  # the root (source) profile's
    roles: tuple[RoleSettings, ...]
    session: Any = dataclasses.field(default=None, repr=False, compare=False)  # read the files
    #: The named profile's configured endpoints, as the environment variables that say the
    #: same (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``), for a command run with its
    #: credentials (``exec``), which no longer sees the profile.
    endpoints: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)


def _int_setting(profile: str, settings: dict[str, Any], key: str) -> int | None:
    raw = settings.get(key)
    if raw is None:
        return None
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ConfigurationError(
            f"{key} = {quote(raw)} in profile {quote(profile)} is not a whole number of seconds."
        ) from None


def read_chain(name: str | None) -> ProfileChain:
    """Read the config files (botocore's loader) and resolve ``name``'s chain, checking it
    whole. Synchronous: it reads the disk once (a few ms)."""
    session, name, explicit, profiles, where = _aiobotocore.read_profiles(name)
    if name not in profiles:
        if explicit:
            found = ", ".join(sorted(profiles)) or "none"
            raise ConfigurationError(
                f"Profile {quote(name)} is not in {where}. Profiles found: {found}. Check the name "
                "(and AWS_PROFILE), or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE."
            )
        # No [default] profile and none asked for: the default chain (environment keys).
        return ProfileChain(name, name, None, None, None, None, None, None, ())  # a fresh session
    seen: list[str] = []
    roles: list[RoleSettings] = []
    current = name
    while True:
        if current in seen:
            loop = " -> ".join([*seen, current])
            raise ConfigurationError(
                f"The source_profile chain loops ({loop}): end it at a profile with an IAM "
                "user's long-term keys."
            )
        seen.append(current)
        settings = profiles[current]
        role_arn = settings.get("role_arn")
        if role_arn is None:
            if "source_profile" in settings:
                raise ConfigurationError(
                    f"Profile {quote(current)} has source_profile but no role_arn: a source is "
                    "only used to assume a role. Remove source_profile or add role_arn."
                )
            break
        if "credential_source" in settings:
            raise ConfigurationError(
                f"Profile {quote(current)} uses credential_source, which aio-sts-session does not "
                "support (it needs an IAM user's long-term keys to make the MFA session): use "
                "source_profile = <a profile with aws_access_key_id and mfa_serial>."
            )
        source = settings.get("source_profile")
        if not source:
            raise ConfigurationError(
                f"Profile {quote(current)} has role_arn but no source_profile: name the profile "
                "whose long-term keys sign AssumeRole (source_profile = ...)."
            )
        roles.append(
            RoleSettings(
                profile=current,
                role_arn=str(role_arn),
                duration_seconds=_int_setting(current, settings, "duration_seconds") or 3600,
                role_session_name=settings.get("role_session_name"),
                external_id=settings.get("external_id"),
            )
        )
        if source == current and settings.get("aws_access_key_id"):
            break  # a role profile holding its own long-term keys (botocore allows it)
        if source not in profiles:
            raise ConfigurationError(
                f"Profile {quote(current)} names source_profile {quote(source)}, which is not in "
                f"{where}. Profiles found: {', '.join(sorted(profiles))}."
            )
        current = source
    root = current
    root_settings = profiles[root]
    if not (root_settings.get("aws_access_key_id") and root_settings.get("aws_secret_access_key")):
        other = [key for key in _UNSUPPORTED_SOURCES if key in root_settings]
        if other:
            raise ConfigurationError(
                f"Profile {quote(root)} gets credentials from {other[0]}, which aio-sts-session "
                "cannot use: it needs an IAM user's long-term keys (aws_access_key_id and "
                "aws_secret_access_key) to make the MFA session."
            )
        raise ConfigurationError(
            f"Profile {quote(root)} has neither long-term keys (aws_access_key_id, "
            "aws_secret_access_key) nor a role_arn with a source_profile: add the IAM user's "
            "keys to ~/.aws/credentials under [" + root + "]."
        )
    chain_settings = [profiles[p] for p in seen]
    return ProfileChain(
        name=name,
        root=root,
        keys={
            key: root_settings.get(key)
            for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        },
        mfa_serial=next((s["mfa_serial"] for s in chain_settings if s.get("mfa_serial")), None),
        mfa_process=next((s["mfa_process"] for s in chain_settings if s.get("mfa_process")), None),
        session_duration=None
        if root == name and roles
        else _int_setting(root, root_settings, "duration_seconds"),
        region=profiles[name].get("region"),
        source_region=root_settings.get("region"),
        roles=tuple(reversed(roles)),
        session=session,
        endpoints=_endpoints(profiles[name], session),
    )


def _endpoints(settings: dict[str, Any], session: Any) -> dict[str, str]:
    """A profile's ``endpoint_url`` and its ``services`` section's endpoints, as the
    environment variables every SDK reads for them."""
    if str(settings.get("ignore_configured_endpoint_urls", "")).lower() == "true":
        return {}
    endpoints = {}
    if settings.get("endpoint_url"):
        endpoints["AWS_ENDPOINT_URL"] = str(settings["endpoint_url"])
    section = settings.get("services")
    services = session.full_config.get("services", {}).get(section, {}) if section else {}
    for service, service_settings in services.items():
        if isinstance(service_settings, dict) and service_settings.get("endpoint_url"):
            variable = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
            endpoints[variable] = str(service_settings["endpoint_url"])
    return endpoints


def _split_options(overrides: dict[str, Any], has_roles: bool) -> tuple[dict[str, Any], ...]:
    unknown = set(overrides) - _SESSION_OPTIONS - _SHARED_OPTIONS - _ROLE_OPTIONS
    if unknown:
        raise ConfigurationError(
            f"from_profile() got unknown option(s) {', '.join(sorted(unknown))}; it takes "
            f"{', '.join(sorted(_SESSION_OPTIONS | _SHARED_OPTIONS | _ROLE_OPTIONS))}."
        )
    session = {k: v for k, v in overrides.items() if k in _SESSION_OPTIONS | _SHARED_OPTIONS}
    shared = {k: v for k, v in overrides.items() if k in ("prefetch_seconds", "stale_seconds")}
    role = {k: v for k, v in overrides.items() if k in _ROLE_OPTIONS}
    if not has_roles:
        if "duration_seconds" in role:
            session.setdefault("session_duration_seconds", role.pop("duration_seconds"))
        if role:
            raise ConfigurationError(
                f"{', '.join(sorted(role))} only apply to a role profile (with role_arn)."
            )
    return session, shared, role


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
        source = _aiobotocore.profile_session(chain.session, chain.root, chain.keys)
    provider = SessionTokenProvider(
        mfa_serial=serial,
        mfa_callback=mfa_callback,
        duration_seconds=duration,
        source_session=source,
        cache=cache,
        _fallback_region=chain.region,
        **options,
    )
    provider._root_source.profile = chain.name  # prompts name the profile the code is for
    return provider


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
    ``source_profile``, ``role_session_name``, ``external_id``, ``region``, ``mfa_process``
    (a command printing the code, used when no ``mfa_callback`` is given) and the root's
    long-term keys; the STS client follows the root profile's settings (region,
    ``sts_regional_endpoints``, ``ca_bundle``, endpoint URLs), resolved by botocore.

    ``overrides``: ``region_name``, ``endpoint_url``, ``sts_config``, ``clock``,
    ``prefetch_seconds``, ``stale_seconds``; for the MFA session ``mfa_serial``,
    ``session_duration_seconds``, ``mfa_attempts``, ``mfa_timeout``; for the role
    ``duration_seconds``, ``role_session_name``, ``external_id``.

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
    session_options, shared, role_options = _split_options(dict(overrides), bool(chain.roles))
    session = _session_provider(chain, mfa_callback, cache, session_options, default_callback)
    if not chain.roles:
        return session
    provider: Provider = session
    for index, role in enumerate(chain.roles):
        options: dict[str, Any] = {
            "duration_seconds": role.duration_seconds,
            "role_session_name": role.role_session_name,
            "external_id": role.external_id,
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
    session_options, _, _ = _split_options(dict(overrides), False)
    return _session_provider(chain, mfa_callback, cache, session_options, None)
