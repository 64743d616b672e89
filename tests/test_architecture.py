"""The layout: the library never imports the command line, no import runs back up a layer,
and the architecture page names every module of the tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "aio_sts_session"
PAGE = PACKAGE.parent / "docs" / "explanation" / "architecture.md"

#: The layers, bottom up (docs/explanation/architecture.md).
LAYERS = [
    {"exceptions", "_models", "_clock", "_text", "_procs", "_log", "_version"},
    {"_policy"},
    {"_flight", "_cache", "_entry", "_cachekey", "_keys", "_profiles", "_botoconfig", "_sts",
     "_mfa", "_callbacks", "_config", "_rolesession", "_signin"},
    {"integrations.aiobotocore"},
    {"_engine", "_keeper", "_events"},
    {"_provider", "_role", "_codes"},
    {"integrations.aws_sdk", "integrations.aws_sdk_chain", "aws_sdk"},
    {"testing._fake_sts", "testing._clock"},
]  # fmt: skip


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        found[name] = path
    return found


def imported(name: str, path: Path) -> set[str]:
    """The package modules ``name`` imports (relative imports resolved)."""
    package = name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            stem = [*base, *(node.module.split(".") if node.module else [])]
            targets.add(".".join(stem))
            targets.update(".".join([*stem, alias.name]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aio_sts_session"):
            targets.add(node.module.removeprefix("aio_sts_session").lstrip("."))  # type: ignore[union-attr]
    return {t for t in targets if t in modules()}


def layer(name: str) -> int | None:
    for index, members in enumerate(LAYERS):
        if name in members:
            return index
    return None


def test_no_library_module_imports_the_command_line() -> None:
    for name, path in modules().items():
        if name.startswith("cli") or name == "__main__":
            continue
        offenders = {t for t in imported(name, path) if t == "cli" or t.startswith("cli.")}
        assert not offenders, f"{name} imports {offenders}"


def test_no_import_runs_back_up_a_layer() -> None:
    for name, path in modules().items():
        mine = layer(name)
        if mine is None:
            continue
        for target in imported(name, path):
            theirs = layer(target)
            assert theirs is None or theirs <= mine, f"{name} (layer {mine}) imports {target}"


def test_importing_and_using_the_library_loads_nothing_of_the_command_line() -> None:
    code = (
        "import sys, aio_sts_session as a\n"
        "p = a.SessionTokenProvider(mfa_serial='arn:aws:iam::123456789012:mfa/x',\n"
        "    mfa_callback=lambda r: '123456', region_name='us-east-1')\n"
        "a.EncryptedFileCache.generate_key(); repr(p); a.from_profile\n"
        "print(sorted(m for m in sys.modules if m.startswith('aio_sts_session.cli')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_architecture_page_names_every_module() -> None:
    page = PAGE.read_text()
    for name, path in modules().items():
        if path.name in ("__init__.py", "__main__.py"):
            continue
        shown = "/".join(name.split(".")) + ".py"
        assert f"`{shown}`" in page, shown
    for members in LAYERS:
        for name in members:
            assert name.split(".")[-1] in page, name
