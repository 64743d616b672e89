"""The entry point the new AWS SDK's default credential chain loads, in every program of an
environment where this package is installed (group ``smithy_aws_core.identity.chain_providers``).

It must never break a program that does not use this library. So it imports smithy only when
the chain asks it something, and when :mod:`.aws_sdk` cannot be loaded (a smithy minor this
version was not tested with), the link it returns stays out of every profile's way, except a
profile that opted in (``aio_sts_session = true``): that one fails with a message naming the
fix, rather than falling through to the profile's long-term keys without MFA.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["OPT_IN", "ChainProvider", "Unavailable", "chain_provider", "opted_in"]

#: The profile setting that puts this library in the SDK's default chain for that profile.
OPT_IN = "aio_sts_session"

_TRUE = ("true", "yes", "1", "on")


def opted_in(config: Any, profile: str | None) -> bool:
    """Whether ``profile`` says ``aio_sts_session = true`` in the SDK's merged configuration."""
    if config is None or profile is None:
        return False
    return str(config.get(profile, OPT_IN) or "").strip().lower() in _TRUE


def chain_provider() -> ChainProvider:
    """The link: :class:`ChainProvider`, or one that only refuses the profiles that opted in
    when this version cannot work with the installed SDK."""
    try:
        from smithy_aws_core.identity.chain import Before, StandardProvider

        from .aws_sdk import resolver_for  # noqa: F401 - it loads: an SDK this version knows

        Before(slot=StandardProvider.PROFILE_ASSUME_ROLE)  # the API this link is made for
        return ChainProvider()
    except Exception as exc:  # an ImportError, or an AttributeError of a changed API
        return Unavailable(exc)


class ChainProvider:
    """A link in the SDK's default credential chain (installing this package registers it for
    the entry point group ``smithy_aws_core.identity.chain_providers``), placed before the
    profile's role and static-key slots.

    Opt-in, profile by profile: it takes part only for a profile that says
    ``aio_sts_session = true`` in ``~/.aws/config``; every other profile, and every client of
    the environment, is untouched. For such a profile, ``profile="work"`` alone gets an MFA
    session: the provider :func:`~aio_sts_session.from_profile` makes (a role profile's role
    on the MFA session), on the shared encrypted cache of the command line (one code for this
    program and every other tool), asking for codes with the profile's ``mfa_process``, else
    on the controlling terminal. One provider per profile serves every client of the process,
    for the process's lifetime.
    """

    @property
    def name(self) -> str:
        return "AioStsSession"

    @property
    def ordering(self) -> Any:
        from smithy_aws_core.identity.chain import Before, StandardProvider

        return Before(slot=StandardProvider.PROFILE_ASSUME_ROLE)

    async def setup(self, identity_type: type[Any], setup: Any) -> None:
        from smithy_aws_core.identity import AWSCredentialsIdentity

        from .aws_sdk import resolver_for

        profile = setup.profile_name
        if identity_type is not AWSCredentialsIdentity or not opted_in(setup.config_file, profile):
            return
        setup.add_terminal_resolver(resolver_for(profile))


class Unavailable(ChainProvider):
    """The link when this version cannot work with the installed SDK: it stays out of every
    profile's way but refuses those that opted in."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def setup(self, identity_type: type[Any], setup: Any) -> None:
        profile = setup.profile_name
        if not opted_in(setup.config_file, profile):
            return
        raise ConfigurationError(
            f"Profile {profile!r} asks for an MFA session (aio_sts_session = true), but this "
            f"version of aio-sts-session cannot work with the installed AWS SDK "
            f"({type(self.error).__name__}: {self.error}): install the SDK versions it was "
            "tested with (pip install 'aio-sts-session[aws-sdk]') or upgrade aio-sts-session."
        )
