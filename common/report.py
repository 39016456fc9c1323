"""The report of one comparison run, written to <run>/report/ from the run folder's JSON files:

summary.md     what ran on what, the table (one row per variant and mode), notes, time to accuracy
*.png, *.svg   throughput, LOC, accuracy per epoch, LOC against speed, modes (when measured)
index.html     one self-contained page: environment, tables, plots, the suites' sources

python -m common.report results/20261129-174755     (default: the newest run in results/)
"""

from __future__ import annotations

import argparse
import base64
import functools
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from tabulate import tabulate

from common import files, metrics, registry, speed, task

ROOT = Path(__file__).resolve().parent.parent
HEADERS = (
    "suite",
    "backend",
    "mode",
    "LOC",
    "ms/step (steady)",
    "images/s",
    "start-up s",
    "warm-up s",
    "vs raw PyTorch [95% CI]",
    "verdict",
    "all-in [95% CI]",
    "test acc. %",
    "peak MB",
    "import s",
    "checkpoint KB",
)
OVERHEAD_HEADERS = (
    "suite",
    "backend",
    "switch",
    "µs/step (steady)",
    "overhead vs raw PyTorch, µs/step [95% CI]",
    "verdict",
)
TTA_HEADERS = (
    "suite",
    "mode",
    "target %",
    "reached",
    "epoch",
    "seconds to target",
    "evaluation s (beside)",
    "epochs cap",
)
NUMERIC_FROM = 3  # HEADERS from here on are numbers, right-aligned (TTA_HEADERS: from 2)
ERROR_WIDTH = 40  # characters of an error shown in the table; the notes below give it whole


@functools.cache
def _variants() -> tuple[registry.Variant, ...]:
    return tuple(registry.variants())


# --- the run folder ----------------------------------------------------------------------------
@dataclass
class RunData:
    environment: dict
    runs: dict
    training: list[dict]  # extra_info of each (variant, mode) training benchmark, in table order
    incomplete: list[dict]  # runs.json entries that are not ok: failed, skipped, interrupted...
    floor: dict | None
    cache: dict | None
    time_to_accuracy: list[dict]

    @property
    def reference(self) -> dict | None:
        """raw PyTorch's row as written (group 1's reference job): rows are sorted so that it
        comes first."""
        return next((r for r in self.training if r.get("reference_job")), None) or next(
            (r for r in self.training if r["suite"] == registry.REFERENCE), None
        )

    @property
    def flags(self) -> list[str]:
        """Why the speed figures of this run should be read with care (empty: nothing noticed)."""
        reference = self.reference
        if not reference or not reference.get("blocks"):
            return []
        flags = speed.noise_flags(reference["blocks"], [r.get("blocks", []) for r in self.training])
        for row in self.training:
            ratio = row.get("speed", {}).get("ratio")
            if row.get("control") and ratio and speed.control_failed(ratio):
                flags.append(
                    f"raw PyTorch's second process (the A/A control) reads "
                    f"{ratio['point']:.2f} [{ratio['low']:.2f}, {ratio['high']:.2f}] against the "
                    f"first, not 1: the two processes of the same code ran at different speeds"
                )
        return flags

    @property
    def overhead(self) -> bool:
        return self.setting("model") == "linear"

    @property
    def per_variant(self) -> list[dict]:
        """One row per variant, the one in its default mode (or the first one measured)."""
        seen = {}
        for row in self.training:
            if not row.get("group_copy"):
                seen.setdefault(row["variant"], row)
        return list(seen.values())

    @property
    def has_modes(self) -> bool:
        """Some variant was measured in more than one execution mode."""
        pairs = {(r["variant"], r["mode"]) for r in self.training}
        return len(pairs) > len({r["variant"] for r in self.training})

    def setting(self, name: str):
        """A run setting from runs.json, else as the training rows or the environment say."""
        for source in (self.runs.get("settings", {}), *self.training[:1], self.environment):
            if source.get(name) is not None:
                return source[name]
        return None


class ReportError(ValueError):
    """A folder that is not a run, or a run file that can't be read; the message names it."""


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from None


def _order(variant_id: str, mode: str | None = None) -> tuple:
    """Registry order (raw PyTorch first); within a variant its default mode, then the others."""
    known = {v.id: (i, v) for i, v in enumerate(_variants())}
    position, variant = known.get(variant_id, (len(known), None))
    default = variant.modes[0] if variant and variant.modes else "default"
    if mode is None:  # a variant that did not complete: after its measured rows
        mode_rank = len(task.MODES) + 1
    else:
        mode_rank = (
            -1
            if mode == default
            else (task.MODES.index(mode) if mode in task.MODES else len(task.MODES))
        )
    return position, variant_id, mode_rank, mode or ""


def _training_record(records: list[dict]) -> dict | None:
    return next(
        (
            b.get("extra_info", {})
            for b in records
            if "epoch_history" in b.get("extra_info", {})
            and "images_per_second" in b.get("extra_info", {})
        ),
        None,
    )


def _from_jobs(run_dir: Path, runs: dict) -> tuple[list[dict], list[dict]]:
    """One row per finished process of an interleaved run, from its own JSON and runs.json;
    and the entries that finished but whose record is gone, as incomplete ones."""
    rows, lost = [], []
    for entry in runs.get("variants", []):
        if entry.get("status") != "ok" or not entry.get("json"):
            continue
        path = run_dir / entry["json"]
        if not path.is_file():
            lost.append({**entry, "status": "no record", "error": f"{path} is missing"})
            continue
        records = _read_json(path).get("benchmarks", [])
        if any("target_accuracy" in b.get("extra_info", {}) for b in records):
            continue  # a time-to-accuracy run: its own table, from benchmark.json
        if (record := _training_record(records)) is None:
            lost.append({**entry, "status": "no record", "error": f"{path} holds no run"})
            continue
        rows.append(
            {
                **record,
                "label": entry["label"],
                "group": entry.get("group", 1),
                "reference_job": entry.get("reference", False),
                "control": entry.get("control", False),
                "group_copy": "@" in entry["label"],
            }
        )
    return rows, lost


def _control_verdict(ratio: speed.Interval | None) -> str:
    if ratio is None:
        return "control: not measured"
    return "control: " + ("fails" if speed.control_failed(ratio.as_dict()) else "holds")


def add_speed(rows: list[dict]) -> None:
    """Each row's speed figures against its group's reference, with their intervals."""
    references = {r["group"]: r for r in rows if r.get("reference_job")}
    margins, overhead_margins = {}, {}
    for row in rows:  # the A/A control's spread: the margin every verdict of its group must clear
        reference = references.get(row.get("group"))
        if row.get("control") and reference is not None:
            pair = (reference.get("blocks") or [], row.get("blocks") or [])
            margins[row["group"]] = speed.control_margin(speed.speed_ratio(*pair))
            overhead_margins[row["group"]] = speed.control_margin(
                speed.overhead_per_step(*pair), neutral=0.0
            )
    for row in rows:  # a group without a control takes the first group's margin
        margin = margins.get(row.get("group"), margins.get(1, 0.0))
        blocks = row.get("blocks") or []
        reference = references.get(row.get("group"))
        ratio = overhead = all_in = None
        if reference is not None and reference is not row:
            ratio = speed.speed_ratio(reference.get("blocks") or [], blocks)
            all_in = speed.all_in_ratio(reference.get("blocks") or [], blocks)
            overhead = speed.overhead_per_step(reference.get("blocks") or [], blocks)
        per_step = speed.per_step(blocks)
        single = (
            row["images_per_second"] / reference["images_per_second"]
            if reference is not None and not blocks
            else None
        )
        row["speed"] = {
            "single_ratio": single,
            "kind": "speed-figures",
            "ratio": ratio.as_dict() if ratio else None,
            "all_in": all_in.as_dict() if all_in else None,
            "margin": margin,
            "verdict": "reference"
            if reference is row
            else _control_verdict(ratio)
            if row.get("control")
            else speed.verdict(ratio, margin=margin)
            if blocks
            else "single measurement",
            "overhead_us": overhead.as_dict() if overhead else None,
            "overhead_verdict": "reference"
            if reference is row
            else "control"
            if row.get("control")
            else speed.verdict(
                overhead,
                0.0,
                "more overhead",
                "less overhead",
                margin=overhead_margins.get(row.get("group"), overhead_margins.get(1, 0.0)),
            ),
            "per_step": per_step.as_dict() if per_step else None,
            "start_up": speed.start_up(blocks),
            "machine": speed.machine_state(blocks),
            "variation": speed.variation(blocks),
            "drift_share": speed.drift_share(blocks),
        }


def load_run(run_dir: Path) -> RunData:
    benchmarks = _read_json(run_dir / "benchmark.json").get("benchmarks", [])
    infos = [b.get("extra_info", {}) for b in benchmarks]
    runs = _read_json(run_dir / "runs.json")
    rows, lost = _from_jobs(run_dir, runs) if runs.get("kind") == "comparison-run" else ([], [])
    if not rows:  # a run from before interleaving: one row per (variant, mode), no blocks
        training: dict[tuple, dict] = {}
        for info in infos:
            if (
                "epoch_history" in info
                and "images_per_second" in info
                and "target_accuracy" not in info
            ):
                training.setdefault((info["variant"], info["mode"]), info)
        rows = [{**r, "label": r["variant"], "group": 1} for r in training.values()]
        rows.sort(key=lambda r: _order(r["variant"], r["mode"]))
        if rows and rows[0]["suite"] == registry.REFERENCE:  # raw PyTorch in its default mode
            rows[0]["reference_job"] = True
        measured = {i["variant"] for i in infos if "variant" in i}
        merged = run_dir / "benchmark.json"
        why = f"{merged} {'has no record of it' if merged.exists() else 'is missing'}"
        lost = [
            {**e, "status": "no record", "error": why}
            for e in runs.get("variants", [])
            if e.get("status") == "ok" and e.get("variant") not in measured
        ]
    add_speed(rows)
    incomplete = [e for e in runs.get("variants", []) if e.get("status") != "ok"] + lost
    return RunData(
        environment=_read_json(run_dir / "environment.json"),
        runs=runs,
        training=sorted(
            rows,
            key=lambda r: (
                _order(r["variant"], r["mode"]),
                r.get("switch", "default") != "default",
                r.get("switch", ""),
                r["label"],
            ),
        ),
        incomplete=sorted(incomplete, key=lambda e: _order(e["variant"])),
        floor=next((i for i in infos if i.get("baseline") == "tensor-slicing floor"), None),
        cache=next((i for i in infos if "load_seconds" in i), None),
        time_to_accuracy=sorted(
            (i for i in infos if "target_accuracy" in i),
            key=lambda r: _order(r["variant"], r.get("mode")),
        ),
    )


# --- text shared by summary.md and index.html --------------------------------------------------
def _f(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _plural(count, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _short_cpu(environment: dict) -> str:
    cpu = re.sub(r"\((R|TM)\)|\bCPU\b|\s*@.*$", "", environment.get("cpu", "unknown CPU"))
    return " ".join(cpu.split())


def _title(data: RunData) -> str:
    rows = [*data.training, *data.time_to_accuracy, *data.incomplete]
    count = len({r["variant"] for r in rows})
    size = data.setting("train_size")
    return (
        f"{str(data.setting('dataset')).upper()}: {_plural(count, 'variant')}, "
        f"{_plural(data.setting('epochs'), 'epoch')} on {_f(size, ',') if size else 'all'} "
        f"training images"
    )


def _subtitle(data: RunData) -> str:
    """The line every plot carries: dataset, epochs, CPU and threads."""
    size = data.setting("train_size")
    return (
        f"{str(data.setting('dataset')).upper()}, {_plural(data.setting('epochs'), 'epoch')}"
        f" × {_f(size, ',') if size else 'all'} images · {_short_cpu(data.environment)}, "
        f"{data.setting('threads')} threads"
    )


def _facts(data: RunData) -> list[tuple[str, str]]:
    env, settings = data.environment, data.runs.get("settings", {})
    commit = env.get("git_commit", "unknown")[:12]
    test_size = data.training[0]["test_size"] if data.training else None
    finished = f"finished {data.runs['finished']}" if data.runs.get("finished") else "not finished"
    return [
        (
            "Machine",
            f"{env.get('cpu', 'unknown CPU')}, {env.get('cores', '?')} cores, "
            f"{data.setting('threads')} threads ({env.get('system', '')}, "
            f"{env.get('machine', '')}, Python {env.get('python', '')})",
        ),
        (
            "Date",
            f"{env.get('date', data.runs.get('started', ''))} ({finished})",
        ),
        (
            "Task",
            f"{data.setting('dataset')}, {_plural(data.setting('epochs'), 'epoch')} on "
            f"{_f(data.setting('train_size'), ',')} training images, {_f(test_size, ',')} "
            f"test images, "
            + (
                f"timed in interleaved blocks of {settings['block_steps']} steps"
                if settings.get("interleaved")
                else _plural(settings.get("rounds", 1), "timed round")
            )
            + ", mode "
            f"{settings.get('mode', 'default')}",
        ),
        ("Commit", commit + (" with uncommitted changes" if env.get("git_dirty") else "")),
        ("Command", data.runs.get("command", "")),
    ]


def _md_code(text: str) -> str:
    """Text from the data as Markdown code, so that <, *, _ in an error show as they are."""
    return "`" + text.replace("`", "'") + "`"


def _interval_text(interval: dict | None, spec: str, scale: float = 1.0) -> str:
    if not interval:
        return "—"
    point, low, high = (interval[k] * scale for k in ("point", "low", "high"))
    return f"{point:{spec}} [{low:{spec}}, {high:{spec}}]"


def _mode_text(row: dict) -> str:
    switch = row.get("switch", "default")
    return row["mode"] + (f" +{switch}" if switch != "default" else "")


def training_rows(data: RunData, markdown: bool = False) -> list[list[str]]:
    """The table's cells: measured rows and, in registry order among them, the incomplete
    (their error cut short: notes() gives it whole)."""
    known = {v.id: v for v in _variants()}
    cells = []
    for row in data.training:
        figures = row.get("speed", {})
        per_step = figures.get("per_step")
        start_up = figures.get("start_up") or {}
        ratio = figures.get("ratio")
        bytes_ = row.get("checkpoint_bytes")
        if per_step:
            step_text = f"{1e3 * per_step['point']:.2f} ± {1e3 * per_step['half_width']:.2f}"
            images = row.get("batch_size", task.BATCH_SIZE) / per_step["point"]
        else:  # a run without blocks: one whole-run figure
            step_text, images = "—", row["images_per_second"]
        cells.append(
            (
                (_order(row["variant"], row["mode"]), row.get("switch", ""), row["label"]),
                [
                    row["label"].split("@")[0] + (" (copy)" if row.get("group_copy") else ""),
                    row.get("backend", ""),
                    _mode_text(row),
                    _f(row.get("loc"), "d"),
                    step_text,
                    _f(images, ",.0f"),
                    _f(start_up.get("start_up_seconds"), ".2f"),
                    _f(row.get("warm_up_seconds"), ".2f"),
                    "1 (reference)"
                    if figures.get("verdict") == "reference"
                    else _interval_text(ratio, ".2f")
                    if ratio or figures.get("single_ratio") is None
                    else f"{figures['single_ratio']:.2f} (single)",
                    "" if figures.get("verdict") == "reference" else figures.get("verdict", ""),
                    _interval_text(figures.get("all_in"), ".2f")
                    if figures.get("verdict") != "reference"
                    else "",
                    _f(100 * row["test_accuracy"], ".2f"),
                    _f(row.get("peak_rss_mb"), ",.0f"),
                    _f(row.get("import_seconds"), ".2f"),
                    _f(bytes_ and bytes_ / 1024, ",.0f"),
                ],
            )
        )
    for entry in data.incomplete:
        variant = known.get(entry["variant"])
        error = entry.get("error") or ""
        error = error if len(error) <= ERROR_WIDTH else error[:ERROR_WIDTH] + "…"
        error = _md_code(error) if markdown and error else error
        padding = [""] * (len(HEADERS) - NUMERIC_FROM - 2)
        cells.append(
            (
                (_order(entry["variant"]), "", entry.get("label", entry["variant"])),
                [
                    entry.get("label", entry["variant"]),
                    (variant.backend if variant else None) or "",
                    "—",
                    entry["status"].upper(),
                    error,
                    *padding,
                ],
            )
        )
    return [row for _, row in sorted(cells, key=lambda c: c[0])]


def overhead_rows(data: RunData) -> list[list[str]]:
    rows = []
    for row in data.training:
        figures = row.get("speed", {})
        per_step = figures.get("per_step")
        reference = figures.get("overhead_verdict") == "reference"
        rows.append(
            [
                row["label"].split("@")[0] + (" (copy)" if row.get("group_copy") else ""),
                row.get("backend", ""),
                row.get("switch", "default"),
                f"{1e6 * per_step['point']:,.0f} ± {1e6 * per_step['half_width']:,.0f}"
                if per_step
                else "—",
                "0 (reference)"
                if reference
                else _interval_text(figures.get("overhead_us"), ",.0f"),
                "" if reference else figures.get("overhead_verdict", ""),
            ]
        )
    return rows


def tta_rows(data: RunData) -> list[list[str]]:
    return [
        [
            r["variant"],
            r.get("mode", ""),
            _f(100 * r["target_accuracy"], ".2f"),
            "yes" if r["reached"] else "no",
            _f(r.get("epoch_reached"), "d"),
            _f(r.get("seconds_to_target"), ".2f"),
            _f(r.get("eval_seconds_to_target"), ".2f"),
            _f(r.get("epochs_cap"), "d"),
        ]
        for r in data.time_to_accuracy
    ]


def notes(data: RunData, markdown: bool = False) -> list[str]:
    """The lines below the table, plain text."""
    lines, reference = [], data.reference
    sched = data.runs.get("schedule")
    if sched and reference and reference.get("blocks"):
        settings = data.runs.get("settings", {})
        rounds = len(sched.get("rounds", []))
        lines.append(
            f"Measured side by side: every process alive at once, training in turns of "
            f"{settings.get('block_steps')} steps, in an order shuffled each round (seed "
            f"{sched.get('order_seed')}; {rounds} rounds). A ratio is the median over rounds of "
            f"the reference's block time over the variant's, steady blocks only (the first, "
            f"start-up, is apart); all-in sums every paired block, stalls included. 95% "
            f"intervals from a paired bootstrap over rounds (BCa). A verdict of faster or slower "
            f"needs the interval to clear 1 by the A/A control's margin (how far a second raw "
            f"PyTorch process reads from the first; here "
            f"+-{reference['speed'].get('margin', 0):.2f}); otherwise it is indistinguishable."
        )
        state = reference["speed"]["machine"]
        lines.append(
            f"Machine during the reference's blocks: steal {state.get('steal_share', 0):.1%} "
            f"of CPU time, CPU/wall {state.get('cpu_per_wall', 0):.2f} on "
            f"{data.setting('threads')} threads, load {state.get('load_1min', 0):.2f}; its "
            f"steady blocks vary by {reference['speed']['variation'] or 0:.1%} (coefficient of "
            f"variation), {max(0.0, reference['speed']['drift_share'] or 0):.0%} of it slow drift."
        )
    elif data.training:
        lines.append(
            "Single measurement per variant: no interval (a run from before interleaving)."
        )
    lines += [f"NOISY RUN: {flag}." for flag in data.flags]
    if data.floor and reference:
        floor = data.floor["images_per_second"]
        lines.append(
            f"Feeding floor: raw PyTorch trains at {reference['images_per_second']:,.0f} images/s, "
            f"{reference['images_per_second'] / floor:.2f} of the tensor-slicing floor "
            f"({floor:,.0f} images/s: the same model fed by slicing in-memory tensors, no "
            f"DataLoader)."
        )
    if data.cache:
        lines.append(
            f"Cache load: {data.cache.get('dataset', '')} loads from its parsed cache in "
            f"{data.cache['load_seconds']:.3f} s."
        )
    split = data.runs.get("split")
    if split:
        parts = ("training", "evaluation", "imports", "checkpoints", "warm_up")
        own = ", ".join(
            f"{part.replace('_', '-')} {split[f'{part}_seconds']:.1f} s"
            for part in parts
            if f"{part}_seconds" in split
        )
        lines.append(
            f"Wall time {split['wall_seconds']:.1f} s: the suites' own work "
            f"{split['suites_seconds']:.1f} s ({own}); the harness (process starts, pytest, data "
            f"loading, the driver) {split['harness_seconds']:.1f} s "
            f"({100 * split['harness_share']:.1f}%)."
        )
    code = _md_code if markdown else str
    lines += [
        f"{e['variant']} {e['status']}" + (f": {code(e['error'])}" if e.get("error") else "")
        for e in data.incomplete
    ]
    return lines


def _markdown_table(headers, rows) -> str:
    escape = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    return tabulate(
        escape, headers, tablefmt="pipe", disable_numparse=True, colalign=_align(headers)
    )


def _align(headers) -> list[str]:
    numeric_from = NUMERIC_FROM if headers in (HEADERS, OVERHEAD_HEADERS) else 2
    return ["left"] * numeric_from + ["right"] * (len(headers) - numeric_from)


# --- summary.md --------------------------------------------------------------------------------
def write_summary(data: RunData, out: Path) -> Path:
    parts = [
        f"# {_title(data)}",
        "\n".join(f"- **{k}**: {v}" for k, v in _facts(data)),
        "## Training",
        _markdown_table(HEADERS, training_rows(data, markdown=True)),
        "\n".join(f"- {line}" for line in notes(data, markdown=True)),
    ]
    if data.overhead:
        parts += [
            "## Framework overhead per training step",
            _markdown_table(OVERHEAD_HEADERS, overhead_rows(data)),
        ]
    if data.time_to_accuracy:
        parts += ["## Time to accuracy", _markdown_table(TTA_HEADERS, tta_rows(data))]
    path = out / "summary.md"
    files.write_text(path, "\n\n".join(p for p in parts if p) + "\n")
    return path


# --- plots -------------------------------------------------------------------------------------
@functools.cache
def _colors() -> dict[str, tuple]:
    palette = matplotlib.colormaps["tab10"]
    return {v.id: palette(i % 10) for i, v in enumerate(_variants())}


def _color(variant_id: str):
    return _colors().get(variant_id, "gray")


def _figure(data: RunData, title: str, height: float, width: float = 9.0, grid: str = "both"):
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    ax.set_title(title, loc="left", fontsize=13, fontweight="bold", pad=20)
    ax.text(0, 1.015, _subtitle(data), transform=ax.transAxes, fontsize=9, color="dimgray")
    ax.grid(axis=grid, color="0.9")
    ax.set_axisbelow(True)
    return fig, ax


def plot_throughput(data: RunData) -> Figure | None:
    reference = data.reference
    if not reference:
        return None
    rows = data.training
    points, lows, highs = [], [], []
    for row in rows:
        ratio = row["speed"].get("ratio")
        if row is reference:
            ratio = {"point": 1.0, "low": 1.0, "high": 1.0}
        elif ratio is None:  # no blocks: the whole-run ratio, a single measurement
            single = row["images_per_second"] / reference["images_per_second"]
            ratio = {"point": single, "low": single, "high": single}
        points.append(ratio["point"])
        lows.append(ratio["point"] - ratio["low"])
        highs.append(ratio["high"] - ratio["point"])
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
    ax.set_yticks(range(len(rows)), [f"{r['label']} ({_mode_text(r)})" for r in rows])
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    texts = []
    for row, point, high in zip(rows, points, highs, strict=True):
        verdict = row["speed"].get("verdict", "")
        text = f"{point:.2f}×"
        if verdict and verdict != "reference":
            text += f" ±{high:.2f} {verdict}" if has_intervals else f" {verdict}"
        texts.append(text)
    labels = ax.bar_label(bars, texts, padding=3 + 8 * has_intervals, fontsize=8)
    for label in labels:  # readable where it crosses the line at 1.0
        label.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax.set_xlim(0, max(p + h for p, h in zip(points, highs, strict=True)) * 1.45)
    margin = reference["speed"].get("margin") or 0.0
    if margin:  # inside it, a difference can't be told from which process a variant got
        ax.axvspan(1 - margin, 1 + margin, color="0.85", zorder=0, label="A/A control's margin")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_xlabel(
        "steady speed ÷ raw PyTorch's (median of same-round pairs); bars: 95% interval"
        if has_intervals
        else "training images/s ÷ raw PyTorch's: single measurement, no interval"
    )
    return fig


def suite_loc(data: RunData) -> dict[str, tuple[int, bool]]:
    """LOC per suite in the run: (measured, True), or counted from the source now, False."""
    locs = {}
    for row in data.training:
        locs.setdefault(row["suite"], (row["loc"], True))
    paths = {v.suite: v.path for v in _variants()}
    for entry in data.incomplete:
        suite = entry["suite"]
        if suite not in locs and suite in paths and paths[suite].exists():
            locs[suite] = (metrics.count_file_lines(paths[suite])["loc"], False)
    order = [v.suite for v in _variants()]
    return dict(
        sorted(
            locs.items(),
            key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
        )
    )


def plot_loc(data: RunData) -> Figure | None:
    locs = suite_loc(data)
    if not locs:
        return None
    first = {}
    for v in _variants():
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
            "hatched: did not complete; counted from the source as it is now",
            fontsize=8,
            color="dimgray",
        )
    return fig


def plot_accuracy(data: RunData) -> Figure | None:
    rows = [r for r in data.per_variant if r["epoch_history"]]
    if not rows:
        return None
    fig, ax = _figure(data, "Test accuracy after each epoch", 4.8)
    for row in rows:
        history = row["epoch_history"]
        ax.plot(
            [h["epoch"] for h in history],
            [100 * h["test_accuracy"] for h in history],
            marker="o",
            color=_color(row["variant"]),
            label=f"{row['variant']} ({row['mode']})",
        )
    epochs = sorted({h["epoch"] for row in rows for h in row["epoch_history"]})
    ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
    if len(epochs) <= 15:
        ax.set_xticks(epochs)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
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
    ax.set_xlabel("LOC (logical lines of the suite's file)")
    ax.set_ylabel("steady-state training images/s (95% interval)")
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
            k = modes.index(mode)
            row = rows[variant, mode]
            point, below, above = _steady_images(row)
            start_up = (row.get("speed", {}).get("start_up") or {}).get("start_up_seconds")
            bars = ax.bar(
                i + (j - (len(present) - 1) / 2) * width,
                point,
                width,
                yerr=[[below], [above]] if below or above else None,
                capsize=2,
                color=palette(k % 8),
            )
            label = f"{point:,.0f}" + (f"\n+{start_up:.0f} s" if start_up and start_up >= 1 else "")
            ax.bar_label(bars, [label], padding=2, fontsize=7)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("steady-state training images/s")
    ax.set_xlabel(
        "error bars: 95% interval over blocks; +N s: start-up (tracing, compiling) paid once",
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


PLOTS = {
    "throughput": plot_throughput,
    "loc": plot_loc,
    "accuracy_per_epoch": plot_accuracy,
    "loc_vs_speed": plot_loc_vs_speed,
    "modes": plot_modes,
}


def write_plots(data: RunData, out: Path) -> list[str]:
    """Each plot as PNG and SVG; returns the names written."""
    written = []
    for name, plot in PLOTS.items():
        fig = plot(data)
        if fig is None:
            continue
        fig.savefig(out / f"{name}.png", dpi=150)
        fig.savefig(out / f"{name}.svg", metadata={"Date": None})
        written.append(name)
    return written


# --- index.html --------------------------------------------------------------------------------
CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1500px;padding:0 1rem;
color:#1f2328}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;font-size:13px;margin:.5rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e5e7eb;white-space:nowrap}
thead th{background:#f6f8fa}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
.wide{overflow-x:auto}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(820px,1fr));gap:1rem}
figure{margin:0}figure img{width:100%;max-width:960px;height:auto;border:1px solid #e5e7eb}
.sources{display:flex;gap:1rem;overflow-x:auto;align-items:flex-start;padding-bottom:.5rem}
.source{flex:0 0 38rem;border:1px solid #d0d7de;border-radius:6px;overflow:hidden}
.source h3{margin:0;padding:.5rem .75rem;background:#f6f8fa;font-size:1rem}
.source .highlight{max-height:80vh;overflow:auto;margin:0}
.source pre{margin:0;padding:.5rem .75rem;font-size:12px;line-height:1.4}
span.linenos{user-select:none}
"""


def _html_table(headers, rows) -> str:
    # tabulate's "html" format escapes every cell and header
    return tabulate(rows, headers, tablefmt="html", disable_numparse=True, colalign=_align(headers))


def _sources(data: RunData) -> str:
    in_run = {r["suite"] for r in data.training} | {e["suite"] for e in data.incomplete}
    paths = {v.suite: v.path for v in _variants() if v.suite in in_run}
    locs, formatter = suite_loc(data), HtmlFormatter(linenos="inline")
    columns = []
    for suite, path in paths.items():
        loc, measured = locs.get(suite) or (metrics.count_file_lines(path)["loc"], False)
        code = highlight(path.read_text(), PythonLexer(), formatter)
        columns.append(
            f'<div class="source"><h3>{html.escape(suite)} · {loc} LOC'
            f"{'' if measured else ' (counted now)'}</h3>{code}</div>"
        )
    return f'<div class="sources">{"".join(columns)}</div>'


def write_html(data: RunData, out: Path, plots: list[str]) -> Path:
    e = html.escape
    env = data.environment
    facts = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in _facts(data))
    versions = _html_table(("distribution", "version"), sorted(env.get("versions", {}).items()))
    checksums = _html_table(("file", "sha256"), sorted(env.get("data_checksums", {}).items()))
    figures = "".join(
        f'<figure><img alt="{e(name)}" src="data:image/svg+xml;base64,'
        f'{base64.b64encode((out / f"{name}.svg").read_bytes()).decode()}"></figure>'
        for name in plots
    )
    tta = (
        f"<h2>Time to accuracy</h2>{_html_table(TTA_HEADERS, tta_rows(data))}"
        if data.time_to_accuracy
        else ""
    )
    if data.overhead:
        tta = (
            "<h2>Framework overhead per training step</h2>"
            f"{_html_table(OVERHEAD_HEADERS, overhead_rows(data))}{tta}"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(_title(data))}</title>
<style>{CSS}{HtmlFormatter().get_style_defs(".highlight")}</style></head>
<body>
<h1>{e(_title(data))}</h1>
<h2>Environment</h2><dl class="facts">{facts}</dl>
<details><summary>Versions</summary>{versions}</details>
<details><summary>Data checksums</summary>{checksums}</details>
<h2>Training</h2><div class="wide">{_html_table(HEADERS, training_rows(data))}</div>
<ul>{"".join(f"<li>{e(line)}</li>" for line in notes(data))}</ul>
{tta}
<h2>Plots</h2><div class="plots">{figures}</div>
<h2>Sources</h2>
<p>The suites' files as they are in the working tree now (the run was at commit
{e(env.get("git_commit", "unknown")[:12])}). Scroll sideways for more suites.</p>
{_sources(data)}
</body></html>
"""
    path = out / "index.html"
    files.write_text(path, page)
    return path


# --- all of it ---------------------------------------------------------------------------------
def write_report(run_dir: Path) -> Path:
    """Writes run_dir/report/ (summary.md, plots, index.html); returns the path of summary.md."""
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(data, out)
    summary = write_summary(data, out)
    write_html(data, out, plots)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.report", description=__doc__)
    parser.add_argument("run_dir", type=Path, nargs="?", help="default: newest in results/")
    args = parser.parse_args(argv)
    runs = sorted((ROOT / "results").glob("*/runs.json"))  # folders named by date-time
    run_dir = args.run_dir or (runs[-1].parent if runs else None)
    if run_dir is None:
        parser.error("no run folder given and none in results/")
    if not (run_dir / "runs.json").is_file():
        parser.error(f"{run_dir} is not a comparison run: it has no runs.json")
    try:
        summary = write_report(run_dir)
    except ReportError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(summary.read_text())
    print(f"report: {summary.parent / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
