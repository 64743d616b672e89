"""Command-line benchmarks (issues 8 and 15): what ``credential_process`` adds to every start
of an AWS tool.

    python benchmarks/bench_cli.py [--quick] [--json]

botocore runs the credential process once per process start of the tool (the AWS CLI runs a
new process per command), so the warm run, served from the encrypted cache, is the figure that
matters. It runs the installed console script as a user has it: a virtual environment made for
the benchmark, with this project installed from a wheel (not editable: an editable install's
import hook alone costs ~15 ms) and its dependencies taken from the current environment.

Side by side in the same run, interleaved (A B C A B C ...), medians:

- the floor: ``python -I -c pass`` in that environment;
- awsume's warm run (``awsumepy PROFILE -s``), a Python peer that keeps MFA sessions in plain
  text, installed in that environment, with moto (server mode, 127.0.0.1) as its STS;
- our warm run: key from a key file, from ``AIO_STS_SESSION_CACHE_KEY``, from the keyring
  (``keyrings.alt``'s file backend: importing ``keyring`` is the cost), and a role profile.

Targets (issue 15): warm ``credential-process`` <= 4x the floor and <= 0.3x awsume's warm run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402

from aio_sts_session.testing import FakeSts  # noqa: E402

SERIAL = "arn:aws:iam::123456789012:mfa/bench"
KEY, SECRET = "AKIABENCHMARK0000001", "bench-secret"
QUICK = "--quick" in sys.argv
RUNS = 3 if QUICK else 21


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def bench_environment(where: Path) -> Path:
    """A virtual environment with this project installed from a wheel, the current
    environment's packages visible behind it, and awsume and keyrings.alt installed."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "_bench_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    wheels = where / "wheels"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [str(python), "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    subprocess.run([*pip, "--no-deps", *map(str, wheels.glob("*.whl"))], check=True)
    subprocess.run([*pip, "awsume", "keyrings.alt"], check=True, capture_output=True)
    return where / "bin"


def start_fake() -> tuple[FakeSts, str]:
    totp_secret = pyotp.random_base32()
    fake = FakeSts(time.time, users={KEY: SECRET}, devices={SERIAL: totp_secret})
    fake.add_role("bench")
    fake.single_use_codes = False  # the benchmark types the same code
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result()
    return fake, pyotp.TOTP(totp_secret).now()


def write_files(home: Path, fake_url: str, moto_url: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config").write_text(
        f"[profile base]\nmfa_serial = {SERIAL}\nregion = us-east-1\nservices = local\n"
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/bench\nsource_profile = base\n"
        f"[services local]\nsts =\n  endpoint_url = {fake_url}\n"
        # awsume's profile: the same kind of MFA session, against moto
        f"[profile awsbase]\nmfa_serial = {SERIAL}\nregion = us-east-1\n"
    )
    (home / "credentials").write_text(
        f"[base]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
        f"[awsbase]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
    )


def environment(home: Path, bin_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        **extra,
    }


def main() -> None:
    from moto.server import ThreadedMotoServer

    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    bin_dir = bench_environment(work / "venv")
    fake, code = start_fake()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    moto_url = f"http://127.0.0.1:{moto._server.server_port}"
    cache_key = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "from aio_sts_session._entry import generate_key as g; print(g())",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    setups = {
        "key file": environment(work / "home-file", bin_dir),
        "environment key": environment(
            work / "home-env", bin_dir, AIO_STS_SESSION_CACHE_KEY=cache_key
        ),
        "keyring": environment(
            work / "home-keyring",
            bin_dir,
            PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        ),
    }
    for env in setups.values():
        write_files(Path(env["HOME"]), fake.url, moto_url)
    script = str(bin_dir / "aio-sts-session")

    def ours(profile: str) -> list[str]:
        return [script, "credential-process", "--profile", profile, "--mfa-command", f"echo {code}"]

    awsume_env = {**setups["key file"], "AWS_ENDPOINT_URL_STS": moto_url}
    cold = timed(ours("base"), setups["key file"])
    for env in setups.values():  # fill every cache, and write every warm record
        timed(ours("base"), env)
        timed(ours("role"), env)
    awsume = str(bin_dir / "awsumepy")
    timed([awsume, "awsbase", "--mfa-token", "123456", "-s"], awsume_env)  # awsume's cache
    calls = len(fake.calls)

    python = str(bin_dir / "python")
    aead = "from cryptography.hazmat.primitives.ciphers.aead import AESGCM"
    # key -> (what the docs call it, the command, its environment)
    commands: dict[str, tuple[str, list[str], dict[str, str]]] = {
        "floor": ("floor: python -I -c pass", [python, "-I", "-c", "pass"], awsume_env),
        "aesgcm": ("floor + importing AES-GCM", [python, "-I", "-c", aead], awsume_env),
        "awsume": ("awsume warm (awsumepy -s)", [awsume, "awsbase", "-s"], awsume_env),
        "key_file": ("ours, key file", ours("base"), setups["key file"]),
        "role": ("ours, role profile", ours("role"), setups["key file"]),
        "env_key": ("ours, environment key", ours("base"), setups["environment key"]),
        "keyring": ("ours, keyring", ours("base"), setups["keyring"]),
    }
    times: dict[str, list[float]] = {key: [] for key in commands}
    for _ in range(RUNS):  # interleaved: drift on this machine hits every command alike
        for key, (_, argv, env) in commands.items():
            times[key].append(timed(argv, env))
    assert len(fake.calls) == calls, "a warm run called STS"
    moto.stop()

    floor = times["floor"]
    peer = times["awsume"]
    rows = []
    for key, runs in times.items():
        median = statistics.median(runs)
        vs_floor = [a / b for a, b in zip(runs, floor, strict=True)]
        vs_peer = [a / b for a, b in zip(runs, peer, strict=True)]
        rows.append(
            {
                "key": key,
                "name": commands[key][0],
                "median_ms": round(median * 1000, 1),
                "min_ms": round(min(runs) * 1000, 1),
                "max_ms": round(max(runs) * 1000, 1),
                "x_floor": round(median / statistics.median(floor), 2),
                "x_floor_range": [round(min(vs_floor), 2), round(max(vs_floor), 2)],
                "x_awsume": round(median / statistics.median(peer), 2),
                "x_awsume_range": [round(min(vs_peer), 2), round(max(vs_peer), 2)],
            }
        )
    shutil.rmtree(work, ignore_errors=True)
    if "--json" in sys.argv:
        print(
            json.dumps(
                {
                    "benchmark": "cli",
                    "python": sys.version.split()[0],
                    "runs": RUNS,
                    "rows": rows,
                    "cold_ms": cold * 1000,
                }
            )
        )
        return
    print(f"warm credential-process, medians of {RUNS} interleaved runs (ratios: of the medians;")
    print("in brackets, the range of the run-by-run ratios)")
    print(f"  {'':<28} {'median':>8}   {'x floor':>18}   {'x awsume warm':>18}")
    for row in rows:
        print(
            f"  {row['name']:<28} {row['median_ms']:6.1f} ms   "
            f"{row['x_floor']:5.2f} [{row['x_floor_range'][0]:.2f}-{row['x_floor_range'][1]:.2f}]"
            f"   {row['x_awsume']:5.2f} [{row['x_awsume_range'][0]:.2f}-"
            f"{row['x_awsume_range'][1]:.2f}]"
        )
    print(f"  cold (prompt + 2 STS calls): {cold * 1000:.0f} ms (one run)")
    print(f"  STS calls in the warm runs: {len(fake.calls) - calls}")


if __name__ == "__main__":
    main()
