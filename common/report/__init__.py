"""The report of a comparison run, written to <run>/report/ from the run folder's JSON files and
the suites' sources it recorded (<run>/sources/; a run that recorded none: today's suites/, and
the report says so):

figures.json   every speed figure printed (ratios, intervals, verdicts, flags), per replicate
               and pooled: the record the rest renders from (common/report/figures.py)
summary.md     what ran on what, the table (one row per variant and mode), notes, time to accuracy
*.png, *.svg   throughput, LOC, accuracy per epoch (and on the time-to-accuracy scenario), LOC
               against speed, modes (when measured)
index.html     one self-contained page: environment, tables, plots, the suites' sources section
               by section side by side, and each suite's diff against raw PyTorch

One way through: run.py reads the folder, analysis.py computes (speed figures, accuracy, LOC,
diffs), text.py and tables.py put it in words and cells, plots.py and page.py render them, and
write_report below writes the files.

python -m common report results/20261129-174755     (default: the newest run in results/)

Several run folders (other machines, devices or versions: copy their results/<run>/ folders
here) make one report with the runs side by side, each with its environment; every ratio is
within its own run. It goes to --out, by default report-<run>+<run> beside the first folder:

python -m common report results/20261129-231152 results/laptop-20261201-101500
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

from matplotlib.figure import Figure

from common.report import attributed, ddp, figures, plots, releases, seeds, tables
from common.report.analysis import load_run
from common.report.page import Svgs, html_page
from common.report.plots import PLOTS, plot_modes
from common.report.run import ReportError, RunData
from common.report.section import Section
from common.report.tables import HEADERS, training_rows
from common.task import files, paths

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


# --- all of it: read and analyse the runs, render them, write the files ------------------------
def write_report(run_dir: Path, *more: Path, out: Path | None = None) -> Path:
    """Writes the report (summary.md, plots, index.html) of one run to run_dir/report/, or of
    several runs side by side to `out` (default: report-<name>+<name>... beside the first run);
    returns the path of summary.md."""
    dirs = [Path(run_dir), *map(Path, more)]
    datas = [load_run(d) for d in dirs]
    if out is None and more:
        out = dirs[0].parent / ("report-" + "+".join(d.name for d in datas))
    out = Path(out or dirs[0] / "report")
    out.mkdir(parents=True, exist_ok=True)
    _write_figures(datas, out)  # everything below renders the speed figures from this record
    labels = ["run"] if not more else [f"run {i}" for i in range(1, len(datas) + 1)]
    runs = [
        (label, data, _write_plots(plots.render(data), out, "" if not more else f"run{i}-"))
        for i, (label, data) in enumerate(zip(labels, datas, strict=True), start=1)
    ]
    summary = tables.summary([(label, data) for label, data, _ in runs])
    # Each scenario's newest run beside this one, else its committed record.
    extra = tuple(s for s in (read(dirs[0].parent) for read in SECTIONS) if s is not None)
    svgs: Svgs = {}
    for section in extra:
        summary += "\n" + section.markdown()
        svgs.update(_write_plots(section.plots, out, ""))
    files.write_text(out / "summary.md", summary)
    files.write_text(out / "index.html", html_page(runs, extra=extra, svgs=svgs))
    if not more and datas[0].accuracy_source == "this run":  # for comparisons' reports to merge
        data = datas[0]
        record = seeds.seeds_record(
            data.accuracy, data.runs.get("settings", {}), f"results/{data.name}", data.environment
        )
        files.write_json(out / seeds.FILE, record)
    return out / "summary.md"


def _write_figures(datas: list[RunData], out: Path) -> None:
    """report/figures.json, read back and attached to the runs: what the rest renders from."""
    path = out / figures.FILE
    files.write_json(path, figures.record(datas))
    for data, written in zip(datas, figures.read_figures(path)["runs"], strict=True):
        figures.attach(data, written)


def _write_plots(rendered: dict[str, Figure], out: Path, prefix: str) -> Svgs:
    """Each plot as PNG and SVG, its files named prefix + its name; returns the SVGs by name."""
    svgs: Svgs = {}
    for name, fig in rendered.items():
        for kind, options in (("png", {"dpi": 150}), ("svg", {"metadata": {"Date": None}})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=kind, **options)
            _write_bytes(out / f"{prefix}{name}.{kind}", buffer.getvalue())
        svgs[prefix + name] = buffer.getvalue()
    return svgs


def write_section(section: Section, out: Path) -> Path:
    """A scenario's own report: its section as summary.md, and its plots, in its run folder."""
    _write_plots(section.plots, out, "")
    files.write_text(out / "summary.md", section.markdown())
    return out / "summary.md"


def _write_bytes(path: Path, data: bytes) -> None:
    files.atomic_write(path, lambda f: f.write(data))


def newest_or_committed(
    read: Callable[[Path, str | None], Section | None], kind: str, record: str, command: str
) -> Callable[[Path], Section | None]:
    """A section reader: the scenario's newest run in the results folder, else its committed
    record, which the section then says is from another machine or day."""

    def found(results: Path) -> Section | None:
        if section := read(paths.latest_link(results, kind), None):
            return section
        committed = paths.RECORDS / record
        return read(
            committed,
            f"the committed record {committed.relative_to(paths.ROOT)}, from another "
            f"machine or day; `{command}` measures this one",
        )

    return found


SECTIONS = (
    newest_or_committed(ddp.read_section, "ddp", "ddp-quiet", "tox -e ddp"),
    newest_or_committed(
        attributed.read_attribution, "attribution", "attribution", "tox -e attribution"
    ),
    newest_or_committed(releases.read_versions, "versions", "versions", "tox -e versions"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dir", type=Path, nargs="*", help="run folders (default: the newest in results/)"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write (default: RUN_DIR/report; several: beside them)"
    )
    args = parser.parse_args(argv)
    runs = sorted(paths.RESULTS.glob("*/runs.json"))  # folders named by date-time
    run_dirs = args.run_dir or ([runs[-1].parent] if runs else [])
    if not run_dirs:
        parser.error("no run folder given and none in results/")
    for run_dir in run_dirs:
        if not (run_dir / "runs.json").is_file():
            parser.error(f"{run_dir} is not a comparison run: it has no runs.json")
    try:
        summary = write_report(*run_dirs, out=args.out)
    except ReportError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(summary.read_text())
    print(f"report: {summary.parent / 'index.html'}")
    return 0
