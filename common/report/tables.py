"""The tables' cells and the notes below them, which summary.md and index.html share; and the
text of summary.md."""

from __future__ import annotations

from tabulate import tabulate

from common import task
from common.measure import environment
from common.report.run import Row, RunData, known_variants, order
from common.report.text import (
    MEASURE,
    TODAYS_SOURCES,
    changed_text,
    counted_on,
    environment_facts,
    fmt,
    interval_text,
    lines_text,
    md_code,
    mode_text,
    row_name,
    source_changed,
    title,
)

HEADERS = (
    "suite",
    "backend",
    "mode",
    "LOC",
    "lines +/− vs raw PyTorch",
    "ms/step (steady)",
    "images/s",
    "start-up s",
    "warm-up s",
    "vs raw PyTorch [95% CI]",
    "per replicate",
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
LOC_HEADERS = (
    "suite",
    "example LOC",
    "harness LOC",
    "file LOC",
    "lines +/− vs raw PyTorch",
)
RELATIVE_HEADERS = (
    "suite",
    "mode",
    "its nearest relative",
    "lines +/− vs relative",
    "speed vs relative [95% CI]",
    "verdict",
)
RELATIVE_NOTE = (
    'Each suite that declares a nearest relative (its SUITE\'s "relative") against it, beside '
    "its comparison with raw PyTorch: the diff of the two examples, and the ratio of their "
    "steady-state speeds, measured side by side in one group of processes and pooled over the "
    "replicates as every ratio is (above 1: faster than the relative). What the relative's "
    "framework adds or saves on the same backend."
)
ACCURACY_HEADERS = (
    "suite",
    "mode",
    "seeds",
    "test acc. % (mean ± sd)",
    "range %",
    "vs raw PyTorch, points [95% CI]",
    "verdict",
    "bar",
)
NUMERIC_FROM = 3  # HEADERS from here on are numbers, right-aligned (TTA_HEADERS: from 2)
ERROR_WIDTH = 40  # characters of an error shown in the table; the notes below give it whole


# --- the tables' cells ---------------------------------------------------------------------
# The first thing a reader sees: what each variant costs in code and in speed, and its accuracy,
# the same cells as the full table's (rendered from the same figures record), narrow enough for
# a laptop's screen without scrolling sideways.
GLANCE_HEADERS = (
    "suite",
    "mode",
    "LOC",
    "lines +/− vs raw PyTorch",
    "vs raw PyTorch [95% CI]",
    "verdict",
    "test acc. %",
)


def glance_rows(data: RunData, markdown: bool = False) -> list[list[str]]:
    picked = [HEADERS.index(name) for name in GLANCE_HEADERS]
    return [[row[i] for i in picked] for row in training_rows(data, markdown)]


def training_rows(data: RunData, markdown: bool = False) -> list[list[str]]:
    """The table's cells: measured rows and, in registry order among them, the incomplete
    (their error cut short: notes() gives it whole)."""
    return [cells for _, cells in _keyed_rows(data, markdown)]


def _role(row: dict) -> str:
    """What a row is beside its variant and mode: the A/A control, a group's copy, a seed."""
    role = "A/A control" if row.get("control") else "copy" if row.get("group_copy") else ""
    seed = row.get("label", "").partition("#")[2]  # a seeds run labels its jobs variant#seedN
    return ", ".join(filter(None, (role, seed)))


Key = tuple[str, str, str]  # what a row is, the same in every run: (variant, mode, role)


def _keyed_rows(data: RunData, markdown: bool) -> list[tuple[Key, list[str]]]:
    """training_rows with what a row is, the same in every run: (variant, mode, role)."""
    cells = [
        (
            (order(row["variant"], row["mode"]), row.get("switch", ""), row["label"]),
            (row["variant"], mode_text(row), _role(row)),
            _measured_cells(data, row),
        )
        for row in data.training
    ]
    cells += [
        (
            (order(entry["variant"]), "", entry.get("label", entry["variant"])),
            (entry["variant"], "—", ""),
            _incomplete_cells(data, entry, markdown),
        )
        for entry in data.incomplete
    ]
    return [(key, row) for _, key, row in sorted(cells, key=lambda c: c[0])]


def _measured_cells(data: RunData, row: Row) -> list[str]:
    figures = row.get("speed", {})
    per_step = figures.get("per_step")
    start_up = figures.get("start_up") or {}
    bytes_ = row.get("checkpoint_bytes")
    if per_step:
        step_text = f"{1e3 * per_step['point']:.2f} ± {1e3 * per_step['half_width']:.2f}"
        images = row.get("batch_size", task.BATCH_SIZE) / per_step["point"]
    else:  # a run without blocks: one whole-run figure
        step_text, images = "—", row["images_per_second"]
    reference = figures.get("verdict") == "reference"
    return [
        row_name(row),
        row.get("backend", ""),
        mode_text(row),
        fmt(row.get("loc"), "d"),
        changed_text(data, row["suite"]),
        step_text,
        fmt(images, ",.0f"),
        fmt(start_up.get("start_up_seconds"), ".2f"),
        fmt(row.get("warm_up_seconds"), ".2f"),
        _ratio_cell(figures),
        " · ".join(f"{p:.2f}" for p in (figures.get("ratio") or {}).get("replicates", [])),
        "" if reference else figures.get("verdict", ""),
        "" if reference else interval_text(figures.get("all_in"), ".2f"),
        fmt(100 * row["test_accuracy"], ".2f"),
        fmt(row.get("peak_rss_mb"), ",.0f"),
        fmt(row.get("import_seconds"), ".2f"),
        fmt(bytes_ and bytes_ / 1024, ",.0f"),
    ]


def _ratio_cell(figures: dict) -> str:
    """vs raw PyTorch: the reference, the pooled interval, or a run's single whole-run ratio."""
    ratio = figures.get("ratio")
    if figures.get("verdict") == "reference":
        return "1 (reference)"
    if ratio or figures.get("single_ratio") is None:
        return interval_text(ratio, ".2f")
    return f"{figures['single_ratio']:.2f} (single)"


def _incomplete_cells(data: RunData, entry: Row, markdown: bool) -> list[str]:
    """A variant that did not complete: its status in the LOC column, its error cut short."""
    variant = {v.id: v for v in known_variants()}.get(entry["variant"])
    error = entry.get("error") or ""
    error = error if len(error) <= ERROR_WIDTH else error[:ERROR_WIDTH] + "…"
    error = md_code(error) if markdown and error else error
    cells = [
        entry.get("label", entry["variant"]),
        (variant.backend if variant else None) or "",
        "—",
        entry["status"].upper(),
        changed_text(data, entry["suite"]),
        error,
        *[""] * (len(HEADERS) - NUMERIC_FROM - 3),
    ]
    if partial := entry.get("partial_speed"):  # the rounds it ran before it was stopped
        ratio = partial["ratio"]
        cells[HEADERS.index("vs raw PyTorch [95% CI]")] = (
            f"{interval_text(ratio, '.2f')} ({ratio['pairs']} rounds)"
        )
        cells[HEADERS.index("verdict")] = f"{partial['verdict']} (so far)"
    return cells


def overhead_rows(data: RunData) -> list[list[str]]:
    rows = []
    for row in data.training:
        figures = row.get("speed", {})
        per_step = figures.get("per_step")
        reference = figures.get("overhead_verdict") == "reference"
        rows.append(
            [
                row_name(row),
                row.get("backend", ""),
                row.get("switch", "default"),
                f"{1e6 * per_step['point']:,.0f} ± {1e6 * per_step['half_width']:,.0f}"
                if per_step
                else "—",
                "0 (reference)" if reference else interval_text(figures.get("overhead_us"), ",.0f"),
                "" if reference else figures.get("overhead_verdict", ""),
            ]
        )
    return rows


def tta_rows(data: RunData) -> list[list[str]]:
    return [
        [
            r["variant"],
            r.get("mode", ""),
            fmt(100 * r["target_accuracy"], ".2f"),
            "yes" if r["reached"] else "no",
            fmt(r.get("epoch_reached"), "d"),
            fmt(r.get("seconds_to_target"), ".2f"),
            fmt(r.get("eval_seconds_to_target"), ".2f"),
            fmt(r.get("epochs_cap"), "d"),
        ]
        for r in data.time_to_accuracy
    ]


def loc_rows(data: RunData) -> list[list[str]]:
    """Per suite: the example's logical lines (the headline LOC), the harness section's, the
    whole file's (radon, measured with the run), and the diff against raw PyTorch's example."""
    rows: dict[str, list[str]] = {}
    for row in data.training:
        rows.setdefault(
            row["suite"],
            [
                row["suite"],
                fmt(row.get("loc"), "d"),
                fmt(row.get("harness_loc"), "d"),
                fmt(row.get("file_loc"), "d"),
                changed_text(data, row["suite"]),
            ],
        )
    return list(rows.values())


def relative_rows(data: RunData) -> list[list[str]]:
    """Per row whose suite declares a relative: the lines changed against it and the speed ratio
    to it (the row's speed figures' "relative", from analysis.add_relative_speed)."""
    rows = []
    for row in data.training:
        relative = row.get("speed", {}).get("relative")
        suite, diffs = data.relative_diffs.get(row["suite"], (None, None))
        if relative is None and (suite is None or row.get("group_copy") or row.get("control")):
            continue
        rows.append(
            [
                row_name(row),
                mode_text(row),
                relative["to"] if relative else str(suite),
                lines_text(diffs),
                interval_text(relative and relative["ratio"], ".2f"),
                relative["verdict"] if relative else "not measured side by side",
            ]
        )
    return rows


def accuracy_rows(data: RunData) -> list[list[str]]:
    rows = []
    for r in data.accuracy:
        versus = r.get("versus_reference")
        bar = r.get("bar")
        rows.append(
            [
                r["variant"],
                r["mode"],
                str(len(r["seeds"])),
                f"{100 * r['mean']:.2f} ± {fmt(r['sd'] and 100 * r['sd'], '.2f')}",
                f"{100 * r['low']:.2f}–{100 * r['high']:.2f}",
                "reference" if versus is None else interval_text(versus, "+.2f", 100),
                "reference" if versus is None else versus["verdict"],
                "—" if bar is None else f"{'meets' if r['meets_bar'] else 'BELOW'} {100 * bar:g}%",
            ]
        )
    return rows


LOC_NOTE = (
    "Logical lines (radon). The example is each suite's file above its `# --- harness` section, "
    "what a learner copies; the harness section holds what exists only for the comparison "
    "(the SUITE registration, configure, describe, the callback that reports to the harness). "
    f"+/−: {MEASURE}."
)


def accuracy_note(data: RunData) -> str:
    """Where the accuracy over seeds comes from, and how to read it."""
    if not data.accuracy:
        return ""
    where = (
        "this run's seeds"
        if data.accuracy_source == "this run"
        else f"the seeds run {data.accuracy_source} (same dataset, epochs, sizes and model; "
        f"its own machine and date), not this run"
    )
    return (
        f"From {where}. Mean and sample standard deviation of the final test accuracy over the "
        "seeds; the difference to raw PyTorch's mean with a Welch 95% interval: higher or lower "
        "only when the interval excludes 0. Raw PyTorch, Lightning, Ignite and fastai train "
        "step-identical models for a seed, so their rows agree exactly; the bar is the task's, "
        "judged on the mean."
    )


def replicates_note(data: RunData) -> str:
    """How the intervals were made, and so what they hold."""
    if data.replicates == 1:
        return (
            "One replicate: 95% intervals from a paired bootstrap over rounds (BCa) hold the "
            "block-to-block noise but not what differs between two processes of the same code "
            "(run with --replicates 2 or more for that); the A/A control shows how much that is."
        )
    return (
        f"{data.replicates} replicates, each a fresh set of processes (its own reference and "
        f"A/A control) measured one after another: the table's figure is their mean (on the "
        f"log scale), its 95% interval from the replicates' spread pooled over every row, "
        f"with Student's t, never narrower than the rounds' own bootstrap (measure/speed.py, "
        f"pool). Faster or slower only when that interval excludes 1; the A/A control's must "
        f"contain it."
    )


def notes(data: RunData, markdown: bool = False) -> list[str]:
    """The lines below the table, plain text."""
    return [
        *_measurement_notes(data),
        *data.phase_notes,
        *data.fault_notes,
        *(f"NOISY RUN: {flag}." for flag in data.flags),
        *_code_notes(data),
        *_run_notes(data),
        *_incomplete_notes(data, markdown),
    ]


def _measurement_notes(data: RunData) -> list[str]:
    """How the speed figures were measured, and the machine during the reference's blocks."""
    reference, sched = data.reference, data.runs.get("schedule")
    if not (sched and reference and reference.get("blocks")):
        if data.training:
            return ["Single measurement per variant: no interval (a run from before interleaving)."]
        return []
    settings = data.runs.get("settings", {})
    rounds = len(sched.get("rounds", []))
    state, figures = reference["speed"]["machine"], reference["speed"]
    return [
        f"Measured side by side: every process alive at once, training in turns of "
        f"{settings.get('block_steps')} steps, in an order shuffled each round (seed "
        f"{sched.get('order_seed')}; {rounds} rounds). A ratio is the median over rounds of "
        f"the reference's block time over the variant's, steady blocks only (the first, "
        f"start-up, is apart); all-in sums every paired block, stalls included. "
        + replicates_note(data),
        f"Machine during the reference's blocks: steal {state.get('steal_share', 0):.1%} "
        f"of CPU time, CPU/wall {state.get('cpu_per_wall', 0):.2f} on "
        f"{data.setting('threads')} threads, load {state.get('load_1min', 0):.2f}; its "
        f"steady blocks vary by {figures['variation'] or 0:.1%} (coefficient of "
        f"variation), {max(0.0, figures['drift_share'] or 0):.0%} of it slow drift.",
    ]


def _code_notes(data: RunData) -> list[str]:
    """How the lines +/− are counted and on which files; a suite whose LOC differs there."""
    lines = []
    if data.training or data.incomplete:
        lines.append(f"Lines +/− vs raw PyTorch: {MEASURE}. {counted_on(data)}")
    if not data.sources_recorded:
        lines.append(TODAYS_SOURCES)
    for suite, (loc, measured) in data.suite_loc.items():
        counted = data.source_loc.get(suite)
        if measured and counted is not None and counted != loc:
            lines.append(source_changed(data, suite, loc, counted))
    return lines


def _run_notes(data: RunData) -> list[str]:
    """The feeding floor, the cache load, and where the run's wall time went."""
    lines, reference = [], data.reference
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
    mismatched = environment.pin_mismatches(data.environment)
    if mismatched:
        lines.append(
            f"**Not the pinned versions**: {', '.join(mismatched)}; the figures hold for these."
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
    return lines


def _incomplete_notes(data: RunData, markdown: bool) -> list[str]:
    """Each variant that did not complete, with its whole error."""
    code = md_code if markdown else str
    return [
        f"{e.get('label', e['variant'])} {e['status']}"  # the A/A control's label says so
        + (f": {code(e['error'])}" if e.get("error") else "")
        for e in data.incomplete
    ]


def _markdown_table(headers, rows) -> str:
    escape = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    return tabulate(
        escape, headers, tablefmt="pipe", disable_numparse=True, colalign=align(headers)
    )


def align(headers) -> list[str]:
    numeric_from = (
        NUMERIC_FROM
        if headers in (HEADERS, OVERHEAD_HEADERS)
        else len(headers)
        if headers == RUNS_HEADERS
        else 1
        if headers == LOC_HEADERS
        else 3
        if headers == RELATIVE_HEADERS
        else 2
    )
    return ["left"] * numeric_from + ["right"] * (len(headers) - numeric_from)


# --- summary.md --------------------------------------------------------------------------------
RUNS_HEADERS = ("run", "folder", "what", "machine", "device", "date", "commit")
SIDE_BY_SIDE = ("vs raw PyTorch [95% CI]", "images/s", "test acc. %")


def devices(data: RunData) -> str:
    found = sorted({str(r.get("device")) for r in data.training if r.get("device")})
    return ", ".join(found) or "—"


def runs_rows(runs: list[tuple[str, RunData]]) -> tuple[tuple[str, ...], list[list[str]]]:
    """One row per run: what it is, where and when it ran."""
    rows = []
    for label, data in runs:
        env = data.environment
        rows.append(
            [
                label,
                data.name,
                title(data),
                f"{env.get('cpu', 'unknown CPU')}, {data.setting('threads')} threads",
                devices(data),
                str(env.get("date", data.runs.get("started", ""))),
                env.get("git_commit", "unknown")[:12]
                + (" (dirty)" if env.get("git_dirty") else ""),
            ]
        )
    return RUNS_HEADERS, rows


def side_by_side_rows(
    runs: list[tuple[str, RunData]], markdown: bool = False
) -> tuple[tuple[str, ...], list[list[str]]]:
    """One row per (suite, mode) any run holds; per run its own ratio (against raw PyTorch in
    the same run: never across runs), images/s and accuracy, or its status."""
    columns = [HEADERS.index(name) for name in SIDE_BY_SIDE]
    status = HEADERS.index("LOC")
    cells: dict[tuple[str, str, str], dict[str, list[str]]] = {}
    for label, data in runs:
        for key, row in _keyed_rows(data, markdown):
            picked = [row[i] for i in columns]
            if not any(picked):  # did not complete: its status instead
                picked = [row[status], "", ""]
            cells.setdefault(key, {}).setdefault(label, picked)
    headers = ("suite", "mode") + tuple(
        f"{label}: {name}" for label, _ in runs for name in SIDE_BY_SIDE
    )
    rows = [
        [
            variant + (f" ({role})" if role else ""),
            mode,
            *(c for label, _ in runs for c in by_run.get(label, ["", "", ""])),
        ]
        for (variant, mode, role), by_run in sorted(cells.items(), key=_side_order)
    ]
    return headers, rows


def _side_order(item) -> tuple:
    (variant, mode, role), _ = item
    return order(variant, None if mode == "—" else mode.split(" +")[0]), role, mode


SIDE_BY_SIDE_NOTE = (
    "Each ratio is against raw PyTorch in the same run, never across runs; images/s and accuracy "
    "are each run's own measurements."
)


def summary_parts(data: RunData, depth: int = 1, heading: str = "") -> list[str]:
    """One run's part of summary.md; depth 2 under a heading of several runs."""
    h = "#" * depth
    parts = [
        f"{h} {heading}{title(data)}",
        *(
            [f"{h}# At a glance", _markdown_table(GLANCE_HEADERS, glance_rows(data, True))]
            if data.training
            else []
        ),
        "\n".join(f"- **{k}**: {v}" for k, v in environment_facts(data)),
        f"{h}# Training",
        _markdown_table(HEADERS, training_rows(data, markdown=True)),
        "\n".join(f"- {line}" for line in notes(data, markdown=True)),
    ]
    if relative := relative_rows(data):
        parts += [
            f"{h}# Against its nearest relative",
            _markdown_table(RELATIVE_HEADERS, relative),
            RELATIVE_NOTE,
        ]
    if data.overhead:
        parts += [
            f"{h}# Framework overhead per training step",
            _markdown_table(OVERHEAD_HEADERS, overhead_rows(data)),
        ]
    if data.training:
        parts += [
            f"{h}# Lines of code",
            _markdown_table(LOC_HEADERS, loc_rows(data)),
            LOC_NOTE,
        ]
    if data.accuracy:
        parts += [
            f"{h}# Accuracy over seeds",
            _markdown_table(ACCURACY_HEADERS, accuracy_rows(data)),
            accuracy_note(data),
        ]
    if data.time_to_accuracy:
        parts += [f"{h}# Time to accuracy", _markdown_table(TTA_HEADERS, tta_rows(data))]
    return parts


def summary(runs: list[tuple[str, RunData]]) -> str:
    """summary.md's text: one run as before; several, a table of runs and one side by side,
    then each run's own part."""
    if len(runs) == 1:
        parts = summary_parts(runs[0][1])
    else:
        parts = [
            f"# {len(runs)} runs side by side",
            _markdown_table(*runs_rows(runs)),
            "## Side by side",
            _markdown_table(*side_by_side_rows(runs, markdown=True)),
            SIDE_BY_SIDE_NOTE,
        ]
        for label, data in runs:
            parts += summary_parts(data, depth=2, heading=f"{label} ({data.name}): ")
    return "\n\n".join(p for p in parts if p) + "\n"
