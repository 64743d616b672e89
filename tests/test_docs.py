"""The documentation: a short README whose every link resolves, and a reference that covers
every public name and every subcommand (the site itself is built by `mkdocs build --strict`
in CI)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import aio_sts_session

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_a_short_landing_page() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200


def test_every_link_in_the_readme_resolves() -> None:
    text = (ROOT / "README.md").read_text()
    links = LINK.findall(text)
    assert links
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        target = (ROOT / link.split("#")[0]).resolve()
        assert target.exists(), link


def test_every_page_the_readme_names_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for link in LINK.findall((ROOT / "README.md").read_text()):
        if link.startswith("docs/") and link.endswith(".md"):
            assert link.removeprefix("docs/") in nav, link


def test_every_public_name_is_in_the_api_reference() -> None:
    api = (ROOT / "docs" / "reference" / "api.md").read_text()
    documented = set(re.findall(r"^::: aio_sts_session\.(\w+)$", api, re.MULTILINE))
    assert set(aio_sts_session.__all__) - {"__version__"} <= documented


def test_every_subcommand_is_in_the_command_line_reference() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from hooks import cli_reference
    finally:
        sys.path.pop(0)
    reference = cli_reference()
    for command in ("credential-process", "env", "exec", "status", "add", "remove", "rotate",
                    "cache clear"):  # fmt: skip
        assert f"## aio-sts-session {command}\n" in reference, command
    assert "/home/you/.cache/aio-sts-session" in reference  # no path of the building machine


def test_the_examples_in_the_public_docstrings_run() -> None:
    import doctest

    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    tried = 0
    for name in sorted(set(aio_sts_session.__all__) - {"__version__"}):
        obj = getattr(aio_sts_session, name)
        globs = {**vars(aio_sts_session), name: obj}
        for test in finder.find(obj, name, module=False, globs=globs):
            result = runner.run(test)
            assert result.failed == 0, name
            tried += result.attempted
    assert tried >= 3
