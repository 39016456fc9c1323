"""The run folder: its JSON files read into one RunData, with every row's speed figures against
its group's reference computed here (ratios within a run, never across runs)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common import task
from common.measure import speed
from common.report import seeds as accuracy
from common.task import code, paths, registry

SEEDS_RECORDS = paths.RECORDS  # seeds-<dataset>/


@functools.cache
def variants() -> tuple[registry.Variant, ...]:
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
    name: str = ""  # the run folder's name
    # accuracy over seeds (common/report/seeds.py): this run's own when it trained several seeds,
    # else merged from the newest matching seeds run; and where they come from
    accuracy: list[dict] = field(default_factory=list)
    accuracy_source: str = ""
    # the run's entry of report/figures.json once written (common/report/figures.py): what
    # the report renders its speed figures, flags and notes from
    figures: dict | None = None

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
        if self.figures is not None:
            return self.figures["flags"]
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
                    f"first, not 1: two processes of the same code differed by more than the "
                    f"intervals hold"
                )
            faults = [
                (d["label"], d["page_faults_per_step"])
                for d in row.get("speed", {}).get("replicates", [])
                if d.get("page_faults_per_step") is not None
            ]
            most = max(faults, key=lambda f: f[1], default=None)
            least = min(faults, key=lambda f: f[1], default=None)
            if most and most[1] > speed.FAULTY_STEP and most[1] > 2 * least[1] + 1:
                flags.append(
                    f"{most[0]} took {most[1]:,.0f} page faults a step in its steady blocks and "
                    f"{least[0]} {least[1]:,.0f}: the processes' memory behaved differently "
                    f"(common/measure/allocator.py)"
                )
        return flags

    @property
    def phase_notes(self) -> list[str]:
        """Each pair whose early and late rounds disagreed (a slow phase): its figures use the
        late rounds alone."""
        if self.figures is not None:
            return self.figures["phase_notes"]
        notes = []
        for row in self.training:
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

    @property
    def fault_notes(self) -> list[str]:
        """Rows that take many page faults a step in every replicate: fresh memory each step
        (the framework's own allocation, not malloc's thresholds), whose cost their figures
        include, and which is larger on a VM that backs memory lazily."""
        notes = []
        for row in self.training:
            faults = [
                d["page_faults_per_step"]
                for d in row.get("speed", {}).get("replicates", [])
                if d.get("page_faults_per_step") is not None
            ]
            if faults and min(faults) > speed.FAULTY_STEP:
                notes.append(
                    f"Page faults: {row['label']} takes {min(faults):,.0f} minor page faults a "
                    f"step in every replicate (fresh memory every step); its figures include "
                    f"what they cost on this machine."
                )
        return notes

    @property
    def replicates(self) -> int:
        """Independent sets of processes this run measured (1: a run from before replicates)."""
        return int(self.runs.get("settings", {}).get("replicates") or 1)

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


def order(variant_id: str, mode: str | None = None) -> tuple:
    """Registry order (raw PyTorch first); within a variant its default mode, then the others."""
    known = {v.id: (i, v) for i, v in enumerate(variants())}
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


def _control_verdict(ratio: dict | None) -> str:
    if ratio is None:
        return "control: not measured"
    return "control: " + ("fails" if speed.control_failed(ratio) else "holds")


def _pair_figures(row: dict, reference: dict | None) -> dict:
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


def _key(row: dict) -> tuple:
    """What a row is, the same in every replicate."""
    return (
        row["variant"],
        row["mode"],
        row.get("switch", "default"),
        row.get("seed"),
        bool(row.get("control")),
    )


def add_speed(rows: list[dict]) -> list[dict]:
    """Each row's speed figures: per replicate against its group's reference, then pooled over
    the replicates (measure.speed.pool). Returns the rows to show, one per key, each the first
    replicate's row with the pooled figures; the others' own figures are in its "replicates"."""
    references = {r["group"]: r for r in rows if r.get("reference_job")}
    draws = {}
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
        for name in ("ratio", "all_in", "overhead_us")
    }
    shown = []
    for key, found in draws.items():
        found.sort(key=lambda pair: pair[0].get("replicate", 1))
        row, figures = found[0]
        reference = row.get("reference_job") and row.get("replicate", 1) == 1
        ratio, all_in, overhead = (pooled[name].get(key) for name in pooled)
        row["speed"] = {
            "kind": "speed-figures",
            "ratio": ratio.as_dict() if ratio else None,
            "all_in": all_in.as_dict() if all_in else None,
            "overhead_us": overhead.as_dict() if overhead else None,
            "single_ratio": _single_ratio(row, references.get(row.get("group"))),
            "verdict": "reference"
            if reference
            else _control_verdict(ratio and ratio.as_dict())
            if row.get("control")
            else speed.verdict(ratio)
            if row.get("blocks")
            else "single measurement",
            "overhead_verdict": "reference"
            if reference
            else "control"
            if row.get("control")
            else speed.verdict(overhead, 0.0, "more overhead", "less overhead"),
            "per_step": _as_dict(figures["per_step"]),
            "start_up": figures["start_up"],
            "machine": figures["machine"],
            "variation": figures["variation"],
            "drift_share": figures["drift_share"],
            "replicates": [_replicate_record(r, f) for r, f in found],
        }
        shown.append(row)
    for row in rows:  # a group's copy of its reference: its own figures, shown as a copy
        if row.get("group_copy"):
            figures = _pair_figures(row, None)
            row["speed"] = {
                "kind": "speed-figures",
                **{k: _as_dict(v) for k, v in figures.items()},
                "verdict": "reference",
                "overhead_verdict": "reference",
                "replicates": [],
            }
            if row.get("replicate", 1) == 1:
                shown.append(row)
    return shown


def _as_dict(value):
    return value.as_dict() if hasattr(value, "as_dict") else value


def _single_ratio(row: dict, reference: dict | None) -> float | None:
    """A run from before interleaving: one whole-run throughput ratio, no interval."""
    if reference is None or row.get("blocks"):
        return None
    return row["images_per_second"] / reference["images_per_second"]


def _replicate_record(row: dict, figures: dict) -> dict:
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


def load_run(run_dir: Path) -> RunData:
    benchmarks = _read_json(run_dir / "benchmark.json").get("benchmarks", [])
    infos = [b.get("extra_info", {}) for b in benchmarks]
    runs = _read_json(run_dir / "runs.json")
    rows, lost = _from_jobs(run_dir, runs) if runs.get("kind") == "comparison-run" else ([], [])
    if not rows:  # a run from before interleaving: one row per (variant, mode, seed), no blocks
        training: dict[tuple, dict] = {}
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
    rows = add_speed(rows)
    incomplete = [e for e in runs.get("variants", []) if e.get("status") != "ok"] + lost
    settings = runs.get("settings", {})
    spreads, source = [], ""
    if accuracy.has_seeds(rows):
        spreads, source = accuracy.spreads(rows, settings), "this run"
    elif found := accuracy.find_spreads(
        run_dir, settings, SEEDS_RECORDS / f"seeds-{settings.get('dataset', 'mnist')}"
    ):
        spreads, source = found
    return RunData(
        accuracy=sorted(spreads, key=lambda r: order(r["variant"], r["mode"])),
        accuracy_source=source,
        name=run_dir.name,
        environment=_read_json(run_dir / "environment.json"),
        runs=runs,
        training=sorted(
            rows,
            key=lambda r: (
                order(r["variant"], r["mode"]),
                r.get("switch", "default") != "default",
                r.get("switch", ""),
                r["label"],
            ),
        ),
        incomplete=sorted(incomplete, key=lambda e: order(e["variant"])),
        floor=next((i for i in infos if i.get("baseline") == "tensor-slicing floor"), None),
        cache=next((i for i in infos if "load_seconds" in i), None),
        time_to_accuracy=sorted(
            (i for i in infos if "target_accuracy" in i),
            key=lambda r: order(r["variant"], r.get("mode")),
        ),
    )


def suite_loc(data: RunData) -> dict[str, tuple[int, bool]]:
    """LOC per suite in the run: (measured, True), or counted from the source now, False."""
    locs = {}
    for row in data.training:
        locs.setdefault(row["suite"], (row["loc"], True))
    paths = {v.suite: v.path for v in variants()}
    for entry in data.incomplete:
        suite = entry["suite"]
        if suite not in locs and suite in paths and paths[suite].exists():
            locs[suite] = (code.count_file_lines(paths[suite])["loc"], False)
    order = [v.suite for v in variants()]
    return dict(
        sorted(
            locs.items(),
            key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
        )
    )
