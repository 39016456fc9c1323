"""What the report makes of a run folder once read (common/report/run.py): each row's speed
figures against its group's reference (ratios within a run, never across runs), pooled over the
replicates; what should make a reader careful (flags, slow phases, page faults); the accuracy
over seeds; and the suites' code: LOC and each suite's diff against raw PyTorch, from the
sources the run recorded, else from today's suites/.

load_run(run_dir) is read_run and then analyse: what tables, plots and the page render from.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from common.measure import speed
from common.report import seeds
from common.report.run import Row, RunData, known_variants, order, read_run
from common.task import code, paths, registry

SEEDS_RECORDS = paths.RECORDS  # seeds-<dataset>/
FIGURES = ("ratio", "all_in", "overhead_us")  # pooled over the replicates


def load_run(run_dir: Path) -> RunData:
    """The run folder, read and analysed."""
    return analyse(read_run(Path(run_dir)))


def analyse(data: RunData) -> RunData:
    """Fills in data's analysis, in place: its table rows with their speed figures, the flags
    and notes on them, the accuracy over seeds, the suites' LOC and diffs. Returns data."""
    shown = add_speed(data.jobs)
    add_relative_speed(data.jobs)
    add_partial_speed(data)
    data.accuracy, data.accuracy_source = _accuracy(data, shown)
    data.training = sorted(shown, key=_table_order)
    data.flags = speed_flags(data)
    data.phase_notes = phase_notes(data)
    data.fault_notes = fault_notes(data)
    _analyse_code(data)
    return data


def _table_order(row: Row) -> tuple:
    return (
        order(row["variant"], row["mode"]),
        row.get("switch", "default") != "default",
        row.get("switch", ""),
        row["label"],
    )


# --- speed figures -----------------------------------------------------------------------------
def add_relative_speed(rows: list[Row]) -> None:
    """Each row whose suite declares a nearest relative (registry.Variant.relative) other than
    the reference: its ratio to that relative's row of the same group, replicate, mode (each
    one's default, or the same mode), switch and seed (measured side by side, as the
    reference's is), pooled over the replicates, in its speed figures' "relative"."""
    known = known_variants()
    relatives = {v.id: v.relative for v in known if v.relative_suite}
    if not relatives:
        return
    defaults = {v.id: (v.modes or ("default",))[0] for v in known}

    def where(row: Row) -> tuple:
        # Each in its own default mode (Flax's "xla" beside Keras' "graph"), else the same mode.
        mode = "default" if row["mode"] == defaults.get(row["variant"]) else row["mode"]
        return (row.get("group"), row.get("replicate", 1), mode, *_key(row)[2:4])

    measured = [r for r in rows if not r.get("group_copy") and not r.get("control")]
    found = {(r["variant"], *where(r)): r for r in measured}
    draws: dict[tuple, list] = {}
    for row in measured:
        relative = found.get((relatives.get(row["variant"]), *where(row)))
        if relative is not None:
            draws.setdefault(_key(row), []).append(_pair_figures(row, relative)["ratio"])
    pooled = speed.pool(draws)
    for row in measured:
        if row.get("replicate", 1) == 1 and _key(row) in pooled:
            ratio = pooled[_key(row)]
            row.setdefault("speed", {})["relative"] = {
                "kind": "relative-figures",
                "to": relatives[row["variant"]],
                "ratio": ratio.as_dict(),
                "verdict": speed.verdict(ratio),
            }


def add_partial_speed(data: RunData) -> None:
    """A process stopped mid-run (Ctrl-C, a signal) leaves the blocks it ran in runs.json: its
    ratio to its group's reference over the rounds both ran, in the entry's "partial_speed",
    when there are enough of them for an interval (the reference's own blocks come from its
    finished record, or from runs.json when it was stopped too)."""
    references = {
        r.get("group"): r.get("blocks") or [] for r in data.jobs if r.get("reference_job")
    }
    for entry in data.incomplete:
        if entry.get("reference") and entry.get("blocks"):
            references.setdefault(entry.get("group"), entry["blocks"])
    for entry in data.incomplete:
        blocks = entry.get("blocks")
        if not blocks or entry.get("reference"):
            continue
        ratio = speed.speed_ratio(references.get(entry.get("group"), []), blocks)
        if ratio is not None:
            entry["partial_speed"] = {
                "kind": "partial-speed",
                "ratio": ratio.as_dict(),
                "verdict": (
                    _control_verdict(ratio.as_dict())
                    if entry.get("control")
                    else speed.verdict(ratio)
                ),
            }


def _control_verdict(ratio: dict | None) -> str:
    if ratio is None:
        return "control: not measured"
    return "control: " + ("fails" if speed.control_failed(ratio) else "holds")


def _pair_figures(row: Row, reference: Row | None) -> dict[str, Any]:
    """One process's figures against its own group's reference: the replicate's draw."""
    blocks = row.get("blocks") or []
    figures = {
        "per_step": speed.per_step(blocks),
        "start_up": speed.start_up(blocks),
        "machine": speed.machine_state(blocks),
        "variation": speed.variation(blocks),
        "drift_share": speed.drift_share(blocks),
    }
    if reference is None or reference is row or not blocks:
        return {**figures, "ratio": None, "all_in": None, "overhead_us": None, "phases": None}
    ours = reference.get("blocks") or []
    used, phases = speed.phases(ours, blocks)
    return {
        **figures,
        "ratio": speed.speed_ratio(ours, used),
        "all_in": speed.all_in_ratio(ours, used),
        "overhead_us": speed.overhead_per_step(ours, used),
        "phases": phases,
    }


def _key(row: Row) -> tuple:
    """What a row is, the same in every replicate."""
    return (
        row["variant"],
        row["mode"],
        row.get("switch", "default"),
        row.get("seed"),
        bool(row.get("control")),
    )


Draws = dict[tuple, list[tuple[Row, dict[str, Any]]]]  # per key, each replicate's row, figures


def add_speed(rows: list[Row]) -> list[Row]:
    """Each row's speed figures: per replicate against its group's reference, then pooled over
    the replicates (measure.speed.pool). Returns the rows to show, one per key, each the first
    replicate's row with the pooled figures; the others' own figures are in its "replicates"."""
    references = {r["group"]: r for r in rows if r.get("reference_job")}
    draws: Draws = {}
    for row in rows:
        if not row.get("group_copy"):
            draws.setdefault(_key(row), []).append(
                (row, _pair_figures(row, references.get(row.get("group"))))
            )
    pooled = {
        name: speed.pool(
            {key: [figures[name] for _, figures in found] for key, found in draws.items()},
            log=name != "overhead_us",
        )
        for name in FIGURES
    }
    shown = []
    for key, found in draws.items():
        found.sort(key=lambda pair: pair[0].get("replicate", 1))
        row = found[0][0]
        reference = references.get(row.get("group"))
        row["speed"] = _shown_figures(found, {n: pooled[n].get(key) for n in FIGURES}, reference)
        shown.append(row)
    for row in rows:  # a group's copy of its reference: its own figures, shown as a copy
        if row.get("group_copy"):
            row["speed"] = _copy_figures(row)
            if row.get("replicate", 1) == 1:
                shown.append(row)
    return shown


def _shown_figures(
    found: list[tuple[Row, dict[str, Any]]], pooled: dict[str, Any], reference: Row | None
) -> dict[str, Any]:
    """A shown row's speed record: the pooled figures and verdicts, its first replicate's own
    per-step and machine figures, and every replicate's draw."""
    row, figures = found[0]
    ratio, all_in, overhead = (pooled[name] for name in FIGURES)
    return {
        "kind": "speed-figures",
        "ratio": ratio.as_dict() if ratio else None,
        "all_in": all_in.as_dict() if all_in else None,
        "overhead_us": overhead.as_dict() if overhead else None,
        "single_ratio": _single_ratio(row, reference),
        **_verdicts(row, ratio, overhead),
        "per_step": _as_dict(figures["per_step"]),
        "start_up": figures["start_up"],
        "machine": figures["machine"],
        "variation": figures["variation"],
        "drift_share": figures["drift_share"],
        "replicates": [_replicate_record(r, f) for r, f in found],
    }


def _verdicts(row: Row, ratio: speed.Pooled | None, overhead: speed.Pooled | None) -> dict:
    """The speed verdict and the overhead verdict of a shown row."""
    if row.get("reference_job") and row.get("replicate", 1) == 1:
        return {"verdict": "reference", "overhead_verdict": "reference"}
    if row.get("control"):
        return {
            "verdict": _control_verdict(ratio.as_dict() if ratio else None),
            "overhead_verdict": "control",
        }
    return {
        "verdict": speed.verdict(ratio) if row.get("blocks") else "single measurement",
        "overhead_verdict": speed.verdict(overhead, 0.0, "more overhead", "less overhead"),
    }


def _copy_figures(row: Row) -> dict[str, Any]:
    figures = _pair_figures(row, None)
    return {
        "kind": "speed-figures",
        **{k: _as_dict(v) for k, v in figures.items()},
        "verdict": "reference",
        "overhead_verdict": "reference",
        "replicates": [],
    }


def _as_dict(value):
    return value.as_dict() if hasattr(value, "as_dict") else value


def _single_ratio(row: Row, reference: Row | None) -> float | None:
    """A run from before interleaving: one whole-run throughput ratio, no interval."""
    if reference is None or row.get("blocks"):
        return None
    return row["images_per_second"] / reference["images_per_second"]


def _replicate_record(row: Row, figures: dict[str, Any]) -> dict[str, Any]:
    """One replicate's own figures, as the record keeps them."""
    blocks = [b for b in row.get("blocks") or [] if b["index"] > 0]
    faults = [b["page_faults"] / b["steps"] for b in blocks if b.get("page_faults") is not None]
    return {
        "kind": "replicate-figures",
        "replicate": row.get("replicate", 1),
        "label": row["label"],
        "group": row.get("group", 1),
        **{k: _as_dict(figures[k]) for k in ("ratio", "all_in", "overhead_us", "phases")},
        "page_faults_per_step": float(np.median(faults)) if faults else None,
        "allocator": row.get("allocator"),
    }


# --- what should make a reader careful (recorded in report/figures.json) -----------------------
def speed_flags(data: RunData) -> list[str]:
    """Why the speed figures of this run should be read with care (empty: nothing noticed)."""
    reference = data.reference
    if not reference or not reference.get("blocks"):
        return []
    flags = speed.noise_flags(reference["blocks"], [r.get("blocks", []) for r in data.training])
    for row in data.training:
        ratio = row.get("speed", {}).get("ratio")
        if row.get("control") and ratio and speed.control_failed(ratio):
            flags.append(
                f"raw PyTorch's second process (the A/A control) reads "
                f"{ratio['point']:.2f} [{ratio['low']:.2f}, {ratio['high']:.2f}] against the "
                f"first, not 1: two processes of the same code differed by more than the "
                f"intervals hold"
            )
        flags += _fault_flags(row)
    return flags


def _faults(row: Row) -> list[tuple[str, float]]:
    """(label, page faults a step) of each replicate of a row that counted them."""
    return [
        (d["label"], d["page_faults_per_step"])
        for d in row.get("speed", {}).get("replicates", [])
        if d.get("page_faults_per_step") is not None
    ]


def _fault_flags(row: Row) -> list[str]:
    """A row whose replicates took very different numbers of page faults a step."""
    faults = _faults(row)
    if not faults:
        return []
    most, least = max(faults, key=lambda f: f[1]), min(faults, key=lambda f: f[1])
    if most[1] > speed.FAULTY_STEP and most[1] > 2 * least[1] + 1:
        return [
            f"{most[0]} took {most[1]:,.0f} page faults a step in its steady blocks and "
            f"{least[0]} {least[1]:,.0f}: the processes' memory behaved differently "
            f"(common/measure/allocator.py)"
        ]
    return []


def phase_notes(data: RunData) -> list[str]:
    """Each pair whose early and late rounds disagreed (a slow phase): its figures use the
    late rounds alone."""
    notes = []
    for row in data.training:
        for draw in row.get("speed", {}).get("replicates", []):
            phase = draw.get("phases")
            if phase and phase["slow_phase"]:
                early, late = phase["early"], phase["late"]
                split = "epoch 1" if phase["split"] == "epoch" else "the first half"
                notes.append(
                    f"Slow phase: {draw['label']} read {early['point']:.2f} "
                    f"[{early['low']:.2f}, {early['high']:.2f}] in {split} and "
                    f"{late['point']:.2f} [{late['low']:.2f}, {late['high']:.2f}] after it; "
                    f"its figures use the later rounds only (common/measure/speed.py, phases)."
                )
    return notes


def fault_notes(data: RunData) -> list[str]:
    """Rows that take many page faults a step in every replicate: fresh memory each step
    (the framework's own allocation, not malloc's thresholds), whose cost their figures
    include, and which is larger on a VM that backs memory lazily."""
    notes = []
    for row in data.training:
        faults = [count for _, count in _faults(row)]
        if faults and min(faults) > speed.FAULTY_STEP:
            notes.append(
                f"Page faults: {row['label']} takes {min(faults):,.0f} minor page faults a "
                f"step in every replicate (fresh memory every step); its figures include "
                f"what they cost on this machine."
            )
    return notes


# --- accuracy over seeds -----------------------------------------------------------------------
def _accuracy(data: RunData, rows: list[Row]) -> tuple[list[dict], str]:
    """This run's own accuracy over seeds when it trained several, else the newest matching
    seeds run's (common/report/seeds.py); and where they come from."""
    settings = data.runs.get("settings", {})
    spreads, source = [], ""
    if seeds.has_seeds(rows):
        spreads, source = seeds.spreads(rows, settings), "this run"
    elif found := seeds.find_spreads(
        data.folder, settings, SEEDS_RECORDS / f"seeds-{settings.get('dataset', 'mnist')}"
    ):
        spreads, source = found
    return sorted(spreads, key=lambda r: order(r["variant"], r["mode"])), source


# --- the suites' code --------------------------------------------------------------------------
def _analyse_code(data: RunData) -> None:
    """LOC and the diff against the reference (and against its nearest relative, where it
    declares one) of each suite the run or the registry names, counted on the run's sources
    (data.sources: recorded, else today's)."""
    named = {r["suite"] for r in [*data.training, *data.incomplete]}
    wanted = [s for s in data.sources if s in named or s in {v.suite for v in known_variants()}]
    data.source_loc = {s: code.count_source_lines(data.sources[s])["loc"] for s in wanted}
    reference = data.sources.get(registry.REFERENCE)
    data.diffs = {
        suite: _diff(reference, data.sources[suite], (registry.REFERENCE, suite))
        for suite in wanted
        if reference is not None and suite != registry.REFERENCE
    }
    relatives = {v.suite: v.relative_suite for v in known_variants() if v.relative_suite}
    data.relative_diffs = {
        suite: (relative, _diff(data.sources[relative], data.sources[suite], (relative, suite)))
        for suite in wanted
        if (relative := relatives.get(suite)) in data.sources
    }
    data.suite_loc = _suite_loc(data)


@functools.cache
def _diff(base: str, source: str, names: tuple[str, str]) -> tuple[code.SectionDiff, ...]:
    """The suite's text against the reference's or its relative's, section by section (several
    runs with the same sources diff once); names: the two suites'."""
    return tuple(code.diff_sections(base, source, names))


def _suite_loc(data: RunData) -> dict[str, tuple[int, bool]]:
    """LOC per suite in the run: (measured, True), or counted from the run's sources, False."""
    locs: dict[str, tuple[int, bool]] = {}
    for row in data.training:
        locs.setdefault(row["suite"], (row["loc"], True))
    for entry in data.incomplete:
        suite = entry["suite"]
        if suite not in locs and suite in data.source_loc:
            locs[suite] = (data.source_loc[suite], False)
    ranks = [v.suite for v in known_variants()]
    return dict(
        sorted(
            locs.items(),
            key=lambda kv: (ranks.index(kv[0]) if kv[0] in ranks else len(ranks), kv[0]),
        )
    )
