"""An MFA command for the CLI tests: prints the fake STS device's next unused code and logs it
(so tests count prompts). Reads FAKE_TOTP_SECRET, FAKE_NOW (the fake's clock) and FAKE_MFA_LOG."""

import os
import pathlib

import pyotp

secret = os.environ["FAKE_TOTP_SECRET"]
now = float(os.environ["FAKE_NOW"])
log = pathlib.Path(os.environ["FAKE_MFA_LOG"])
used = log.read_text().split() if log.exists() else []
totp = pyotp.TOTP(secret)
code = next(c for c in (totp.at(now + 30 * k) for k in (0, 1, -1)) if c not in used)
log.write_text(" ".join([*used, code]))
style = os.environ.get("FAKE_MFA_STYLE", "")
if style == "plain":  # as a person types it into a dialog
    print(code)
elif style == "spaced":  # as an authenticator app shows it
    print(f"{code[:3]} {code[3:]}")
else:
    print(f"code: {code}")

report = os.environ.get("FAKE_MFA_REPORT")
if report:  # what this command could see of the process that ran it
    import json

    limits = pathlib.Path(f"/proc/{os.getppid()}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    pathlib.Path(report).write_text(
        json.dumps(
            {
                "cache_key_seen": "AIO_STS_SESSION_CACHE_KEY" in os.environ,
                "parent_core_soft_limit": core.split()[4],
            }
        )
    )
