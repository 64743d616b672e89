"""The documentation's pictures, drawn from data, never by hand.

    python docs/plots.py          # from the benchmarks' output saved in docs/benchmarks/
                                  # (python docs/figures.py --run saves it)

- ``img/timeline.svg``: the lifetime of one credential, from the library's own window
  arithmetic (``_policy.effective_windows`` and ``classify``);
- ``img/cli.svg``: the warm ``credential-process`` against ``python -I -c pass`` and awsume's
  warm run (``benchmarks/bench_cli.py --json``);
- ``img/provider.svg``: the library's ratios against their targets, with their spread
  (``benchmarks/bench_provider.py --json``, and ``bench_aws_sdk.py`` where it ran).

Both draw the reference run (Python 3.11), the one the pages quote by default.

Needs matplotlib (``pip install -e '.[docs]'``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "benchmarks"
REFERENCE = "3.11"  # the run the plots draw (docs/figures.py: the same)
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
    data = json.loads((DATA / REFERENCE / "cli.json").read_text())
    rows = data["rows"]
    names = [r["name"] for r in rows]
    medians = [r["median_ms"] for r in rows]
    lows = [r["median_ms"] - r["min_ms"] for r in rows]
    highs = [r["max_ms"] - r["median_ms"] for r in rows]
    baselines = {"floor", "aesgcm", "awsume"}
    colours = [
        "#8d6e63" if r["key"] == "awsume" else "#9e9e9e" if r["key"] in baselines else "#1e88e5"
        for r in rows
    ]
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.4))
    ax.barh(names, medians, xerr=[lows, highs], color=colours, capsize=3)
    for y, row in enumerate(rows):
        label = f"{row['median_ms']:.0f} ms"
        if row["key"] not in baselines:
            label += f"  ({row['x_floor']:.2f}x the floor, {row['x_awsume']:.2f}x awsume)"
        elif row["key"] == "aesgcm":
            label += f"  ({row['x_floor']:.2f}x the floor)"
        ax.text(row["max_ms"] + 4, y, label, va="center", fontsize=9)
    ax.tick_params(axis="y", labelsize=9)
    ax.invert_yaxis()
    ax.set_xlabel(
        f"warm run, ms (median of {data['runs']} interleaved runs; bars: min to max; "
        f"Python {data['python']})"
    )
    ax.set_xlim(0, max(r["max_ms"] for r in rows) * 1.7)
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(IMG / "cli.svg")
    plt.close(fig)


def provider() -> None:
    """Every ratio with a target, as a bar (blue within it, red over it) with its
    round-by-round range, against a black tick at the target."""
    rows = []
    for bench in ("provider", "aws_sdk"):
        path = DATA / REFERENCE / f"{bench}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        for row in data["rows"]:
            match = re.search(r"<=\s*([0-9.]+)x", row["target"])
            if match:
                rows.append((row, float(match.group(1))))
    fig, ax = plt.subplots(figsize=(11, 0.62 * len(rows) + 1.6))
    for y, (row, target) in enumerate(rows):
        lo, hi = row["spread"]
        over = float(_x(row["ratio"])) > target  # as printed: 1.003 reads 1.00, within 1x
        ax.barh(
            y,
            row["ratio"],
            color="#e53935" if over else "#1e88e5",
            xerr=[[row["ratio"] - lo], [hi - row["ratio"]]],
            capsize=3,
            ecolor="#424242",
        )
        ax.plot([target, target], [y - 0.4, y + 0.4], color="black", linewidth=1.5)
        label = f"{_x(row['ratio'])}x  (rounds {_x(lo)}–{_x(hi)}x; target ≤ {target:g}x)"
        # In a column of its own right of the plot: never over a bar, never cut.
        ax.annotate(
            label, xy=(1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=9
        )
    ax.set_yticks(range(len(rows)), [row["name"] for row, _ in rows], fontsize=9)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(right=max(max(r["spread"][1], t) for r, t in rows) * 1.5)
    ax.set_xlabel(f"ratio to the baseline measured in the same run (log scale; Python {REFERENCE})")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(color="#1e88e5", label="within its target"),
            Patch(color="#e53935", label="over its target (see the table)"),
            Line2D([0], [0], color="black", linewidth=1.5, label="the target"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=3,
        fontsize=9,
        frameon=False,
    )
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    fig.savefig(IMG / "provider.svg", bbox_inches="tight")  # the label column included
    plt.close(fig)


def _x(ratio: float) -> str:
    """A ratio as the pages print it (docs/figures.py): three decimals below 0.1."""
    return f"{ratio:.3f}" if ratio < 0.1 else f"{ratio:.2f}"


def main() -> None:
    IMG.mkdir(exist_ok=True)
    timeline()
    cli()
    provider()
    print(f"drawn: {', '.join(sorted(p.name for p in IMG.glob('*.svg')))}", file=sys.stderr)


if __name__ == "__main__":
    main()
