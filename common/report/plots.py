"""The report's plots, each a matplotlib Figure (report/__init__.py writes them as PNG and SVG)."""

from __future__ import annotations

import functools
import statistics
import textwrap

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from common import task
from common.report.run import Row, RunData, known_variants
from common.report.text import counted_loc, mode_text, subtitle


# --- plots -------------------------------------------------------------------------------------
@functools.cache
def _colors() -> dict[str, tuple]:
    palette = matplotlib.colormaps["tab10"]
    return {v.id: palette(i % 10) for i, v in enumerate(known_variants())}


def _color(variant_id: str):
    return _colors().get(variant_id, "gray")


def _figure(data: RunData, title: str, height: float, width: float = 9.0, grid: str = "both"):
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    ax.set_title(title, loc="left", fontsize=13, fontweight="bold", pad=20)
    ax.text(0, 1.015, subtitle(data), transform=ax.transAxes, fontsize=9, color="dimgray")
    ax.grid(axis=grid, color="0.9")
    ax.set_axisbelow(True)
    return fig, ax


def plot_throughput(data: RunData) -> Figure | None:
    reference = data.reference
    if not reference:
        return None
    rows = data.training
    ratios = [_shown_ratio(row, reference) for row in rows]
    points = [ratio["point"] for ratio in ratios]
    lows = [ratio["point"] - ratio["low"] for ratio in ratios]
    highs = [ratio["high"] - ratio["point"] for ratio in ratios]
    has_intervals = any(lows) or any(highs)
    fig, ax = _figure(
        data, "Training speed relative to raw PyTorch", 1.6 + 0.42 * len(rows), grid="x"
    )
    bars = ax.barh(
        range(len(rows)),
        points,
        xerr=[lows, highs] if has_intervals else None,
        capsize=3,
        error_kw={"elinewidth": 1},
        color=[_color(r["variant"]) for r in rows],
    )
    ax.set_yticks(range(len(rows)), [f"{r['label']} ({mode_text(r)})" for r in rows])
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    texts = [
        _bar_text(row, point, high, has_intervals)
        for row, point, high in zip(rows, points, highs, strict=True)
    ]
    labels = ax.bar_label(bars, texts, padding=3 + 8 * has_intervals, fontsize=8)
    for label in labels:  # readable where it crosses the line at 1.0
        label.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax.set_xlim(0, max(p + h for p, h in zip(points, highs, strict=True)) * 1.45)
    _replicate_ticks(ax, rows)
    ax.set_xlabel(
        "steady speed ÷ raw PyTorch's (median of same-round pairs),\npooled over replicates "
        "(ticks); bars: 95% interval"
        if has_intervals
        else "training images/s ÷ raw PyTorch's: single measurement, no interval"
    )
    return fig


def _shown_ratio(row: Row, reference: Row) -> dict[str, float]:
    """A bar's ratio: 1 for the reference, the pooled interval, or the whole-run ratio."""
    ratio = row["speed"].get("ratio")
    if row is reference:
        return {"point": 1.0, "low": 1.0, "high": 1.0}
    if ratio is None:  # no blocks: the whole-run ratio, a single measurement
        single = row["images_per_second"] / reference["images_per_second"]
        return {"point": single, "low": single, "high": single}
    return ratio


def _bar_text(row: Row, point: float, high: float, has_intervals: bool) -> str:
    verdict = row["speed"].get("verdict", "")
    text = f"{point:.2f}×"
    if verdict and verdict != "reference":
        text += f" ±{high:.2f} {verdict}" if has_intervals else f" {verdict}"
    return text


def _replicate_ticks(ax, rows: list[Row]) -> None:
    """Each replicate's own ratio, a tick beside the pooled bar (only when there are several)."""
    draws = [
        (y, point)
        for y, row in enumerate(rows)
        for point in (row["speed"].get("ratio") or {}).get("replicates", [])
    ]
    if len(draws) > len(rows):
        ax.plot([p for _, p in draws], [y for y, _ in draws], "k|", markersize=9)


def plot_loc(data: RunData) -> Figure | None:
    locs = data.suite_loc
    if not locs:
        return None
    first: dict[str, str] = {}
    for v in known_variants():
        first.setdefault(v.suite, v.id)
    fig, ax = _figure(data, "Lines of code per suite", 4.2, grid="y")
    names = list(locs)
    bars = ax.bar(
        names,
        [loc for loc, _ in locs.values()],
        color=[_color(first.get(s, s)) for s in names],
        hatch=["" if measured else "//" for _, measured in locs.values()],
        edgecolor="white",
    )
    ax.bar_label(bars, padding=2, fontsize=9)
    ax.set_ylabel("LOC (radon logical lines)")
    ax.margins(y=0.12)
    if not all(measured for _, measured in locs.values()):
        ax.set_xlabel(
            f"hatched: did not complete; {counted_loc(data)}",
            fontsize=8,
            color="dimgray",
        )
    return fig


def _seed_groups(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Rows with an epoch history by (variant, mode), one per seed (the first row of a seed: a
    group's copy or the A/A control is the same seed again, not another measurement)."""
    groups: dict[tuple[str, str], dict] = {}
    for row in rows:
        if row.get("epoch_history"):
            key = (row["variant"], row.get("mode", ""))
            groups.setdefault(key, {}).setdefault(row.get("seed"), row)
    return {key: list(by_seed.values()) for key, by_seed in groups.items()}


def _band(ax, epochs: list[int], means: list[float], sds: list[float], color) -> None:
    """mean ± one standard deviation, shaded."""
    low = [m - d for m, d in zip(means, sds, strict=True)]
    high = [m + d for m, d in zip(means, sds, strict=True)]
    ax.fill_between(epochs, low, high, color=color, alpha=0.2)


def _accuracy_curves(ax, groups: dict[tuple[str, str], list[dict]]) -> str:
    """Each group's accuracy per epoch: the mean over its seeds, with a band over their range
    where there are several. Returns the caption that says which."""
    for (variant, mode), rows in groups.items():
        by_epoch: dict[int, list[float]] = {}
        for row in rows:
            for h in row["epoch_history"]:
                by_epoch.setdefault(h["epoch"], []).append(100 * h["test_accuracy"])
        epochs = sorted(by_epoch)
        values = [by_epoch[e] for e in epochs]
        color = _color(variant)
        ax.plot(
            epochs,
            [sum(v) / len(v) for v in values],
            marker="o",
            color=color,
            label=f"{variant} ({mode})" + (f", {len(rows)} seeds" if len(rows) > 1 else ""),
        )
        if len(rows) > 1:
            _band(
                ax,
                epochs,
                [statistics.fmean(v) for v in values],
                [statistics.stdev(v) for v in values],
                color,
            )
    epochs = sorted(
        {h["epoch"] for rows in groups.values() for r in rows for h in r["epoch_history"]}
    )
    ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
    if len(epochs) <= 15:
        ax.set_xticks(epochs)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    seeds = max(len(rows) for rows in groups.values())
    return (
        "line: mean over seeds; band: ± one standard deviation"
        if seeds > 1
        else "single measurement: one seed per variant, no interval"
    )


def plot_accuracy(data: RunData) -> Figure | None:
    shown = {(r["variant"], r["mode"]) for r in data.per_variant}
    groups = {k: v for k, v in _seed_groups(data.training).items() if k in shown}
    if not groups:
        return None
    fig, ax = _figure(data, "Test accuracy after each epoch", 4.8)
    ax.set_xlabel(f"epoch · {_accuracy_curves(ax, groups)}")
    return fig


def plot_accuracy_over_seeds(data: RunData) -> Figure | None:
    """The merged seeds run's accuracy per epoch, mean ± sd (a seeds run's own rows are drawn by
    plot_accuracy already)."""
    if not data.accuracy or data.accuracy_source == "this run":
        return None
    fig, ax = _figure(data, "Test accuracy over seeds", 4.8)  # its source: below the axis
    for record in data.accuracy:
        epochs = [e["epoch"] for e in record["per_epoch"]]
        means = [100 * e["mean"] for e in record["per_epoch"]]
        sds = [100 * (e["sd"] or 0.0) for e in record["per_epoch"]]
        color = _color(record["variant"])
        label = f"{record['variant']} ({record['mode']}), {len(record['seeds'])} seeds"
        ax.plot(epochs, means, marker="o", color=color, label=label)
        _band(ax, epochs, means, sds, color)
        ax.set_xticks(epochs)
    ax.set_ylabel("test accuracy (%)")
    caption = "epoch · line: mean over seeds; band: ± one standard deviation · from "
    ax.set_xlabel(textwrap.fill(caption + str(data.accuracy_source), width=80))
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return fig


def plot_time_to_accuracy(data: RunData) -> Figure | None:
    groups = _seed_groups(data.time_to_accuracy)
    if not groups:
        return None
    fig, ax = _figure(data, "Time to accuracy: test accuracy after each epoch", 4.8)
    caption = _accuracy_curves(ax, groups)
    for target in sorted({100 * r["target_accuracy"] for r in data.time_to_accuracy}):
        ax.axhline(target, color="black", linestyle="--", linewidth=1)
        ax.annotate(
            f"target {target:.2f}%",
            (0, target),
            xycoords=("axes fraction", "data"),
            xytext=(2, 2),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xlabel(f"epoch · {caption}")
    return fig


def _spread(ys: list[float], gap: float) -> list[float]:
    """Label heights at least `gap` apart, each as close to its point as that allows."""
    placed, order = list(ys), sorted(range(len(ys)), key=lambda i: ys[i])
    for before, i in zip(order, order[1:], strict=False):
        placed[i] = max(placed[i], placed[before] + gap)
    return placed


def plot_loc_vs_speed(data: RunData) -> Figure | None:
    rows = data.per_variant
    if not rows:
        return None
    fig, ax = _figure(data, "Lines of code against training throughput", 5.0)
    steady = [_steady_images(r) for r in rows]
    xs, ys = [r["loc"] for r in rows], [point for point, _, _ in steady]
    ax.scatter(xs, ys, s=60, color=[_color(r["variant"]) for r in rows], zorder=3)
    ax.errorbar(
        xs,
        ys,
        yerr=[[below for _, below, _ in steady], [above for _, _, above in steady]],
        fmt="none",
        ecolor="0.4",
        capsize=3,
        zorder=2,
    )
    x_span, top = (max(xs) - min(xs)) or 10, max(ys) * 1.2
    ax.set_xlim(min(xs) - 0.1 * x_span, max(xs) + 0.45 * x_span)
    ax.set_ylim(0, top)
    # Labels to the right of their points; points close in LOC get labels pushed apart.
    lifted = list(ys)
    groups = sorted(range(len(rows)), key=lambda i: xs[i])
    start = 0
    for end in range(1, len(groups) + 1):
        if end == len(groups) or xs[groups[end]] - xs[groups[start]] > 0.25 * x_span:
            members = groups[start:end]
            for i, y in zip(members, _spread([ys[i] for i in members], 0.05 * top), strict=True):
                lifted[i] = y
            start = end
    for row, x, y, label_y in zip(rows, xs, ys, lifted, strict=True):
        ax.annotate(
            f"{row['variant']} ({row['mode']})",
            (x, y),
            xytext=(x + 0.04 * x_span, label_y),
            fontsize=8,
            va="center",
            arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6},
        )
    ax.set_xlabel("LOC (logical lines of the example: the suite's file above its harness)")
    ax.set_ylabel(
        "steady-state training images/s (95% interval)"
        if any(below or above for _, below, above in steady)
        else "training images/s: single measurement, no interval"
    )
    return fig


def _steady_images(row: dict) -> tuple[float, float, float]:
    """Steady-state images/s with the distance to its interval's ends (0, 0: no interval)."""
    per_step = row.get("speed", {}).get("per_step")
    if not per_step:
        return row["images_per_second"], 0.0, 0.0
    batch = row.get("batch_size", task.BATCH_SIZE)
    point = batch / per_step["point"]
    return point, point - batch / per_step["high"], batch / per_step["low"] - point


def plot_modes(data: RunData) -> Figure | None:
    if not data.has_modes:
        return None
    variants = list(dict.fromkeys(r["variant"] for r in data.training if not r.get("group_copy")))
    modes = sorted(
        {r["mode"] for r in data.training},
        key=lambda m: (task.MODES.index(m) if m in task.MODES else len(task.MODES), m),
    )
    rows = {(r["variant"], r["mode"]): r for r in data.training if not r.get("group_copy")}
    fig, ax = _figure(
        data,
        "Steady-state training throughput per execution mode",
        4.8,
        width=max(9.0, 1.4 * len(variants)),
        grid="y",
    )
    width = 0.8 / max(sum((v, m) in rows for m in modes) for v in variants)
    palette = matplotlib.colormaps["Set2"]
    for i, variant in enumerate(variants):  # each variant's bars centred on its label
        present = [m for m in modes if (variant, m) in rows]
        for j, mode in enumerate(present):
            x = i + (j - (len(present) - 1) / 2) * width
            _mode_bar(ax, rows[variant, mode], x, width, palette(modes.index(mode) % 8))
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("steady-state training images/s")
    intervals = any(any(_steady_images(row)[1:]) for row in rows.values())
    ax.set_xlabel(
        ("error bars: 95% interval over blocks" if intervals else "single measurement, no interval")
        + "; +N s: start-up (tracing, compiling) paid once",
        fontsize=8,
        color="dimgray",
    )
    ax.margins(y=0.18)
    ax.legend(
        handles=[Patch(color=palette(k % 8), label=m) for k, m in enumerate(modes)],
        title="mode",
        fontsize=8,
        frameon=False,
    )
    return fig


def _mode_bar(ax, row: Row, x: float, width: float, color) -> None:
    """One (variant, mode) bar: steady images/s with its interval, labelled with the figure
    and the start-up time where it is a second or more."""
    point, below, above = _steady_images(row)
    start_up = (row.get("speed", {}).get("start_up") or {}).get("start_up_seconds")
    bars = ax.bar(
        x,
        point,
        width,
        yerr=[[below], [above]] if below or above else None,
        capsize=2,
        color=color,
    )
    label = f"{point:,.0f}" + (f"\n+{start_up:.0f} s" if start_up and start_up >= 1 else "")
    ax.bar_label(bars, [label], padding=2, fontsize=7)


PLOTS = {
    "throughput": plot_throughput,
    "loc": plot_loc,
    "accuracy_per_epoch": plot_accuracy,
    "accuracy_over_seeds": plot_accuracy_over_seeds,
    "loc_vs_speed": plot_loc_vs_speed,
    "modes": plot_modes,
    "time_to_accuracy": plot_time_to_accuracy,
}


def render(data: RunData) -> dict[str, Figure]:
    """The run's plots by name, those that apply to it."""
    return {name: fig for name, plot in PLOTS.items() if (fig := plot(data)) is not None}
