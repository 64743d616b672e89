"""Reading a ``~/.aws/config`` profile: its chain down to the long-term keys.

The files are read once, with botocore's own loader; the profile chain (``role_arn`` /
``source_profile``) is checked whole before anything else happens, so a missing profile, a
cycle or a malformed value is a :class:`ConfigurationError` before any prompt and any STS
call. This module only reads: the providers a profile means are made in :mod:`._provider`.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import TYPE_CHECKING, Any

from . import _botoconfig
from ._keys import stored_key_id
from ._rolesession import from_profile_settings
from ._text import quote
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    pass

__all__ = [
    "NO_KEYS",
    "ProfileChain",
    "RoleSettings",
    "read_chain",
    "split_options",
    "wrapped_profile",
]

#: ``ProfileChain.key_source`` of a chain whose root has no long-term keys yet.
NO_KEYS = "none"

#: Keyword arguments ``from_profile`` passes on, by who takes them.
_SESSION_OPTIONS = frozenset(
    {"mfa_serial", "session_duration_seconds", "mfa_attempts", "mfa_timeout"}
)
_SHARED_OPTIONS = frozenset(
    {
        "region_name",
        "endpoint_url",
        "sts_config",
        "clock",
        "prefetch_seconds",
        "stale_seconds",
        "max_wait",
        "on_event",
    }
)
_ROLE_OPTIONS = frozenset(
    {
        "duration_seconds",
        "role_session_name",
        "external_id",
        "tags",
        "transitive_tag_keys",
        "source_identity",
        "policy",
        "policy_arns",
    }
)
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
    #: ``tags``, ``transitive_tag_keys``, ``source_identity`` from the profile's
    #: ``session_tags``, ``transitive_session_tags``, ``source_identity`` (aws-vault's names).
    session_options: dict[str, Any] = dataclasses.field(default_factory=dict)


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
    #: Where the root's long-term keys are: "keyring", "credentials file" or "config file"
    #: (None: no profile, the default chain), and a plain-text copy left beside the keyring.
    key_source: str | None = None
    plaintext_copy: str | None = None


def wrapped_profile(settings: dict[str, Any]) -> str | None:
    """The profile a profile's ``credential_process`` hands to aio-sts-session, if that
    process runs this tool (``aio-sts-session credential-process --profile admin``)."""
    line = settings.get("credential_process")
    if not line:
        return None
    try:
        argv = shlex.split(str(line))
    except ValueError:
        return None
    runs_it = bool(argv) and argv[0].endswith(("aio-sts-session", "aio_sts_session"))
    if not (runs_it or argv[1:3] == ["-m", "aio_sts_session"]):
        return None
    for i, part in enumerate(argv):
        if part == "--profile" and i + 1 < len(argv):
            return argv[i + 1]
        if part.startswith("--profile="):
            return part.split("=", 1)[1]
    return "default"


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


def read_chain(name: str | None, *, require_keys: bool = True) -> ProfileChain:
    """Read the config files (botocore's loader) and resolve ``name``'s chain, checking it
    whole. Synchronous: it reads the disk once (a few ms). The root's keys come from the OS
    keyring when ``aio-sts-session add`` put them there, else from the files. Kept in the
    keyring, only their id is read here (from the keyring's index; all a cache entry's name
    needs): the secret is read when something is about to be signed, so a run served from the
    cache never unlocks the keyring. ``require_keys=False``: a chain whose root has no keys
    yet is returned (``key_source`` :data:`NO_KEYS`, ``keys`` ``None``) instead of refused."""
    session, name, explicit, profiles, where = _botoconfig.read_profiles(name)
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
                session_options=from_profile_settings(current, settings),
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
    in_files = bool(
        root_settings.get("aws_access_key_id") and root_settings.get("aws_secret_access_key")
    )
    # Which file holds the keys (botocore merges both): parsed only when there are keys in one.
    file_name = (
        "credentials file"
        if in_files and root in _botoconfig.credentials_file_sections(session)
        else "config file"
    )
    keyring_id = stored_key_id(root)
    if keyring_id is not None:
        keys = {"aws_access_key_id": keyring_id, "aws_secret_access_key": None}
        key_source, plaintext_copy = "keyring", file_name if in_files else None
    elif in_files:
        keys = {
            key: root_settings.get(key)
            for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        }
        key_source, plaintext_copy = file_name, None
    else:
        wraps = wrapped_profile(root_settings)
        if wraps is not None:
            raise ConfigurationError(
                f"Profile {quote(root)} gets its credentials from aio-sts-session itself "
                f"(credential_process … --profile {wraps}): use the profile it wraps, "
                f"{quote(wraps)}."
            )
        other = [key for key in _UNSUPPORTED_SOURCES if key in root_settings]
        if other:
            raise ConfigurationError(
                f"Profile {quote(root)} gets credentials from {other[0]}, which aio-sts-session "
                "cannot use: it needs an IAM user's long-term keys (aws_access_key_id and "
                "aws_secret_access_key) to make the MFA session."
            )
        if not require_keys:
            keys, key_source, plaintext_copy = None, NO_KEYS, None
        else:
            raise ConfigurationError(
                f"Profile {quote(root)} has neither long-term keys (aws_access_key_id, "
                "aws_secret_access_key) nor a role_arn with a source_profile: keep the IAM "
                f"user's keys in the keyring (aio-sts-session add {root}) or add them to "
                "~/.aws/credentials under [" + root + "]."
            )
    chain_settings = [profiles[p] for p in seen]
    return ProfileChain(
        name=name,
        root=root,
        keys=keys,
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
        key_source=key_source,
        plaintext_copy=plaintext_copy,
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


def split_options(overrides: dict[str, Any], has_roles: bool) -> tuple[dict[str, Any], ...]:
    unknown = set(overrides) - _SESSION_OPTIONS - _SHARED_OPTIONS - _ROLE_OPTIONS
    if unknown:
        raise ConfigurationError(
            f"from_profile() got unknown option(s) {', '.join(sorted(unknown))}; it takes "
            f"{', '.join(sorted(_SESSION_OPTIONS | _SHARED_OPTIONS | _ROLE_OPTIONS))}."
        )
    session = {k: v for k, v in overrides.items() if k in _SESSION_OPTIONS | _SHARED_OPTIONS}
    shared = {
        k: v
        for k, v in overrides.items()
        if k in ("prefetch_seconds", "stale_seconds", "max_wait", "on_event")
    }
    role = {k: v for k, v in overrides.items() if k in _ROLE_OPTIONS}
    if not has_roles:
        if "duration_seconds" in role:
            session.setdefault("session_duration_seconds", role.pop("duration_seconds"))
        if role:
            raise ConfigurationError(
                f"{', '.join(sorted(role))} only apply to a role profile (with role_arn)."
            )
    return session, shared, role
