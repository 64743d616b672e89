"""The documentation's pictures, drawn from data, never by hand.

    python docs/plots.py          # from the figures saved in docs/benchmarks/*.json
    python docs/plots.py --run    # run every benchmark with --json first (a few minutes)

- ``img/timeline.svg``: the lifetime of one credential, from the library's own window
  arithmetic (``_policy.effective_windows`` and ``classify``);
- ``img/cli.svg``: the warm ``credential-process`` against ``python -I -c pass`` and awsume's
  warm run (``benchmarks/bench_cli.py --json``);
- ``img/provider.svg``: the library's ratios against their targets
  (``benchmarks/bench_provider.py --json``).

Needs matplotlib (``pip install -e '.[docs]'``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "benchmarks"
IMG = HERE / "img"
sys.path.insert(0, str(ROOT))

from aio_sts_session._policy import State, classify, effective_windows  # noqa: E402

COLOURS = {
    State.FRESH: "#4caf50",
    State.PREFETCH: "#ffb300",
    State.STALE: "#fb8c00",
    State.EXPIRED: "#e53935",
}
SAYS = {
    State.FRESH: "fresh: answered from memory\n(one clock read)",
    State.PREFETCH: "prefetch: answered at once;\none background refresh",
    State.STALE: "stale: callers wait for the\none refresh (not past expiry)",
    State.EXPIRED: "expired: callers wait;\nthe last error while backing off",
}


def timeline() -> None:
    lifetime, prefetch, stale = 3600.0, 300.0, 60.0  # a 1-hour token, the default windows
    windows = effective_windows(lifetime, prefetch, stale)
    spans: list[tuple[State, float, float]] = []
    step = 1.0
    t = 0.0
    while t < lifetime + 240:
        state = classify(t, lifetime, windows)
        if spans and spans[-1][0] is state:
            spans[-1] = (state, spans[-1][1], t + step)
        else:
            spans.append((state, t, t + step))
        t += step
    fig, ax = plt.subplots(figsize=(9, 2.6))
    for state, start, end in spans:
        ax.barh(0, (end - start) / 60, left=start / 60, height=0.5, color=COLOURS[state])
    where = {s: (a, b) for s, a, b in spans}
    # Text placed apart (the last three spans are narrow), each pointing at its span.
    text_at = {State.FRESH: (27, 0.6), State.PREFETCH: (40, -0.9), State.STALE: (48, 0.6),
               State.EXPIRED: (60, -0.9)}  # fmt: skip
    for state, (start, end) in where.items():
        x = (start + end) / 2 / 60
        tx, ty = text_at[state]
        ax.annotate(
            SAYS[state],
            xy=(x, 0.25 if ty > 0 else -0.25),
            xytext=(tx, ty),
            ha="center",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "grey"},
        )
    ax.set_xlim(0, (lifetime + 240) / 60)
    ax.set_ylim(-1.2, 1.2)
    ax.set_yticks([])
    ax.set_xlabel("minutes since the credentials were issued (a 1-hour token, default windows)")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(IMG / "timeline.svg")
    plt.close(fig)


def cli() -> None:
    data = json.loads((DATA / "cli.json").read_text())
    rows = data["rows"]
    names = [r["name"] for r in rows]
    medians = [r["median_ms"] for r in rows]
    lows = [r["median_ms"] - r["min_ms"] for r in rows]
    highs = [r["max_ms"] - r["median_ms"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 3.4))
    colours = ["#9e9e9e", "#8d6e63"] + ["#1e88e5"] * (len(rows) - 2)
    ax.barh(names, medians, xerr=[lows, highs], color=colours, capsize=3)
    for y, row in enumerate(rows):
        label = f"{row['median_ms']:.0f} ms"
        if y >= 2:
            label += f"  ({row['x_floor']:.1f}x the floor, {row['x_awsume']:.2f}x awsume)"
        ax.text(row["max_ms"] + 4, y, label, va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"warm run, ms (median of {data['runs']} interleaved runs; bars: min to max)")
    ax.set_xlim(0, max(r["max_ms"] for r in rows) * 1.6)
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(IMG / "cli.svg")
    plt.close(fig)


def provider() -> None:
    data = json.loads((DATA / "provider.json").read_text())
    rows = []
    for row in data["rows"]:
        match = re.search(r"<=\s*([0-9.]+)x", row["target"])
        if match:
            rows.append((row["name"], row["ratio"], float(match.group(1))))
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.2))
    for y, (_, ratio, target) in enumerate(rows):
        ax.barh(y, ratio, color="#1e88e5" if ratio <= target else "#e53935")
        ax.plot([target, target], [y - 0.4, y + 0.4], color="black", linewidth=1.5)
        label = f"{ratio:.2f}x (target {target:g}x)"
        ax.text(max(ratio, target) * 1.05, y, label, va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [_wrap(name) for name, _, _ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(
        f"ratio to the baseline measured in the same run (log scale; Python {data['python']})"
    )
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(IMG / "provider.svg")
    plt.close(fig)


def _wrap(text: str, width: int = 42) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:2])


def run_benchmarks() -> None:
    DATA.mkdir(exist_ok=True)
    for name in ("cli", "provider", "cache", "week"):
        print(f"running benchmarks/bench_{name}.py --json …", file=sys.stderr)
        out = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / f"bench_{name}.py"), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (DATA / f"{name}.json").write_text(out.strip().splitlines()[-1] + "\n")


def main() -> None:
    if "--run" in sys.argv:
        run_benchmarks()
    IMG.mkdir(exist_ok=True)
    timeline()
    cli()
    provider()
    print(f"drawn: {', '.join(sorted(p.name for p in IMG.glob('*.svg')))}", file=sys.stderr)


if __name__ == "__main__":
    main()
