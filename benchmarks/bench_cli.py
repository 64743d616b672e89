"""Command-line benchmarks (issue 8): what ``credential_process`` adds to an AWS tool's start.

    python benchmarks/bench_cli.py [--quick]

botocore runs the credential process once per process start of the tool (the AWS CLI runs a
new process per command), so its warm run, served from the encrypted cache, is the figure
that matters. Baseline, in the same run: ``python -c "import botocore.session"``, the floor
any Python credential helper pays (interpreter start plus botocore). Also shown: a role
profile's warm run, and the first (cold) run against a local STS with a 0 ms answer.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402

from tests.fake_sts import FakeSts  # noqa: E402

SERIAL = "arn:aws:iam::123456789012:mfa/bench"
KEY, SECRET = "AKIABENCHMARK0000001", "bench-secret"
RUNS = 3 if "--quick" in sys.argv else 15


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    totp_secret = pyotp.random_base32()
    fake = FakeSts(time.time, users={KEY: SECRET}, devices={SERIAL: totp_secret})
    fake.add_role("bench")
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result()
    home = Path(tempfile.mkdtemp())
    (home / "config").write_text(
        f"[profile base]\nmfa_serial = {SERIAL}\nregion = us-east-1\nservices = local\n"
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/bench\nsource_profile = base\n"
        f"[services local]\nsts =\n  endpoint_url = {fake.url}\n"
    )
    (home / "credentials").write_text(
        f"[base]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config.d"),
        "XDG_CACHE_HOME": str(home / "cache.d"),
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    code = pyotp.TOTP(totp_secret).now()

    def cli(profile: str) -> list[str]:
        return [
            sys.executable, "-m", "aio_sts_session", "credential-process",
            "--profile", profile, "--mfa-command", f"echo {code}",
        ]  # fmt: skip

    fake.single_use_codes = False  # the benchmark types the same code
    cold = timed(cli("base"), env)
    timed(cli("role"), env)  # fills the role's entry
    calls = len(fake.calls)
    assert calls == 3, fake.calls  # GetCallerIdentity + GetSessionToken, then one AssumeRole
    baseline, warm, role = [], [], []
    for _ in range(RUNS):  # interleaved, so drift on this machine hits all three alike
        baseline.append(timed([sys.executable, "-c", "import botocore.session"]))
        warm.append(timed(cli("base"), env))
        role.append(timed(cli("role"), env))
    assert len(fake.calls) == calls, "a warm run called STS"
    base = statistics.median(baseline)
    print(f"credential-process, median of {RUNS} runs (baseline: python + import botocore)")
    print(f"  baseline                      {base * 1000:7.0f} ms")
    for name, runs in (("warm, session profile", warm), ("warm, role profile", role)):
        median = statistics.median(runs)
        print(f"  {name:<29} {median * 1000:7.0f} ms  {median / base:5.2f}x baseline")
    print(f"  cold (prompt + 2 STS calls)   {cold * 1000:7.0f} ms  (one run)")
    print(f"  STS calls in the {2 * RUNS} warm runs: {len(fake.calls) - calls}")


if __name__ == "__main__":
    main()
