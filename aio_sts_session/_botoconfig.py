"""Reading botocore's configuration: the AWS config and credentials files, a profile's
settings, the STS region and endpoint URL, exactly as botocore resolves them.

Only botocore (its configuration loader and session), never aiobotocore: everything a warm
cache needs (the profile chain, the keys' id, the cache entry's name) is answered from here,
without loading aiobotocore and aiohttp. The SDK itself is in :mod:`.integrations.aiobotocore`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.configprovider import ConfiguredEndpointProvider
from botocore.exceptions import BotoCoreError, ProfileNotFound

from .exceptions import ConfigurationError

__all__ = [
    "aws_file_paths",
    "configured_endpoint",
    "credentials_file_sections",
    "default_region",
    "profile_session",
    "read_config",
    "read_profiles",
]


def read_profiles(
    name: str | None,
) -> tuple[botocore.session.Session, str, bool, dict[str, dict[str, Any]], str]:
    """Both AWS config files, read by botocore's loader: ``(the session that read them,
    profile name, named explicitly, profiles, where they were read)``. ``name=None`` follows
    botocore (``AWS_PROFILE``, ``AWS_DEFAULT_PROFILE``, then ``default``). Synchronous: reads
    the disk (under a millisecond; making the session costs ~8 ms)."""
    reading = botocore.session.Session()
    chosen = name or reading.get_config_variable("profile")
    where = (
        f"{reading.get_config_variable('config_file')} and "
        f"{reading.get_config_variable('credentials_file')}"
    )
    try:
        profiles = dict(reading.full_config.get("profiles", {}))
    except BotoCoreError as exc:
        raise ConfigurationError(f"The AWS config files ({where}) cannot be read: {exc}") from None
    return reading, chosen or "default", chosen is not None, profiles, where


def aws_file_paths() -> list[str]:
    """The config and credentials files botocore reads, as its loader opens them
    (``botocore.configloader.raw_config_parse`` expands variables, then ``~``); ``""`` for
    one set to nothing (botocore then reads none)."""
    session = botocore.session.Session()
    paths = []
    for variable in ("config_file", "credentials_file"):
        value = session.get_config_variable(variable)
        paths.append(os.path.expanduser(os.path.expandvars(str(value))) if value else "")
    return paths


def credentials_file_sections(session: botocore.session.Session) -> set[str]:
    """The profiles whose keys are in the shared credentials file (not the config file)."""
    import botocore.configloader

    path = session.get_config_variable("credentials_file")
    try:
        parsed = botocore.configloader.raw_config_parse(path) if path else {}
    except BotoCoreError:
        return set()
    return {name for name, settings in parsed.items() if settings.get("aws_access_key_id")}


async def read_config(session: botocore.session.Session) -> dict[str, Any]:
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


def profile_session(
    session: botocore.session.Session, profile: str, keys: dict[str, str | None] | None
) -> botocore.session.Session:
    """``session`` (the one that read the files: they are not read again) switched to
    ``profile``, whose settings the STS client follows, holding the long-term keys read from
    the files (``None``: they are in the keyring, where the source resolver finds them)."""
    session.set_config_variable("profile", profile)
    if keys is not None:
        session.set_credentials(
            keys["aws_access_key_id"], keys["aws_secret_access_key"], keys.get("aws_session_token")
        )
    return session


def default_region(
    session: botocore.session.Session, *, session_first: bool, fallback: str | None = None
) -> str:
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


def configured_endpoint(session: botocore.session.Session, config: Config | None) -> str | None:
    """The STS endpoint URL the session's configuration names (``AWS_ENDPOINT_URL_STS``,
    ``AWS_ENDPOINT_URL``, the profile's ``services`` section or ``endpoint_url``), resolved by
    botocore's own provider exactly as client creation does, or ``None`` (AWS's endpoint for
    the region), also when ``AWS_IGNORE_CONFIGURE_ENDPOINT_URLS`` / the config says to ignore
    them. Call it after :func:`read_config`."""
    ignore = getattr(config, "ignore_configured_endpoint_urls", None)
    if ignore is None:
        ignore = session.get_config_variable("ignore_configured_endpoint_urls")
    if ignore:
        return None
    provider = ConfiguredEndpointProvider(
        full_config=session.full_config,
        scoped_config=session.get_scoped_config(),
        client_name="sts",
    )
    url = provider.provide()
    return str(url) if url else None
