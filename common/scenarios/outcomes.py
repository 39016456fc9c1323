"""What a child process left behind, read back: its outcome (from pytest's JUnit XML, its exit
status and its benchmark JSON), the merged benchmark.json, and the wall time's split between
the suites' own work and the harness's."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.task import files

# A child that stops before any test ran (its data can't be loaded, a setting is refused) writes
# its one-line reason to the file this variable names, so the driver reports that line, not
# pytest's "no tests ran".
REASON_ENV = "MNIST_COMPARE_REASON"


def reason_file(log: Path) -> Path:
    return log.with_suffix(".reason")


def write_reason(message: str) -> None:
    """In a child: leave the reason it stops for where the driver looks (a no-op elsewhere)."""
    target = os.environ.get(REASON_ENV)
    if target:
        files.write_text(Path(target), message.strip().splitlines()[0] + "\n")


def junit_outcome(path: Path) -> tuple[list[str], list[str]]:
    """The first line of each failure or error, and each skip's reason, from pytest's JUnit XML:
    structured, so a long message is never cut to the terminal's width."""
    if not path.exists():
        return [], []
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError:
        return [], []
    failures, skips = [], []
    for case in root.iter("testcase"):
        for element in case:
            message = (element.get("message") or element.text or "").strip()
            first = message.splitlines()[0] if message else element.tag
            if element.tag in ("failure", "error"):
                failures.append(first)
            elif element.tag == "skipped":
                skips.append(re.sub(r"^Skipped: ", "", first))
    return failures, skips


def outcome(returncode: int, junit: Path, benchmarks: list[dict], log: Path):
    """ok / failed / skipped, and the reason, from the structured records the child left."""
    failures, skips = junit_outcome(junit)
    if failures:
        return "failed", failures[0]
    if returncode not in (0, 5):
        reason = reason_file(log)
        if reason.exists():
            return "failed", reason.read_text(errors="replace").strip()
        tail = last_line(log)
        return "failed", f"exit status {returncode}" + (f": {tail}" if tail else "")
    if any("epoch_history" in b.get("extra_info", {}) for b in benchmarks):
        return "ok", None
    return "skipped", skips[0] if skips else "no benchmark ran"


def last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def read_benchmarks(path: Path, name: str) -> tuple[list[dict], str | None]:
    """A child's pytest-benchmark records, or why they could not be read."""
    if not path.exists():
        return [], None
    try:
        return json.loads(path.read_text())["benchmarks"], None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        return [], f"its benchmark JSON {name} is unreadable ({type(error).__name__})"


def merge(run_dir: Path, runs: Sequence[Mapping]) -> None:
    """All variants' pytest-benchmark JSON as one file of the same format."""
    merged = None
    for entry in runs:
        if entry["status"] != "ok" or not (run_dir / entry["json"]).exists():
            continue
        path = run_dir / entry["json"]
        data = json.loads(path.read_text())
        if merged is None:
            merged = {**data, "benchmarks": []}
        merged["benchmarks"] += data["benchmarks"]
    if merged is not None:
        files.write_json(run_dir / "benchmark.json", merged)


def harness_split(benchmarks: list[dict], wall_seconds: float) -> dict:
    """Wall time split into the suites' own work and the harness's: process starts, pytest,
    data loading and the driver itself (everything not measured inside a suite)."""
    parts = dict.fromkeys(("training", "evaluation", "imports", "checkpoints", "warm_up"), 0.0)
    for bench in benchmarks:
        info = bench.get("extra_info", {})
        if "epoch_history" in info:
            parts["training"] += info["train_seconds"] * info["rounds"]
            parts["evaluation"] += info["eval_seconds"] + info["predict_seconds"]
            parts["imports"] += info["import_seconds"]
            parts["checkpoints"] += info.get("checkpoint_seconds", 0.0)  # older records lack it
            parts["warm_up"] += info.get("warm_up_seconds", 0.0)
        else:  # the feeding floor and the cache load: measurements too
            parts["training"] += bench["stats"]["total"]
    harness = wall_seconds - sum(parts.values())
    return {
        "wall_seconds": wall_seconds,
        **{f"{k}_seconds": v for k, v in parts.items()},
        "suites_seconds": sum(parts.values()),
        "harness_seconds": harness,
        "harness_share": harness / wall_seconds if wall_seconds else 0.0,
    }
