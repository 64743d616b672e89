"""What the command line prints for ``credential-process`` and ``env``: one implementation for
the full path and the warm path, so both print exactly the same."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as _dt

__all__ = [
    "POWERSHELL_QUOTES",
    "credential_env",
    "credential_process_json",
    "iso",
    "iso_text",
    "quote_for",
    "render_env",
]

#: PowerShell treats these as single quotes too (U+2018, U+2019, U+201A, U+201B); each is
#: escaped, like ``'``, by doubling it.
POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"


def iso(expiration: _dt.datetime | str) -> str:
    """An aware datetime, or its ``isoformat()``, as the SDKs' ``Expiration``: UTC, to the
    second, with ``Z``."""
    if isinstance(expiration, str):
        return iso_text(expiration)
    import datetime as _dt

    return expiration.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_text(text: str) -> str:
    """``iso`` for a UTC ``isoformat()`` text as the cache stores it, without importing
    ``datetime`` (the warm path's ~2 ms): ``2026-11-30T21:00:00[.123456]+00:00``."""
    if len(text) >= 25 and text[10] == "T" and text.endswith("+00:00"):
        return text[:19] + "Z"
    if len(text) == 20 and text[10] == "T" and text.endswith("Z"):
        return text
    import datetime as _dt

    return iso(_dt.datetime.fromisoformat(text))


def credential_process_json(
    access_key_id: str,
    secret_access_key: str,
    session_token: str,
    expiration: _dt.datetime | str,
) -> str:
    """``credential_process`` output, version 1, with a newline."""
    output = {
        "Version": 1,
        "AccessKeyId": access_key_id,
        "SecretAccessKey": secret_access_key,
        "SessionToken": session_token,
        "Expiration": iso(expiration),
    }
    return json.dumps(output) + "\n"


def credential_env(
    access_key_id: str,
    secret_access_key: str,
    session_token: str,
    expiration: _dt.datetime | str,
    region: str | None,
) -> dict[str, str]:
    """The environment variables every SDK reads for these credentials (and the region)."""
    env = {
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_SESSION_TOKEN": session_token,
        "AWS_CREDENTIAL_EXPIRATION": iso(expiration),
    }
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    return env


def quote_for(value: str, style: str) -> str:
    """``value`` quoted for the shell ``style`` (``sh``, ``fish``, ``powershell``)."""
    if style == "fish":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if style == "powershell":
        return "'" + "".join(c * 2 if c in POWERSHELL_QUOTES else c for c in value) + "'"
    import shlex

    return shlex.quote(value)


def render_env(env: dict[str, str], style: str) -> str:
    """``env`` as the commands that set it in ``style``, or as JSON."""
    if style == "json":
        return json.dumps(env, indent=2) + "\n"
    if style == "fish":
        return "".join(f"set -gx {k} {quote_for(v, 'fish')};\n" for k, v in env.items())
    if style == "powershell":
        return "".join(f"$Env:{k} = {quote_for(v, 'powershell')}\n" for k, v in env.items())
    return "".join(f"export {k}={quote_for(v, 'sh')}\n" for k, v in env.items())
