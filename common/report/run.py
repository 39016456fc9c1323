"""The run folder read into one RunData, as it was written: runs.json, benchmark.json, each
process's own record, environment.json, and the suites' sources the run recorded (sources/;
today's suites/ for a run that recorded none). Nothing is computed here: analysis.py adds
the speed figures, the accuracy over seeds, LOC and diffs."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import task
from common.task import code, paths, records, registry

Row = dict[str, Any]  # one benchmark's extra_info, or a runs.json entry, with the run's labels


@functools.cache
def known_variants() -> tuple[registry.Variant, ...]:
    return tuple(registry.variants())


# --- the run folder ----------------------------------------------------------------------------
@dataclass
class RunData:
    environment: dict[str, Any]
    runs: dict[str, Any]
    jobs: list[Row]  # extra_info of every training process: each replicate, each group's copy
    incomplete: list[Row]  # runs.json entries that are not ok: failed, skipped, interrupted...
    floor: Row | None
    cache: Row | None
    time_to_accuracy: list[Row]
    name: str = ""  # the run folder's name
    folder: Path = field(default_factory=Path)
    # {suite: its file's text}: the copies the run recorded as it started, else today's suites/
    sources: dict[str, str] = field(default_factory=dict)
    sources_recorded: bool = False

    # --- what analysis.py makes of it ---
    # one row per (variant, mode, switch, seed, role) in table order, with its "speed" figures
    training: list[Row] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # why to read its speed figures with care
    phase_notes: list[str] = field(default_factory=list)  # the pairs with a slow phase
    fault_notes: list[str] = field(default_factory=list)  # the rows with fresh memory each step
    # accuracy over seeds (common/report/seeds.py): this run's own when it trained several seeds,
    # else merged from the newest matching seeds run; and where they come from
    accuracy: list[dict] = field(default_factory=list)
    accuracy_source: str = ""
    source_loc: dict[str, int] = field(default_factory=dict)  # LOC counted on the sources
    suite_loc: dict[str, tuple[int, bool]] = field(default_factory=dict)  # (LOC, measured)
    diffs: dict[str, tuple[code.SectionDiff, ...]] = field(default_factory=dict)  # vs reference
    # {suite: (its nearest relative, the diff against it)}, for suites that declare one
    relative_diffs: dict[str, tuple[str, tuple[code.SectionDiff, ...]]] = field(
        default_factory=dict
    )
    # the run's entry of report/figures.json once written (common/report/figures.py): what
    # the report renders its speed figures, flags and notes from
    figures: records.RunFigures | None = None

    @property
    def reference(self) -> Row | None:
        """raw PyTorch's row as written (group 1's reference job): rows are sorted so that it
        comes first."""
        return next((r for r in self.training if r.get("reference_job")), None) or next(
            (r for r in self.training if r["suite"] == registry.REFERENCE), None
        )

    @property
    def replicates(self) -> int:
        """Independent sets of processes this run measured (1: a run from before replicates)."""
        return int(self.runs.get("settings", {}).get("replicates") or 1)

    @property
    def overhead(self) -> bool:
        return self.setting("model") == "linear"

    @property
    def per_variant(self) -> list[Row]:
        """One row per variant, the one in its default mode (or the first one measured)."""
        seen: dict[str, Row] = {}
        for row in self.training:
            if not row.get("group_copy"):
                seen.setdefault(row["variant"], row)
        return list(seen.values())

    @property
    def has_modes(self) -> bool:
        """Some variant was measured in more than one execution mode."""
        pairs = {(r["variant"], r["mode"]) for r in self.training}
        return len(pairs) > len({r["variant"] for r in self.training})

    def setting(self, name: str) -> Any:
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


def order(variant_id: str, mode: str | None = None) -> tuple:
    """Registry order (raw PyTorch first); within a variant its default mode, then the others."""
    known = {v.id: (i, v) for i, v in enumerate(known_variants())}
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
                "replicate": entry.get("replicate", 1),
            }
        )
    return rows, lost


def read_run(run_dir: Path) -> RunData:
    """The run folder as it was written; ReportError names a run file that is not JSON."""
    run_dir = Path(run_dir)
    benchmarks = _read_json(run_dir / "benchmark.json").get("benchmarks", [])
    infos = [b.get("extra_info", {}) for b in benchmarks]
    runs = _read_json(run_dir / "runs.json")
    jobs, lost = _from_jobs(run_dir, runs) if runs.get("kind") == "comparison-run" else ([], [])
    if not jobs:  # a run from before interleaving
        jobs, lost = _from_merged(run_dir, infos, runs)
    incomplete = [e for e in runs.get("variants", []) if e.get("status") != "ok"] + lost
    sources, recorded = _read_sources(run_dir)
    return RunData(
        name=run_dir.name,
        folder=run_dir,
        environment=_read_json(run_dir / "environment.json"),
        runs=runs,
        jobs=jobs,
        incomplete=sorted(incomplete, key=lambda e: order(e["variant"])),
        floor=next((i for i in infos if i.get("baseline") == "tensor-slicing floor"), None),
        cache=next((i for i in infos if "load_seconds" in i and i.get("source") == "cache"), None),
        time_to_accuracy=sorted(
            (i for i in infos if "target_accuracy" in i),
            key=lambda r: order(r["variant"], r.get("mode")),
        ),
        sources=sources,
        sources_recorded=recorded,
    )


def _from_merged(run_dir: Path, infos: list[Row], runs: dict) -> tuple[list[Row], list[Row]]:
    """A run from before interleaving: one row per (variant, mode, seed) from benchmark.json,
    no blocks; and the entries that finished but have no record there, as incomplete ones."""
    training: dict[tuple, Row] = {}
    for info in infos:
        if (
            "epoch_history" in info
            and "images_per_second" in info
            and "target_accuracy" not in info
        ):
            training.setdefault((info["variant"], info["mode"], info.get("seed")), info)
    firsts: set[tuple] = set()  # a second seed of a (variant, mode) is labelled with its seed
    rows = []
    for (variant, mode, seed), info in training.items():
        label = variant if (variant, mode) not in firsts else f"{variant} seed {seed}"
        firsts.add((variant, mode))
        rows.append({**info, "label": label, "group": 1})
    rows.sort(key=lambda r: order(r["variant"], r["mode"]))
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
    return rows, lost


def _read_sources(run_dir: Path) -> tuple[dict[str, str], bool]:
    """{suite: text} of the suites' files the run recorded as it started (code.record_sources),
    and True; for a run that recorded none, today's suites/ and False."""
    recorded = sorted((run_dir / code.SOURCES).glob("*.py"))
    found = recorded or sorted(paths.SUITES.glob("*.py"))
    return {path.stem: path.read_text() for path in found}, bool(recorded)
