"""report/figures.json: every speed figure the report prints, as one typed record.

summary.md, index.html and the plots render the speed figures from this record (write_report
writes it, reads it back with read_figures, attaches what it read and renders from that), so a
user's script or a check reads the same ratios, intervals and verdicts without parsing markdown:

    import json; record = json.load(open("results/latest/report/figures.json"))
    {row["label"]: row["ratio"]["point"] for row in record["runs"][0]["rows"]}

`python -m common figures RUN [RUN ...]` prints the runs' ratios side by side as a
markdown table (docs/results.md's three-run table), with each row's largest distance from the
runs' mean.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Final, cast

import numpy as np
from tabulate import tabulate

from common.measure import speed
from common.report.run import ReportError, RunData
from common.task import records

KIND: Final = "comparison-figures"
FILE = "figures.json"


def run_record(data: RunData) -> records.RunFigures:
    """One run's figures: per row the pooled ratio, its interval and verdict, and each
    replicate's own; the run's flags and slow-phase notes."""
    env = data.environment
    return {
        "kind": "run-figures",
        "run": data.name,
        "scenario": data.runs.get("scenario", "comparison"),
        "started": data.runs.get("started"),
        "machine": {
            "cpu": env.get("cpu"),
            "cores": env.get("cores"),
            "threads": data.setting("threads"),
            "uptime_seconds": env.get("uptime_seconds"),
        },
        "replicates": data.replicates,
        "confidence": speed.CONFIDENCE,
        "rows": [
            {
                "kind": "row-figures",
                "label": row["label"],
                "variant": row["variant"],
                "mode": row["mode"],
                "switch": row.get("switch", "default"),
                "control": bool(row.get("control")),
                "group_copy": bool(row.get("group_copy")),
                "speed": row.get("speed", {}),
            }
            for row in data.training
        ],
        "flags": data.flags,
        "phase_notes": data.phase_notes,
    }


def record(datas: list[RunData]) -> records.ComparisonFigures:
    return {"kind": KIND, "runs": [run_record(data) for data in datas]}


def attach(data: RunData, figures: records.RunFigures) -> None:
    """The record's figures (one run's entry, as read back) in place of the ones computed: its
    rows in the run's table order, flags, notes."""
    for row, written in zip(data.training, figures["rows"], strict=True):
        if (row["label"], row["mode"]) != (written["label"], written["mode"]):
            raise ReportError(f"figures.json's row {written['label']} is not the run's")
        row["speed"] = written["speed"]
    data.flags, data.phase_notes = figures["flags"], figures["phase_notes"]
    data.figures = figures


def read_figures(path: Path) -> records.ComparisonFigures:
    """A figures.json, checked to be one."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read it ({error})") from None
    if not isinstance(found, dict) or found.get("kind") != KIND:
        raise ReportError(f"{path}: not a {KIND} record")
    return cast(records.ComparisonFigures, found)  # its kind says what it is


def across_runs(
    found_records: list[records.ComparisonFigures],
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: each variant's pooled ratio [interval] verdict in every run, and its
    largest distance from the runs' mean."""
    runs = [run for found in found_records for run in found["runs"]]
    labels = list(dict.fromkeys(r["label"] for run in runs for r in run["rows"]))
    headers = ["variant", *(f"run {i} ({_when(run)})" for i, run in enumerate(runs, 1))]
    headers += ["mean", "largest distance from the mean"]
    rows = []
    for name in labels:
        cells, points = [name], []
        for run in runs:
            found = next((r for r in run["rows"] if r["label"] == name), None)
            if found is None or found["speed"].get("verdict") == "reference":
                cells.append("reference" if found else "—")
                continue
            ratio = found["speed"].get("ratio")
            if not ratio:
                cells.append("—")
                continue
            points.append(ratio["point"])
            cells.append(
                f"{ratio['point']:.2f} [{ratio['low']:.2f}, {ratio['high']:.2f}] "
                f"{found['speed']['verdict'].removeprefix('control: ')}"
            )
        if points:
            mean = float(np.mean(points))
            cells += [f"{mean:.3f}", f"{max(abs(p - mean) for p in points):.3f}"]
        else:
            cells += ["", ""]
        rows.append(cells)
    return headers, rows


def _when(run: records.RunFigures) -> str:
    uptime = run["machine"].get("uptime_seconds")
    up = f", up {uptime / 60:.0f} min" if uptime is not None else ""
    return f"{run.get('started') or run['run']}{up}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common figures", description=__doc__.split("\n")[0]
    )
    parser.add_argument("run_dir", type=Path, nargs="+", help="run folders with a report/")
    args = parser.parse_args(argv)
    try:
        found = [read_figures(run_dir / "report" / FILE) for run_dir in args.run_dir]
    except ReportError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    headers, rows = across_runs(found)
    print(tabulate(rows, headers=headers, tablefmt="github"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
