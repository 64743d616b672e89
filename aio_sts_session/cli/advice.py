"""What the command line says to do, in its own words: flags, profile settings, environment
variables, files; never a Python argument or method.

The library's errors (and a few log records) carry what happened (``what``) and a ``topic``
naming the situation (see :mod:`.exceptions`); this module holds the command line's advice for
each topic. An error without a topic is printed as the library wrote it.
"""

from __future__ import annotations

import logging
import os

from .._text import printable
from ..exceptions import StsSessionError

__all__ = ["ADVICE", "AdviceFormatter", "UsageError", "describe", "one_line"]


class UsageError(StsSessionError):
    """A command line that cannot work (exit status 2)."""


#: The command line's advice, by topic. ``{name}`` is filled from the error's ``facts``.
ADVICE = {
    "mfa.rejected": (
        "STS refused every code: check that mfa_serial in the profile names the device the codes "
        "come from and that the device's clock is right (a code is accepted only once), then "
        "run the command again."
    ),
    "mfa.malformed": (
        "The answers were not six-digit codes: check --mfa-command or mfa_process (run it by "
        "hand: it must print the code), then run the command again."
    ),
    "mfa.timeout": (
        "Answer sooner, or allow more time with --mfa-timeout SECONDS (a command's default is "
        "60 s)."
    ),
    "mfa.callback_failed": "Check --mfa-command or mfa_process (run it by hand).",
    "sts.unavailable": ("Check network access to {endpoint} ({origin}) and run the command again."),
    "source.missing": (
        "Add the IAM user's keys (aws_access_key_id, aws_secret_access_key) to "
        "~/.aws/credentials under the profile's name, or choose a profile that has them with "
        "--profile (or AWS_PROFILE)."
    ),
    "source.temporary": (
        "Unset AWS_SESSION_TOKEN (and the keys that came with it), or choose a profile with an "
        "IAM user's long-term keys with --profile."
    ),
    "cache.undecryptable": (
        "If the cache key changed (AIO_STS_SESSION_CACHE_KEY, the OS keyring or the key file), "
        "entries written with the old one cannot be read: it is replaced at the next refresh."
    ),
}


def _endpoint_origin(endpoint: str) -> str:
    """Where the STS endpoint came from, in the command line's terms."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        if os.environ.get("AWS_ENDPOINT_URL_STS"):
            return "from AWS_ENDPOINT_URL_STS"
        if os.environ.get("AWS_ENDPOINT_URL"):
            return "from AWS_ENDPOINT_URL"
    if "amazonaws.com" in endpoint:
        return "AWS's endpoint for the profile's region: region in the profile, or AWS_REGION"
    return "from the profile's endpoint settings: endpoint_url, or sts in its services section"


def advise(topic: str | None, facts: dict[str, str]) -> str | None:
    """The command line's advice for ``topic``, or ``None`` if it has none."""
    template = ADVICE.get(topic or "")
    if template is None:
        return None
    values = dict(facts)
    if topic == "sts.unavailable":
        values.setdefault("origin", _endpoint_origin(values.get("endpoint", "")))
    try:
        return template.format(**values)
    except (KeyError, IndexError):
        return None


def describe(exc: BaseException) -> str:
    """One line for ``exc``: what happened and the command line's advice, or the library's
    message when the command line has no advice of its own."""
    if isinstance(exc, StsSessionError):
        advice = advise(exc.topic, exc.facts)
        if advice is not None:
            return one_line(f"{exc.what} {advice}")
    return one_line(str(exc))


def one_line(message: object) -> str:
    """``message`` on one line, safe to print: whitespace runs become one space and control
    characters (from a config file, the environment) are shown escaped."""
    return printable(" ".join(str(message).split()))


class AdviceFormatter(logging.Formatter):
    """Log records that carry a ``topic`` (and ``what``) get the command line's advice."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        advice = advise(getattr(record, "topic", None), {})
        what = getattr(record, "what", None)
        if advice is not None and what is not None:
            record.message = f"{what} {advice}"
        return printable(super().formatMessage(record))
