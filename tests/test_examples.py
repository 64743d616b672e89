"""The examples at least start: imports resolve and the usage text is shown without arguments.
(The quick start runs in full in CI; the others need a real AWS account.)"""

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
