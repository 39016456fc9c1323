"""The suites' sources a run records (code.record_sources) and the report reads back: a run's LOC,
lines +/− and code views are of the files it measured, not of suites/ as it is today; a run
that recorded none says that it shows today's files.

The recorded run is the fixture (tests/fixtures/run) with its sources recorded, and then one
code line added to the recorded fastai.py and ignite.py (a FAILED variant, whose LOC the report
counts itself), so that the recorded files differ from today's.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from common import report
from common.report.text import TODAYS_SOURCES
from common.task import code, paths, registry

from .test_report import FIXTURE, TextOf, markdown_table

ADDED = "RECORDED_ONLY = 1"  # a code line that only the recorded copies have
CHANGED = "lines +/− vs raw PyTorch"


def today(suite: str) -> str:
    return (paths.SUITES / f"{suite}.py").read_text()


def with_added_line(source: str) -> str:
    """ADDED just above the first section marker: a code line in the preamble section."""
    lines = source.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if code.SECTION_MARKER.match(line))
    return "".join([*lines[:first], ADDED + "\n\n", *lines[first:]])


def changed_today(suite: str) -> tuple[int, int]:
    return code.lines_changed(code.diff_sections(today(registry.REFERENCE), today(suite)))


def test_record_sources_copies_every_suite_byte_for_byte(tmp_path):
    code.record_sources(tmp_path)
    suites = sorted(p.name for p in paths.SUITES.glob("*.py"))
    assert suites and sorted(p.name for p in (tmp_path / code.SOURCES).iterdir()) == suites
    for name in suites:
        assert (tmp_path / code.SOURCES / name).read_bytes() == (paths.SUITES / name).read_bytes()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("recorded")
    shutil.copytree(FIXTURE, run_dir, dirs_exist_ok=True)
    code.record_sources(run_dir)
    for suite in ("fastai", "ignite"):
        path = run_dir / code.SOURCES / f"{suite}.py"
        path.write_text(with_added_line(path.read_text()))
    report.write_report(run_dir)
    return run_dir / "report"


def test_lines_changed_are_counted_on_the_recorded_files(recorded):
    summary = (recorded / "summary.md").read_text()
    table = markdown_table(summary, "Training")
    added, removed = changed_today("fastai")
    assert table["fastai", "eager"][CHANGED] == f"+{added + 1} −{removed}"
    added, removed = changed_today("ignite")
    assert table["ignite", "—"][CHANGED] == f"+{added + 1} −{removed}"  # a FAILED one as well
    added, removed = changed_today("lightning")
    assert table["lightning", "eager"][CHANGED] == f"+{added} −{removed}"  # not changed


def test_the_notes_say_which_files_were_counted(recorded):
    summary = (recorded / "summary.md").read_text()
    assert "Counted on the files the run recorded as it started" in summary
    assert TODAYS_SOURCES not in summary and "as they are now" not in summary
    # The fixture's LOC were measured on older files than its recorded copies (today's).
    loc = code.count_file_lines(paths.SUITES / "raw_pytorch.py")["loc"]
    assert f"raw_pytorch: LOC 69 measured, {loc} in the file the run recorded" in summary


def test_the_page_shows_the_recorded_code(recorded):
    page = (recorded / "index.html").read_text()
    text = str(TextOf(page))
    assert ADDED not in today("fastai")
    aligned = page.split('id="aligned"', 1)[1].split('id="diffs"', 1)[0]
    assert ADDED in str(TextOf(aligned))
    diffs = page.split('id="diffs"', 1)[1]
    assert f"+{ADDED}" in str(TextOf(diffs))
    assert "The suites' files as the run recorded them as it started" in text
    loc = code.count_file_lines(paths.SUITES / "ignite.py")["loc"] + 1  # ignite did not finish
    assert f"ignite · {loc} LOC (counted on the recorded file)" in text


def test_a_run_that_recorded_none_says_it_shows_todays_files(tmp_path):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    summary = report.write_report(tmp_path).read_text()
    assert summary.count(TODAYS_SOURCES) == 1
    page = (tmp_path / "report" / "index.html").read_text()
    assert str(TextOf(page)).count(TODAYS_SOURCES) == 1
    table = markdown_table(summary, "Training")
    added, removed = changed_today("fastai")
    assert table["fastai", "eager"][CHANGED] == f"+{added} −{removed}"


@pytest.mark.parametrize("name", ["run", "interleaved"])
def test_run_folders_written_before_the_layout_still_load(tmp_path, name):
    """Both fixtures were recorded by the code before common/ had its four parts: no sources/,
    no kind on a training record. Their reports still render every variant they ran."""
    folder = FIXTURE.parent / name
    benchmarks = json.loads((folder / "benchmark.json").read_text())["benchmarks"]
    trained = [b["extra_info"] for b in benchmarks if "epoch_history" in b["extra_info"]]
    assert trained and not any("kind" in info for info in trained)
    assert not (folder / code.SOURCES).exists()
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    summary = report.write_report(tmp_path).read_text()
    record = json.loads((tmp_path / "report" / "figures.json").read_text())
    assert record["kind"] == "comparison-figures"
    shown = {row["label"] for run in record["runs"] for row in run["rows"]}
    assert {info["variant"] for info in trained} <= {label.split("#")[0] for label in shown}
    assert TODAYS_SOURCES in summary


def test_versions_that_are_not_the_pins_are_named(tmp_path):
    from common.measure import environment

    pins = environment.project_pins()
    assert pins["torch"] == "2.14.1" and pins["jax"] and "mnist-compare" not in pins
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    recorded = json.loads((tmp_path / "environment.json").read_text())
    installed = recorded["versions"]["pytorch-ignite"]
    recorded["pins"] = {"pytorch-ignite": "0.4.0", "torch": recorded["versions"]["torch"]}
    (tmp_path / "environment.json").write_text(json.dumps(recorded))
    summary = report.write_report(tmp_path).read_text()
    assert f"Not the pinned versions**: pytorch-ignite {installed} (pinned 0.4.0);" in summary
    assert "torch " + recorded["versions"]["torch"] + " (pinned" not in summary


def test_a_ddp_section_from_another_run_says_so(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "run", dirs_exist_ok=True)
    summary = report.write_report(tmp_path / "run").read_text()  # no ddp run beside it
    section = summary[summary.index("## Data-parallel training") :]
    assert section.splitlines()[2].startswith(
        "**Not this run's**: the committed record docs/results/ddp-quiet, from another machine"
    )
    page = (tmp_path / "run" / "report" / "index.html").read_text()
    html_section = page[page.index("Data-parallel training") :]
    assert "|---|" not in page and "| data-parallel suite |" not in page  # no raw markdown
    assert "<table" in html_section and re.search(r"<th>data-parallel suite\s*</th>", html_section)
    assert "<strong>Not this run&#x27;s</strong>" in html_section
    # every data-parallel suite the record measured, raw PyTorch's (its own launch) among them
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")]
    assert rows[1:5] == ["raw_pytorch_ddp", "lightning_ddp", "ignite_ddp", "keras_ddp[jax]"]
    assert "raw_pytorch_ddp: its own launch, 2026-11-30T03:00:48" in section


def test_no_plot_text_runs_off_its_figure(tmp_path):
    """Every title, label and legend of every plot lies inside its figure (the seeds plot's
    title once ran off it with its source's path)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from common.report import plots
    from common.report.analysis import load_run

    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    data = load_run(tmp_path)
    # accuracy over seeds merged from a committed seeds run, as a default comparison's report has
    merged = json.loads((paths.RECORDS / "seeds-mnist" / "accuracy_over_seeds.json").read_text())
    data.accuracy = merged["variants"]
    data.accuracy_source = f"{merged['source']}, recorded in docs/results/seeds-mnist"
    rendered = plots.render(data)
    assert "accuracy_over_seeds" in rendered
    for name, figure in rendered.items():
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        renderer = canvas.get_renderer()
        box = figure.bbox
        texts = [
            text
            for ax in figure.axes
            for text in (
                *(ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label),
                *ax.texts,
                *(ax.get_legend().get_texts() if ax.get_legend() else ()),
            )
        ]
        for text in texts:
            if not text.get_text() or not text.get_visible():
                continue
            extent = text.get_window_extent(renderer)
            inside = extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1
            assert inside, f"{name}: {text.get_text()[:60]!r} runs off the figure"
