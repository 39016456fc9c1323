"""The run folder: its JSON files read into one RunData, with every row's speed figures against
its group's reference computed here (ratios within a run, never across runs)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from common import accuracy, metrics, registry, speed, task

SEEDS_RECORDS = Path(__file__).resolve().parents[2] / "docs" / "results"  # seeds-<dataset>/


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
    # accuracy over seeds (common/accuracy.py): this run's own when it trained several seeds,
    # else merged from the newest matching seeds run; and where they come from
    accuracy: list[dict] = field(default_factory=list)
    accuracy_source: str = ""

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
    add_speed(rows)
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
            locs[suite] = (metrics.count_file_lines(paths[suite])["loc"], False)
    order = [v.suite for v in variants()]
    return dict(
        sorted(
            locs.items(),
            key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
        )
    )
