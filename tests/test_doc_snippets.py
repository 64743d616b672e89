"""Every Python snippet in the README and the documentation runs, as a reader would paste it:
against moto (STS and S3, server mode on 127.0.0.1) with the profiles the pages name, an MFA
"UI" that answers, and a keyring backend in a temporary home. A snippet that stopped matching
the code (a renamed argument, a value the code refuses) fails here."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)

#: What the pages say their snippets assume: your MFA callback ``ask`` and UI ``my_ui``, a
#: ``cache``, ``AioSession``. Each snippet's own definitions replace these.
PRELUDE = """
import asyncio, os
from aiobotocore.session import AioSession
import aio_sts_session as ass
from aio_sts_session import MemoryCache, MfaRequest, SessionTokenProvider

class _UI:
    async def prompt(self, text):
        return "123456"

my_ui = _UI()

async def ask(request):
    return "123456"

cache = MemoryCache()
"""

CONFIG = """[default]
region = us-east-1
[profile alice]
mfa_serial = arn:aws:iam::123456789012:mfa/alice
region = us-east-1
[profile work]
mfa_serial = arn:aws:iam::123456789012:mfa/alice
region = us-east-1
[profile base]
mfa_serial = arn:aws:iam::123456789012:mfa/alice
region = us-east-1
[profile team]
mfa_serial = arn:aws:iam::123456789012:mfa/alice
region = us-east-1
aio_sts_session = true
mfa_process = echo 123456
"""
CREDENTIALS = "".join(
    f"[{name}]\naws_access_key_id = AKIAEXAMPLESNIPPET01\naws_secret_access_key = secret\n"
    for name in ("default", "alice", "work", "base", "team")
)


def snippets() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, code in enumerate(BLOCK.findall(page.read_text()), 1):
            found.append((f"{page.relative_to(ROOT)}#{number}", code))
    return found


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_the_pages_have_snippets() -> None:
    assert len(snippets()) >= 8


@pytest.mark.parametrize(("where", "code"), snippets(), ids=[w for w, _ in snippets()])
def test_every_snippet_runs(where: str, code: str, moto_url: str, tmp_path: Path) -> None:
    if "aioboto3" in code and importlib.util.find_spec("aioboto3") is None:
        pytest.skip("aioboto3 is not installed here (CI's Python 3.10 job has it)")
    if "aws_sdk" in code and (
        sys.version_info < (3, 12) or importlib.util.find_spec("aws_sdk_dynamodb") is None
    ):
        pytest.skip("the new AWS SDK is not installed here (CI's Python 3.13 job has it)")
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(CONFIG)
    (home / ".aws" / "credentials").write_text(CREDENTIALS)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "AWS_ENDPOINT_URL": moto_url,  # STS and S3 alike
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "MY_SERVICE_CACHE_KEY": "vWB2J0oFm7l7yEJq3P5HuJMDs-1cXJkG4j2W6aPZ7mA=",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + "\n" + code],
        input="123456\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, f"{where}:\n{result.stderr[-3000:]}"
