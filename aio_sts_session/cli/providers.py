"""Opening a profile's provider the way every command does: the profile chain, the shared
encrypted cache and its key, who asks for the code, the refresh windows the SDKs need, and the
region a command is handed."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .._cache import EncryptedFileCache
from .._cachekey import cache_directory
from .._engine import RefreshEngine
from .._models import SessionCredentials
from .._profiles import ProfileChain, read_chain
from .._provider import build
from .._role import AssumeRoleProvider
from .._text import quote
from ..exceptions import ConfigurationError
from .advice import UsageError
from .output import credential_env
from .prompts import callback_factory

__all__ = [
    "MARGIN",
    "SDK_WINDOW",
    "SERVER_PREFETCH",
    "chain_of",
    "env_for",
    "fresh_enough",
    "open_provider",
    "region_for",
]


#: botocore (and the other SDKs) fetch again on every call once less than 15 minutes are left:
#: hand out credentials with more than this left whenever their lifetime allows.
SDK_WINDOW = 15 * 60
MARGIN = 60
#: The credential server renews this long before expiry (the MFA session's prompt appears
#: then, while the command keeps running), and never serves less than SDK_WINDOW + MARGIN.
SERVER_PREFETCH = 25 * 60


def open_provider(
    args: argparse.Namespace,
    *,
    prefetch: float = SDK_WINDOW + MARGIN,
    stale: float = SDK_WINDOW + MARGIN,
) -> tuple[RefreshEngine, ProfileChain]:
    """The provider ``args.profile`` means, on the shared encrypted cache, asking for codes as
    the options say; and the profile chain it was made from. A profile without ``mfa_serial``
    is refused unless ``--no-mfa`` says a session without MFA is meant."""
    from .._cachekey import resolve_cache_key

    chain = read_chain(args.profile)
    callbacks = callback_factory(args)
    cache = EncryptedFileCache(cache_directory(), key=resolve_cache_key().key)
    options: dict[str, Any] = {"prefetch_seconds": prefetch, "stale_seconds": stale}
    if args.mfa_timeout is not None:
        options["mfa_timeout"] = args.mfa_timeout
    if args.duration is not None:
        options["duration_seconds"] = args.duration
    try:
        provider = build(chain, cache=cache, default_callback=callbacks, **options)
    except ConfigurationError as exc:
        if args.duration is not None and "duration_seconds" in str(exc):
            raise UsageError(f"--duration {args.duration}: {exc}") from None
        raise
    if chain.mfa_serial is None and not args.no_mfa:
        # Refused, not warned: the AWS CLI shows a credential process's stderr only when it
        # fails, so a warning would never be seen and MFA would be silently missing.
        if chain.keys is None:  # no profile chosen and no [default]: the environment's keys
            raise ConfigurationError(
                "No profile was chosen (--profile, AWS_PROFILE) and the AWS config files have no "
                "[default] profile: choose a profile with mfa_serial with --profile NAME, or "
                "pass --no-mfa for a session without MFA from the environment's keys."
            )
        raise ConfigurationError(
            f"Profile {quote(chain.name)} (and its source profiles) name no mfa_serial: its "
            "credentials would come without MFA. Add mfa_serial = arn:aws:iam::<account>:mfa/"
            "<device> to the profile, or pass --no-mfa if a session without MFA is what you "
            "want."
        )
    return provider, chain


def chain_of(provider: RefreshEngine) -> list[RefreshEngine]:
    """The provider and every provider it is made from (role, ..., MFA session)."""
    chain = [provider]
    while isinstance(chain[-1], AssumeRoleProvider):
        chain.append(chain[-1].source)
    return chain


async def fresh_enough(provider: RefreshEngine) -> SessionCredentials:
    """Credentials with more than the SDKs' 15-minute window left when their lifetime allows
    (else the SDK would run this again on every call); no refresh is left half-done."""
    creds = await provider.credentials()
    token = provider.token()
    if (
        token is not None
        and token.expires_at - provider.clock() < SDK_WINDOW + MARGIN
        and token.lifetime > SDK_WINDOW + 2 * MARGIN
    ):
        creds = await provider.refresh()
    for member in chain_of(provider):
        await member.settle()
    return creds


def region_for(args: argparse.Namespace, chain: ProfileChain) -> str | None:
    """The region for the command, as the AWS CLI decides it: ``--region``, else a region
    already in the environment (``AWS_REGION``, ``AWS_DEFAULT_REGION``), else the named
    profile's, else its source profile's."""
    region: str | None = (
        getattr(args, "region", None)
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or chain.region
        or chain.source_region
    )
    return region


def env_for(creds: SessionCredentials, region: str | None) -> dict[str, str]:
    """The environment variables every SDK reads for ``creds`` (and the region)."""
    return credential_env(
        creds.access_key_id,
        creds.secret_access_key,
        creds.session_token,
        creds.expiration,
        region,
    )
