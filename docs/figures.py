"""Every figure the README and the documentation quote, from one place: the benchmarks' own
``--json`` output, saved in ``docs/benchmarks/<python>/<benchmark>.json``.

    python docs/figures.py --run      # run every benchmark with this interpreter (~15 min),
                                      # save its output, then rewrite the pages
    python docs/figures.py            # rewrite the pages from the saved output
    python docs/figures.py --check    # exit 1 if a page differs from what the output says
                                      # (tests/test_figures.py runs this)

In the pages, a figure sits between markers and is never typed by hand:

- ``<!-- fig KEY -->…<!-- /fig -->``: one value, e.g. ``cli.key_file.x_floor`` (Python 3.11,
  the reference run) or ``provider.hit.summary@3.13``;
- ``<!-- figures TABLE -->`` … ``<!-- /figures -->`` on lines of their own: a whole table
  (``readme``, ``benchmarks``).

``python docs/figures.py --keys`` lists every key with its value.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "benchmarks"
#: The pages that quote figures.
PAGES = [ROOT / "README.md", *sorted(HERE.rglob("*.md"))]
#: The reference run: what a key without ``@python`` means, and what the plots draw.
REFERENCE = "3.11"
BENCHMARKS = ("provider", "cache", "week", "cli", "aws_sdk")

INLINE = re.compile(r"<!-- fig (?P<key>[\w.@]+) -->(?P<text>.*?)<!-- /fig -->", re.DOTALL)
BLOCK = re.compile(
    r"(?P<open><!-- figures (?P<name>\w+) -->\n)(?P<text>.*?)(?P<close><!-- /figures -->)",
    re.DOTALL,
)


# -- running the benchmarks ------------------------------------------------------------------


def run_benchmarks() -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    where = DATA / python
    where.mkdir(parents=True, exist_ok=True)
    for name in BENCHMARKS:
        print(f"running benchmarks/bench_{name}.py --json (Python {python}) …", file=sys.stderr)
        out = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / f"bench_{name}.py"), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        last = out.splitlines()[-1] if out else ""
        if not last.startswith("{"):
            print(f"  skipped: {last}", file=sys.stderr)
            continue
        (where / f"{name}.json").write_text(last + "\n")


# -- the saved output, as text ---------------------------------------------------------------


def load() -> dict[str, dict[str, Any]]:
    """``{"3.11": {"provider": {...}, ...}, "3.13": {...}}``."""
    runs: dict[str, dict[str, Any]] = {}
    for path in sorted(DATA.glob("*/*.json")):
        runs.setdefault(path.parent.name, {})[path.stem] = json.loads(path.read_text())
    return runs


def ratio(value: float) -> str:
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.3f}x" if value < 0.1 else f"{value:.2f}x"


def span(lo: float, hi: float) -> str:
    """A range of ratios: ``2.31–2.74x`` (one figure when both ends read the same)."""
    low, high = ratio(lo), ratio(hi)
    return high if low == high else f"{low[:-1]}–{high}"


def duration(value: float, unit: str) -> str:
    if unit == "us":
        return f"{value:.2f} µs" if value < 10 else f"{value:,.0f} µs"
    if value < 1:
        return f"{value:.3f} ms"
    return f"{value:.1f} ms" if value < 10 else f"{value:,.0f} ms"


def kilobytes(value: float) -> str:
    return f"{value / 1024:.1f} KB"


def values(runs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every quotable figure, by key (``bench.row.field@python``)."""
    out: dict[str, str] = {}
    for python, benches in runs.items():

        def put(key: str, text: object, python: str = python) -> None:
            out[f"{key}@{python}"] = str(text)
            if python == REFERENCE:
                out[key] = str(text)

        for bench in ("provider", "aws_sdk"):
            for row in benches.get(bench, {}).get("rows", []):
                k, unit = f"{bench}.{row['key']}", row["unit"]
                lo, hi = row["spread"]
                put(f"{k}.value", duration(row["value"], unit))
                put(f"{k}.baseline", duration(row["baseline"], unit))
                put(f"{k}.ratio", ratio(row["ratio"]))
                put(f"{k}.spread", span(lo, hi))
                put(
                    f"{k}.summary",
                    f"{duration(row['value'], unit)} vs {duration(row['baseline'], unit)}: "
                    f"**{ratio(row['ratio'])}** (rounds {span(lo, hi)})",
                )
                for extra in ("sts_calls", "prompts", "loops", "callers"):
                    if extra in row:
                        put(f"{k}.{extra}", f"{row[extra]:,}")
        cli = benches.get("cli")
        if cli:
            put("cli.runs", cli["runs"])
            put("cli.cold_ms", duration(cli["cold_ms"], "ms"))
            for row in cli["rows"]:
                k = f"cli.{row['key']}"
                put(f"{k}.ms", duration(row["median_ms"], "ms"))
                put(f"{k}.x_floor", ratio(row["x_floor"]))
                put(f"{k}.x_floor_range", span(*row["x_floor_range"]))
                put(f"{k}.x_awsume", ratio(row["x_awsume"]))
                put(f"{k}.x_awsume_range", span(*row["x_awsume_range"]))
        cache = benches.get("cache")
        if cache:
            for field in ("load_ms", "load_async_ms", "load_baseline_ms", "warm_start_ms",
                          "empty_start_ms", "imports_ms"):  # fmt: skip
                put(f"cache.{field}", duration(cache[field], "ms"))
            put("cache.load_ratio", ratio(cache["load_ms"] / cache["load_baseline_ms"]))
            put("cache.runs", cache["runs"])
            for field in ("warm_start", "empty_start"):
                lo, hi = cache[f"{field}_range_ms"]
                put(f"cache.{field}_range", f"{lo:,.0f}–{hi:,.0f} ms")
                put(
                    f"cache.{field}_after_imports_ms",
                    duration(cache[f"{field}_ms"] - cache["imports_ms"], "ms"),
                )
            put("cache.start_ratio", ratio(cache["warm_start_ms"] / cache["empty_start_ms"]))
        week = benches.get("week")
        if week:
            for field, value in week.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    put(f"week.{field}", f"{value:,}")
            for field in ("library_first_day", "library_last_day"):
                put(f"week.{field}_kb", kilobytes(week[field]))
            put("week.renewals", f"{week['prompts'] - 1:,}")
    return out


# -- the tables ------------------------------------------------------------------------------

Cell = Callable[[Callable[[str], str | None]], str]


def cell(template: str) -> Cell:
    """A table cell: ``template`` with ``{key}`` replaced by the run's figures; a dash where
    the run has no such figure (the new AWS SDK's rows before Python 3.12)."""

    def render(get: Callable[[str], str | None]) -> str:
        keys = re.findall(r"\{([\w.]+)\}", template)
        found = {key: get(key) for key in keys}
        if any(value is None for value in found.values()):
            return "—"
        return re.sub(r"\{([\w.]+)\}", lambda m: str(found[m.group(1)]), template)

    return render


README_ROWS: list[tuple[str, Cell]] = [
    (
        "warm `credential-process` vs `python -I -c pass` (≤ 4x)",
        cell(
            "**{cli.key_file.x_floor}** ({cli.key_file.ms} vs {cli.floor.ms}; run by run "
            "{cli.key_file.x_floor_range}); role {cli.role.x_floor}"
        ),
    ),
    (
        "… vs awsume's warm run (≤ 0.3x)",
        cell("**{cli.key_file.x_awsume}** (awsume {cli.awsume.ms}; {cli.key_file.x_awsume_range})"),
    ),
    (
        "… with the key in the OS keyring (importing `keyring`)",
        cell("{cli.keyring.ms}: {cli.keyring.x_floor}, {cli.keyring.x_awsume}"),
    ),
    (
        "a cache hit `await provider.credentials()` vs a bare `await` (≤ 3x)",
        cell("{provider.hit.summary}"),
    ),
    (
        "the signer's per-request call vs `AioRefreshableCredentials` (≤ 0.2x)",
        cell("{provider.signer.summary}"),
    ),
    (
        "one provider, {provider.loops.loops} event loops in threads, all asking at once",
        cell("{provider.loops.sts_calls} STS call, {provider.loops.prompts} prompt"),
    ),
    (
        "the new AWS SDK's `get_identity` vs `await provider.credentials()` (≤ 2x)",
        cell("{aws_sdk.get_identity.summary}"),
    ),
    (
        "a simulated week: {week.tasks} tasks, 12 h tokens, 1% STS faults",
        cell("{week.prompts} prompts, {week.expired_served} expired credentials served"),
    ),
]

BENCHMARK_ROWS: list[tuple[str, Cell]] = [
    (
        "cache hit `await provider.credentials()` vs a bare `await` (≤ 3x)",
        cell("{provider.hit.summary}"),
    ),
    (
        "… with {provider.hit_loops.loops} event loops in threads calling at once, per call (≤ 3x)",
        cell("{provider.hit_loops.summary}"),
    ),
    (
        "signer's per-request call vs `AioRefreshableCredentials` (≤ 0.2x)",
        cell("{provider.signer.summary}"),
    ),
    (
        "{provider.herd.callers} concurrent first callers, 50 ms STS: STS calls; wall vs "
        "({provider.herd.callers} tasks on fresh credentials + 50 ms) (1; ≤ 1.2x)",
        cell("**{provider.herd.sts_calls}**; {provider.herd.summary}"),
    ),
    (
        "… the same with a kept-alive STS connection (`sts_config=AioConfig(connector_args={})`)",
        cell("{provider.herd_keepalive.summary}"),
    ),
    (
        "waking {provider.herd.callers} waiting tasks vs their first steps (task creation included)",
        cell("{provider.wake.summary}"),
    ),
    (
        "{provider.loops.loops} event loops in threads, each with {provider.herd.callers} / "
        "{provider.loops.loops} first callers, 50 ms STS: STS calls, prompts; wall vs on fresh "
        "credentials + 50 ms",
        cell(
            "**{provider.loops.sts_calls}**, **{provider.loops.prompts}**; {provider.loops.summary}"
        ),
    ),
    (
        "prefetch window, 200 ms STS, {provider.herd.callers} callers at once: p50 / p99 / "
        "p99.9 vs on fresh credentials",
        cell(
            "{provider.prefetch_p50.ratio} / {provider.prefetch_p99.ratio} / {provider.prefetch_p999.ratio}"
        ),
    ),
    ("… the slowest of them (≤ 1x)", cell("{provider.prefetch_slowest.summary}")),
    (
        "prefetch window, callers arriving in 15 waves across the 200 ms refresh, timed from "
        "arrival: p50 / p99 / slowest",
        cell(
            "{provider.waves_p50.ratio} / {provider.waves_p99.ratio} / {provider.waves_slowest.ratio} (slowest: rounds {provider.waves_slowest.spread})"
        ),
    ),
    (
        "`keep_fresh()` renewing in the background, 200 ms STS, {provider.herd.callers} callers "
        "at once: p50 / p99 / slowest",
        cell(
            "{provider.keep_fresh_p50.ratio} / {provider.keep_fresh_p99.ratio} / {provider.keep_fresh_slowest.ratio} (slowest: rounds {provider.keep_fresh_slowest.spread})"
        ),
    ),
    (
        "the new AWS SDK: `get_identity` vs `await provider.credentials()` (≤ 2x)",
        cell("{aws_sdk.get_identity.summary}"),
    ),
    (
        "… vs the SDK's own `StaticCredentialsResolver` (fixed keys) (≤ 3x)",
        cell("{aws_sdk.vs_static.summary}"),
    ),
    (
        "a simulated week (`bench_week.py`): 7 days, {week.tasks} tasks, {week.clients} "
        "clients, 12 h tokens, 1% STS faults",
        cell(
            "**{week.prompts} prompts** (1 + {week.renewals} renewals), {week.outages} outages; "
            "**{week.expired_served}** credentials served after expiry, **{week.expired_signed}** "
            "requests signed with expired credentials ({week.requests} signed requests, "
            "{week.sts_faults} faults injected); memory allocated by the library "
            "{week.library_first_day_kb} after day 1, {week.library_last_day_kb} after the last"
        ),
    ),
    (
        "warm-cache load: read + decrypt vs botocore's `JSONFileCache` reading the same "
        "credentials unencrypted (< 2 ms)",
        cell(
            "**{cache.load_ms}** vs {cache.load_baseline_ms}: {cache.load_ratio} ({cache.load_async_ms} with the worker-thread hop)"
        ),
    ),
    (
        "new process → first credentials: warm cache (no STS call) vs empty cache + 0 ms STS "
        "(medians of {cache.runs} processes)",
        cell(
            "{cache.warm_start_ms} vs {cache.empty_start_ms} ({cache.start_ratio}); after the "
            "{cache.imports_ms} of imports: **{cache.warm_start_after_imports_ms} vs "
            "{cache.empty_start_after_imports_ms}**"
        ),
    ),
    (
        "`aio-sts-session credential-process`, warm (from the cache, no STS call), the installed "
        "console script, vs `python -I -c pass` (≤ 4x); medians of {cli.runs} interleaved runs, "
        "in brackets the range of run-by-run ratios",
        cell(
            "key file {cli.key_file.ms} vs {cli.floor.ms}: **{cli.key_file.x_floor}** "
            "[{cli.key_file.x_floor_range}]; role **{cli.role.x_floor}** [{cli.role.x_floor_range}]; "
            "key from `AIO_STS_SESSION_CACHE_KEY` **{cli.env_key.x_floor}** "
            "[{cli.env_key.x_floor_range}]; key in the keyring (`keyrings.alt`) {cli.keyring.ms}: "
            "{cli.keyring.x_floor}"
        ),
    ),
    (
        "… what importing `cryptography`'s AES-GCM alone costs, vs the same floor",
        cell("{cli.aesgcm.ms}: {cli.aesgcm.x_floor} [{cli.aesgcm.x_floor_range}]"),
    ),
    (
        "… vs awsume's warm run (`awsumepy PROFILE -s`, plain-text cache, moto as its STS) (≤ 0.3x)",
        cell(
            "{cli.awsume.ms}: key file **{cli.key_file.x_awsume}** [{cli.key_file.x_awsume_range}]; "
            "role **{cli.role.x_awsume}**; environment key **{cli.env_key.x_awsume}**; keyring "
            "{cli.keyring.x_awsume}"
        ),
    ),
    ("… cold (prompt + 2 STS calls, one run)", cell("{cli.cold_ms}")),
]


def table(
    rows: list[tuple[str, Cell]], runs: dict[str, dict[str, Any]], found: dict[str, str]
) -> str:
    pythons = sorted(runs, key=lambda p: tuple(int(x) for x in p.split(".")))
    lines = [
        "| measure (target) | " + " | ".join(f"Python {p}" for p in pythons) + " |",
        "|---" * (len(pythons) + 1) + "|",
    ]
    for measure, render in rows:
        label = cell(measure)(lambda key: found.get(key))
        cells = [render(lambda key, p=p: found.get(f"{key}@{p}")) for p in pythons]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(runs: dict[str, dict[str, Any]], found: dict[str, str]) -> dict[str, str]:
    return {
        "readme": table(README_ROWS, runs, found),
        "benchmarks": table(BENCHMARK_ROWS, runs, found),
    }


# -- the pages -------------------------------------------------------------------------------


def render(text: str, found: dict[str, str], blocks: dict[str, str], where: str = "") -> str:
    def inline(match: re.Match[str]) -> str:
        key = match.group("key")
        if key not in found:
            raise KeyError(f"{where}: no figure {key!r} (python docs/figures.py --keys)")
        return f"<!-- fig {key} -->{found[key]}<!-- /fig -->"

    def block(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in blocks:
            raise KeyError(f"{where}: no table {name!r}")
        # Blank lines around the table: Markdown reads a comment's block up to a blank line.
        return match.group("open") + "\n" + blocks[name] + "\n\n" + match.group("close")

    return INLINE.sub(inline, BLOCK.sub(block, text))


def main() -> int:
    if "--run" in sys.argv:
        run_benchmarks()
    runs = load()
    found = values(runs)
    if "--keys" in sys.argv:
        for key in sorted(found):
            print(f"{key:<48} {found[key]}")
        return 0
    blocks = tables(runs, found)
    stale = []
    for page in PAGES:
        text = page.read_text()
        new = render(text, found, blocks, str(page.relative_to(ROOT)))
        if new != text:
            stale.append(str(page.relative_to(ROOT)))
            if "--check" not in sys.argv:
                page.write_text(new)
    if "--check" in sys.argv and stale:
        print("figures out of date: python docs/figures.py (pages: " + ", ".join(stale) + ")")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
