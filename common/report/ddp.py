"""The ddp scenario's section of the report: one table from a run folder's ddp.json.

scenarios/distributed.py writes it as the run's summary.md; the report includes the same text.
"""

from __future__ import annotations

import json
from pathlib import Path

from common.report.section import Section, Table, read_record

QUIET_LOAD = 0.7  # 1-minute load average under which a timing counts as measured
COMPARED = ("single", "distributed")

COLUMNS = (
    "data-parallel suite",
    "launch",
    "test accuracy, 1 process / N processes (gap, points)",
    "images/s, 1 process x N threads / N processes x 1 thread (ratio)",
    "start-up s, 1 / N processes",
    "code lines added / removed (net logical lines)",
)


def ddp_section(run_dir: Path, elsewhere: str | None = None) -> str | None:
    """Markdown for a ddp run folder, or None when the folder holds no ddp.json."""
    section = read_section(run_dir, elsewhere)
    return section.markdown() if section else None


def read_section(run_dir: Path, elsewhere: str | None = None) -> Section | None:
    """The section of a ddp run folder, or None when the folder holds no ddp.json. elsewhere: a
    report's words for a ddp run that is not of its machine or its day (a committed record)."""
    run = read_record(run_dir, "ddp.json", "ddp-run")
    if run is None:
        return None
    environment, settings = run["environment"], run["settings"]
    launches = [entry.get(key) or {} for entry in run["variants"] for key in COMPARED]
    launches += [launch.get("startup") or {} for launch in launches]
    loads = [launch["load_before"] for launch in launches if "load_before" in launch]
    load = f"{min(loads):.2f}-{max(loads):.2f}" if loads else "n/a"
    paragraphs = [
        *(
            [f"**Not this run's**: {elsewhere} ({environment['cpu']}, {run['started']})"]
            if elsewhere
            else []
        ),
        f"{settings['nproc']} processes x 1 thread against 1 process x {settings['nproc']} "
        f"threads; global batch {settings['batch_size']}, {settings['epochs']} epochs on "
        f"{settings['train_size'] or 'all'} training images. {environment['cpu']}, "
        f"{environment['cores']} cores, {run['started']}; 1-minute load average before each "
        f"launch {load}. Start-up: the wall time of a one-step run, launch, imports and "
        f"rendezvous included.",
    ]
    if loads and max(loads) >= QUIET_LOAD:
        paragraphs.append(
            f"**Not a quiet machine**: the load was {QUIET_LOAD} or more before some launch, so "
            f"the images/s and start-up columns are disturbed, not measurements; accuracy and "
            f"lines hold. Rerun with `--max-load {QUIET_LOAD}` (as `tox -e ddp` does) when the "
            f"machine is quiet."
        )
    rows = [_row(entry) for entry in run["variants"]]
    for part in _parts(Path(run_dir)):  # a record made of several launches of one machine
        rows[:0] = [_row(entry) for entry in part["variants"]]
        names = ", ".join(entry["variant"] for entry in part["variants"])
        paragraphs.append(f"{names}: its own launch, {part['started']}, on the same machine.")
    return Section("Data-parallel training (ddp scenario)", paragraphs, [Table(COLUMNS, rows)])


def _parts(run_dir: Path) -> list[dict]:
    """The ddp runs kept in a record's sub-folders (docs/results/ddp-quiet/raw_pytorch/)."""
    found = [json.loads(path.read_text()) for path in sorted(run_dir.glob("*/ddp.json"))]
    return [run for run in found if run.get("kind") == "ddp-run"]


def _row(entry: dict) -> list[str]:
    name = entry["variant"]
    if entry["status"] == "skipped":
        return [name, f"skipped: {entry['error']}", *[""] * (len(COLUMNS) - 2)]
    lines = entry["lines"]
    counted = f"{lines['added']} / {lines['removed']} ({lines['net']:+d})"
    launch = f"`{entry['launch']}`"
    if entry["status"] != "ok":
        verdict = "not available on CPU" if entry.get("needs") and _on_cpu(entry) else "failed"
        return [name, launch, f"{verdict}: {entry['error']}", "", "", counted]
    one, many = entry["single"], entry["distributed"]
    accuracy = (
        f"{one['record']['test_accuracy']:.2%} / {many['record']['test_accuracy']:.2%} "
        f"({entry['accuracy_gap_points']:+.2f})"
    )
    speed = (
        f"{one['record']['images_per_second']:.0f} / {many['record']['images_per_second']:.0f} "
        f"({entry['throughput_ratio']:.2f}x)"
    )
    startup = " / ".join(
        f"{launch['startup']['wall_seconds']:.1f}" if launch["startup"]["status"] == "ok" else "-"
        for launch in (one, many)
    )
    return [name, launch, accuracy, speed, startup, counted]


def _on_cpu(entry: dict) -> bool:
    """Whether the single-process suite trained on the CPU (its start-up run always runs)."""
    startup = entry["single"]["startup"]
    return startup["status"] == "ok" and startup["record"]["device"].startswith("cpu")
