"""The report of one comparison run, written to <run>/report/ from the run folder's JSON files:

summary.md     what ran on what, the table (one row per variant and mode), notes, time to accuracy
*.png, *.svg   throughput, LOC, accuracy per epoch, LOC against speed, modes (when measured)
index.html     one self-contained page: environment, tables, plots, the suites' sources

python -m common.report results/20261129-174755     (default: the newest run in results/)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.report.page import write_html
from common.report.plots import PLOTS, plot_modes, write_plots
from common.report.run import ReportError, RunData, load_run
from common.report.tables import HEADERS, training_rows, write_summary

__all__ = [
    "HEADERS",
    "PLOTS",
    "ReportError",
    "RunData",
    "load_run",
    "main",
    "plot_modes",
    "training_rows",
    "write_report",
]

ROOT = Path(__file__).resolve().parents[2]


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
