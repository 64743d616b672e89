"""Every figure the README and the documentation quote is the benchmarks' saved output
(``docs/benchmarks/``), copied by ``docs/figures.py``: a page that disagrees with the output,
or a measured figure typed by hand outside the markers, fails here."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("figures", ROOT / "docs" / "figures.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_both_pythons_have_a_saved_run(figures: ModuleType) -> None:
    runs = figures.load()
    assert {"3.11", "3.13"} <= set(runs)
    assert set(runs["3.11"]) >= {"provider", "cache", "week", "cli"}
    assert "aws_sdk" in runs["3.13"]  # the new AWS SDK: Python 3.12+


def test_every_page_says_what_the_saved_output_says(figures: ModuleType) -> None:
    runs = figures.load()
    found = figures.values(runs)
    blocks = figures.tables(runs, found)
    for page in figures.PAGES:
        text = page.read_text()
        assert figures.render(text, found, blocks, page.name) == text, (
            f"{page.relative_to(ROOT)}: figures out of date (python docs/figures.py)"
        )


def test_a_changed_figure_is_caught(figures: ModuleType) -> None:
    runs = figures.load()
    found = figures.values(runs)
    blocks = figures.tables(runs, found)
    page = "speed <!-- fig provider.hit.ratio -->9.99x<!-- /fig -->\n"
    assert figures.render(page, found, blocks) != page
    with pytest.raises(KeyError, match="no figure"):
        figures.render("<!-- fig provider.nothing.ratio -->1x<!-- /fig -->", found, blocks)


#: A measured figure: a duration, or a ratio with decimals; not a target ("≤ 4x", "< 2 ms").
MEASURED = re.compile(r"(?<![≤<] )(?<![≤<])\b\d[\d.,]*\s?(?:ms|µs)\b|(?<![≤<] )\b\d+\.\d+x\b")


def test_no_measured_figure_is_typed_by_hand(figures: ModuleType) -> None:
    for page in figures.PAGES:
        text = figures.BLOCK.sub("", figures.INLINE.sub("", page.read_text()))
        text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code: timeouts, not figures
        typed = MEASURED.findall(text)
        # Two fixed costs of the examples, not measurements: a 50 ms and a 200 ms fake STS.
        typed = [t for t in typed if t.replace(" ", "") not in ("50ms", "200ms")]
        assert not typed, f"{page.relative_to(ROOT)}: {typed} (use <!-- fig KEY -->)"


def test_no_line_starts_with_a_figure() -> None:
    """Markdown reads a line that starts with an HTML comment as the start of an HTML block
    (the rest of the paragraph is then not Markdown): a figure sits mid-line."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            assert not line.lstrip().startswith("<!-- fig "), f"{page.name}:{number}"
