"""The examples at least start: imports resolve and the usage text is shown without arguments.
(The quick start runs in full in CI, the roles example here; the others need a real AWS
account.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("name", ["terminal_prompt.py", "aioboto3_session.py"])
def test_example_shows_usage_without_arguments(name: str) -> None:
    if name.startswith("aioboto3") and importlib.util.find_spec("aioboto3") is None:
        pytest.skip("aioboto3 is installed in the Python 3.10 CI job")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "python examples/" + name in result.stderr


def test_the_roles_example_runs_in_full() -> None:
    """examples/roles.py on moto: three codes for two profiles, five roles and an 8-hour role."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "roles.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "5 roles, 1 prompt for all of them" in result.stdout
    assert "3 codes typed" in result.stdout


def test_the_web_service_example_runs_and_its_how_to_quotes_its_output() -> None:
    """examples/web_service.py: a chat-ops approval, keep_fresh and max_wait over six
    simulated hours; the how-to quotes exactly the line it prints."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "web_service.py")], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert ", 0 other errors;" in line
    how_to = (EXAMPLES.parent / "docs" / "how-to" / "web-service.md").read_text()
    quoted = how_to.split("<!-- example-output: web_service -->")[1].split("```")[1].strip()
    assert quoted == line
