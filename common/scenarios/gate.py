"""The regression gate: `python -m common instructions --compare BASELINE NEW [--factor 1.05]`.

Reads two runs' instruction counts per step (an instructions run's instructions.json, an
attribution run's attribution.json, or a versions run's versions.json, or their folders) and
fails when a variant's count in NEW exceeds BASELINE's by more than the factor. It names the
functions whose counts grew most: callgrind's C functions, and, from attribution runs, the
Python functions whose own calls grew. Instruction counts are the same on a loaded machine as
on a quiet one (two repeats agree within 1%), so the gate can run in CI on any machine; asv's
default factor is 1.1, this one's 1.05 (five times the repeats' disagreement).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FACTOR = 1.05
FILES = ("attribution.json", "instructions.json", "versions.json")
NAMED = 5  # grown functions named per variant


class GateError(ValueError):
    """A file that holds no instruction counts, or two runs with no variant in common."""


@dataclass
class Counted:
    """One variant's per-step counts in a run."""

    label: str
    instructions: float
    functions: dict[str, float] = field(default_factory=dict)  # "object: C function"
    calls_made: dict[str, float] = field(default_factory=dict)  # "module.function"


@dataclass
class Verdict:
    label: str
    baseline: float
    new: float
    factor: float
    grown: list[tuple[str, float]]

    @property
    def ratio(self) -> float:
        return self.new / self.baseline

    @property
    def regressed(self) -> bool:
        return self.ratio > self.factor


def counted(record: dict, label: str) -> Counted | None:
    """An attribution record's counts (None: it counted no instructions)."""
    instructions = record.get("instructions") or {}
    if instructions.get("per_step") is None:
        return None
    functions = {
        f"{key.split(chr(9))[0].rsplit('/', 1)[-1]}: {key.split(chr(9))[1]}": value
        for key, value in instructions.get("keys", {}).items()
    }
    made = {
        ".".join(key.split("\t")[1:]): value
        for key, value in (record.get("calls") or {}).get("made", {}).items()
    }
    return Counted(label, instructions["per_step"], functions, made)


def read_counts(path: Path) -> dict[str, Counted]:
    """Each variant's counts in a run file (or a run folder holding one of FILES)."""
    path = Path(path)
    if path.is_dir():
        found = next((path / name for name in FILES if (path / name).exists()), None)
        if found is None:
            raise GateError(f"{path}: no {', '.join(FILES)} in this folder")
        path = found
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise GateError(f"{path}: cannot read it as JSON ({error})") from error
    by_label: dict[str, Counted] = {}
    for record in run.get("records", []) if isinstance(run, dict) else []:
        if "error" in record:
            continue
        label = record.get("label") or record.get("variant") or record.get("suite", "?")
        if record.get("kind") == "instruction-count":
            by_label[label] = Counted(label, min(record["per_step"]))
        elif counts := counted(record, label):
            by_label[label] = counts
    if not by_label:
        kind = run.get("kind") if isinstance(run, dict) else None
        raise GateError(f"{path}: no instruction counts in it (kind {kind!r})")
    return by_label


def _grown(baseline: Counted, new: Counted) -> list[tuple[str, float]]:
    """The functions whose per-step counts grew most, instructions' and calls' together, each
    ranked by its share of its own count's growth."""
    ranked = []
    for before, after, unit in (
        (baseline.functions, new.functions, "instructions"),
        (baseline.calls_made, new.calls_made, "calls"),
    ):
        growth = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in {*before, *after}}
        ranked += [(f"{name} ({unit})", delta) for name, delta in growth.items() if delta > 0]
    ranked.sort(key=lambda item: -item[1])
    calls = [item for item in ranked if item[0].endswith("(calls)")][:2]
    return [*[item for item in ranked if item not in calls][: NAMED - len(calls)], *calls]


def compare_counts(baseline: dict[str, Counted], new: dict[str, Counted], factor: float = FACTOR):
    shared = [label for label in baseline if label in new]
    if not shared:
        raise GateError(
            f"no variant in common: the baseline has {', '.join(baseline)}, the new run "
            f"{', '.join(new)}"
        )
    return [
        Verdict(label, baseline[label].instructions, new[label].instructions, factor,
                _grown(baseline[label], new[label]))
        for label in shared
    ]  # fmt: skip


def _delta(value: float) -> str:
    return f"{value:+,.0f}" if abs(value) >= 100 else f"{value:+.3g}"


def table(verdicts: list[Verdict]) -> str:
    from tabulate import tabulate

    rows = [
        [
            v.label,
            f"{v.baseline:,.0f}",
            f"{v.new:,.0f}",
            f"{v.ratio:.3f}",
            f"REGRESSED (over {v.factor:g})" if v.regressed else f"ok (at most {v.factor:g})",
            "; ".join(f"{name} {_delta(delta)}" for name, delta in v.grown) or "—",
        ]
        for v in verdicts
    ]
    headers = ("variant", "baseline / step", "new / step", "ratio", "verdict", "grew most")
    return tabulate(rows, headers, tablefmt="pipe", disable_numparse=True)


def check(baseline: Path, new: Path, factor: float, echo=print) -> int:
    """The gate's exit status: 0 when no variant regressed, 1 when one did."""
    verdicts = compare_counts(read_counts(baseline), read_counts(new), factor)
    echo(table(verdicts))
    regressed = [v.label for v in verdicts if v.regressed]
    if regressed:
        echo(f"regression: {', '.join(regressed)} over {factor:g}x the baseline's instructions")
    return 1 if regressed else 0
