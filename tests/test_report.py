"""Tests of common/report/ on a recorded run folder (tests/fixtures/run), copied to tmp_path.

The fixture has seven variants: raw PyTorch in eager and compile mode, fastai, a FAILED ignite,
Keras on TensorFlow and on JAX (graph, eager, xla), a SKIPPED keras[torch], Lightning, the
feeding floor, the cache load and two time-to-accuracy rows. Expected numbers are computed here
from the fixture's JSON, not copied from the report.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import statistics
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from common import report
from common.task import code, paths, registry

FIXTURE = Path(__file__).parent / "fixtures" / "run"
PLOTS = ("throughput", "loc", "accuracy_per_epoch", "loc_vs_speed", "modes", "time_to_accuracy")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fixture_json(name: str) -> dict:
    return json.loads((FIXTURE / name).read_text())


def training_infos() -> list[dict]:
    return [
        b["extra_info"]
        for b in fixture_json("benchmark.json")["benchmarks"]
        if "epoch_history" in b["extra_info"] and "target_accuracy" not in b["extra_info"]
    ]


def markdown_table(text: str, heading: str) -> dict[tuple[str, str], dict[str, str]]:
    """The pipe table under `## heading`, as {(suite, mode): {column: cell}}."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])] for line in lines]
    header, rows = split[0], split[2:]
    return {
        (row[0], row[header.index("mode")]): dict(zip(header, row, strict=True)) for row in rows
    }


class TextOf(HTMLParser):
    """The text of a page, character references resolved, as a browser would show it, and the
    values of its src and href attributes."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.links += [value for name, value in attrs if name in ("src", "href")]

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def __str__(self) -> str:
        return "".join(self.parts)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    shutil.copytree(FIXTURE, run_dir, dirs_exist_ok=True)
    summary = report.write_report(run_dir)
    assert summary == run_dir / "report" / "summary.md"
    return summary.parent


@pytest.fixture(scope="module")
def summary(out) -> str:
    return (out / "summary.md").read_text()


@pytest.fixture(scope="module")
def table(summary) -> dict:
    return markdown_table(summary, "Training")


@pytest.fixture(scope="module")
def page(out) -> str:
    return (out / "index.html").read_text()


# --- summary.md --------------------------------------------------------------------------------
def test_heading_says_what_ran_on_what(summary):
    env, settings = fixture_json("environment.json"), fixture_json("runs.json")["settings"]
    head = summary.split("## Training")[0]
    assert head.startswith("# MNIST: 7 variants, 2 epochs on 4,000 training images")
    for fact in (
        env["cpu"],
        f"{settings['threads']} threads",
        env["date"],
        env["git_commit"][:12],
        env["dataset"],
        f"{settings['train_size']:,} training images",
        "2 epochs",
    ):
        assert fact in head


def test_one_row_per_variant_and_mode_in_registry_order(table):
    expected = [(i["variant"], i["mode"]) for i in training_infos()]
    expected += [
        (e["variant"], "—") for e in fixture_json("runs.json")["variants"] if e["status"] != "ok"
    ]
    order = [v.id for v in registry.variants()]
    assert sorted(table) == sorted(expected)
    assert [order.index(variant) for variant, _ in table] == sorted(
        order.index(variant) for variant, _ in table
    )
    assert list(table)[:2] == [("raw_pytorch", "eager"), ("raw_pytorch", "compile")]
    assert [mode for variant, mode in table if variant == "keras[jax]"] == ["graph", "eager", "xla"]


def test_every_number_in_the_table(table):
    infos = training_infos()
    (reference,) = [i for i in infos if i["variant"] == "raw_pytorch" and i["mode"] == "eager"]
    for info in infos:
        row = table[info["variant"], info["mode"]]
        assert row["backend"] == info["backend"]
        assert row["LOC"] == str(info["loc"])
        assert row["ms/step (steady)"] == "—"  # no blocks in a run from before interleaving
        assert row["images/s"] == f"{info['images_per_second']:,.0f}"
        ratio = info["images_per_second"] / reference["images_per_second"]
        if info is not reference:
            assert row["vs raw PyTorch [95% CI]"] == f"{ratio:.2f} (single)"
        assert row["test acc. %"] == f"{100 * info['test_accuracy']:.2f}"
        assert row["peak MB"] == f"{info['peak_rss_mb']:,.0f}"
        assert row["import s"] == f"{info['import_seconds']:.2f}"
        assert row["checkpoint KB"] == f"{info['checkpoint_bytes'] / 1024:,.0f}"


def test_ratio_is_against_raw_pytorch_in_its_default_mode(table):
    # The fixture's numbers tell the candidate references apart: against raw_pytorch compile
    # (1,600/s) fastai would read 0.50, against the feeding floor (1,250/s) 0.64.
    # A run from before interleaving has one whole-run figure per variant: no interval.
    column = "vs raw PyTorch [95% CI]"
    assert table["raw_pytorch", "eager"][column] == "1 (reference)"
    assert table["raw_pytorch", "compile"][column] == "1.60 (single)"
    assert table["fastai", "eager"][column] == "0.80 (single)"
    assert table["keras[jax]", "xla"][column] == "2.00 (single)"
    assert table["fastai", "eager"]["verdict"] == "single measurement"
    assert table["raw_pytorch", "eager"]["test acc. %"] == "91.23"


def test_ratio_does_not_depend_on_the_order_of_the_benchmarks(tmp_path):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    bench = fixture_json("benchmark.json")
    bench["benchmarks"].reverse()  # the compile row and the floor now come before eager
    (tmp_path / "benchmark.json").write_text(json.dumps(bench))
    data = report.load_run(tmp_path)
    assert (data.reference["variant"], data.reference["mode"]) == ("raw_pytorch", "eager")
    column = report.HEADERS.index("vs raw PyTorch [95% CI]")
    ratios = {(row[0], row[2]): row[column] for row in report.training_rows(data)}
    assert ratios["fastai", "eager"] == "0.80 (single)"
    assert ratios["raw_pytorch", "compile"] == "1.60 (single)"


def test_failed_and_skipped_variants_show_status_and_error(table, summary):
    variants = {e["variant"]: e for e in fixture_json("runs.json")["variants"]}
    failed = table["ignite", "—"]
    assert failed["LOC"] == "FAILED"
    assert variants["ignite"]["error"][:20] in failed["ms/step (steady)"]
    assert failed["images/s"] == failed["vs raw PyTorch [95% CI]"] == ""
    assert table["keras[torch]", "—"]["LOC"] == "SKIPPED"
    assert f"- ignite failed: `{variants['ignite']['error']}`" in summary  # the whole error
    keys = list(table)  # in its place among the others, not at the end
    assert (
        keys.index(("fastai", "eager"))
        < keys.index(("ignite", "—"))
        < keys.index(("keras[tensorflow]", "graph"))
    )


def test_notes_below_the_table(summary):
    assert "0.80 of the tensor-slicing floor (1,250 images/s" in summary
    assert "parsed cache in 0.055 s" in summary
    assert "Wall time 240.5 s" in summary and "180.2 s (training 150.0 s," in summary
    assert "60.3 s (25.1%)" in summary


def test_time_to_accuracy_table(summary):
    rows = markdown_table(summary, "Time to accuracy")
    assert rows["raw_pytorch", "eager"]["reached"] == "yes"
    assert rows["raw_pytorch", "eager"]["epoch"] == "2"
    assert rows["raw_pytorch", "eager"]["seconds to target"] == "8.00"
    assert rows["keras[jax]", "graph"]["reached"] == "no"
    assert rows["keras[jax]", "graph"]["seconds to target"] == "—"


# --- plots -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PLOTS)
def test_plot_written_as_png_and_svg(out, name):
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_no_modes_plot_without_mode_rows(tmp_path):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    data = report.load_run(tmp_path)
    data.training = data.per_variant
    assert not data.has_modes and report.plot_modes(data) is None


# --- index.html --------------------------------------------------------------------------------
def test_html_is_self_contained(page, out):
    links = TextOf(page).links
    # the run's plots, and the scenarios' sections' (the committed attribution and versions runs)
    sections = {path.stem for path in out.glob("*.svg")} - set(PLOTS)
    assert "attribution_calls" in sections
    assert len(links) == len(PLOTS) + len(sections)
    assert all(link.startswith("data:image/svg+xml;base64,") for link in links)
    assert "url(" not in page and "@import" not in page
    assert "<link" not in page
    assert page.count("<script") == page.count("<script>") == 1  # one inline script, no src


def test_html_has_the_environment_and_the_table(page):
    text = str(TextOf(page))
    env = fixture_json("environment.json")
    assert env["cpu"] in text and env["versions"]["torch"] in text
    for info in training_infos():
        assert f"<td>{html.escape(info['variant'])}" in page
    assert "FAILED" in text and "1.60 (single)" in text and "91.23" in text
    error = fixture_json("runs.json")["variants"][2]["error"]
    assert html.escape(error) in page and error in text  # escaped in the page, intact on screen
    assert error not in page


def aligned_view(page: str) -> str:
    return page.split('id="aligned"', 1)[1].split('id="diffs"', 1)[0]


def suite_diffs(page: str) -> dict[str, str]:
    """Each suite's block of the diff view, by suite."""
    blocks = page.split('<details class="suite-diff" data-suite="')[1:]
    return {block.split('"', 1)[0]: block for block in blocks}


def test_html_shows_every_suite_source_escaped(page):
    view = aligned_view(page)
    text = str(TextOf(view))
    locs = {i["suite"]: i["loc"] for i in training_infos()}
    suites = {v.suite: v.path for v in registry.variants()}
    for suite in ("raw_pytorch", "fastai", "ignite", "keras", "lightning"):
        source = suites[suite].read_text()
        for line in filter(None, (line.strip() for line in source.splitlines())):
            if not code.SECTION_MARKER.match(line):  # a marker is its row's heading
                assert line in text, f"{suite}: {line!r} missing"
        if suite in locs:
            assert f"{suite} · {locs[suite]} LOC" in str(TextOf(page.split('class="picker"')[1]))
    assert "-&gt;" in view and "->" not in view  # annotations, HTML-escaped


def test_sources_are_aligned_section_by_section(page):
    view = aligned_view(page)
    reference = (paths.SUITES / "raw_pytorch.py").read_text()
    names = list(code.sections(reference))
    assert {"imports", "model", "data", "training", "evaluation", "harness"} <= set(names)
    headings = re.findall(r'<h3 id="section-[\w-]+">(.*?)</h3>', view)
    assert headings[: len(names)] == [html.escape(name) for name in names]
    rows = view.split("<h3 ")[1:]
    for row in rows:  # every suite has a cell in every row; the first two are shown at first
        cells = re.findall(r'<div class="cell" data-suite="([^"]+)"( hidden)?>', row)
        assert [suite for suite, _ in cells] == [
            "raw_pytorch",
            "fastai",
            "ignite",
            "keras",
            "lightning",
        ]
        assert [suite for suite, hidden in cells if not hidden] == ["raw_pytorch", "fastai"]
    training = rows[names.index("training")]
    start, end = code.sections(reference)["training"]
    assert f"raw_pytorch · lines {start + 1}–{end}" in training
    assert "optimizer.zero_grad()" in str(TextOf(training))
    assert "--cols:2" in view


def test_every_suite_has_its_diff_with_the_counts_of_the_table(page, table):
    diffs = suite_diffs(page)
    assert list(diffs) == ["fastai", "ignite", "keras", "lightning"]
    column = "lines +/− vs raw PyTorch"
    assert table["raw_pytorch", "eager"][column] == "0 (reference)"
    for suite, block in diffs.items():
        added = removed = 0
        for section in block.split('data-section="')[1:]:
            lines = str(TextOf(section.split(">", 1)[1])).splitlines()
            name, counts = section.split('"', 1)[0], lines[0]
            # lines[0]: the counts and the diff's --- line; then +++, @@, one line per code line
            marked = [line[0] for line in lines[3:] if line.startswith(("+", "-"))]
            assert counts.startswith(f"{name} +{marked.count('+')} −{marked.count('-')}")
            if name != code.HARNESS:
                added, removed = added + marked.count("+"), removed + marked.count("-")
        rows = [row for (variant, _), row in table.items() if variant.startswith(suite)]
        assert rows and {row[column] for row in rows} == {f"+{added} −{removed}"}, suite
        assert f"{suite} against raw_pytorch: +{added} −{removed} code lines" in str(TextOf(block))


def test_run_without_benchmarks_still_reports(tmp_path):
    shutil.copy(FIXTURE / "environment.json", tmp_path)
    runs = fixture_json("runs.json")
    for entry in runs["variants"]:
        entry.update(status="interrupted", error=None)
    del runs["split"]
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    table = markdown_table(report.write_report(tmp_path).read_text(), "Training")
    assert {row["LOC"] for row in table.values()} == {"INTERRUPTED"}
    assert (tmp_path / "report" / "index.html").exists()
    assert not (tmp_path / "report" / "throughput.png").exists()


def test_finished_variants_without_their_record_are_listed_not_dropped(tmp_path):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    (tmp_path / "benchmark.json").unlink()
    ok = [e["variant"] for e in fixture_json("runs.json")["variants"] if e["status"] == "ok"]
    summary = report.write_report(tmp_path).read_text()
    table = markdown_table(summary, "Training")
    assert ok and all(table[variant, "—"]["LOC"] == "NO RECORD" for variant in ok)
    assert f"{tmp_path / 'benchmark.json'} is missing" in summary


def test_a_folder_that_is_not_a_run_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path / "no-such-run")])
    assert exit_info.value.code == 2
    assert "no-such-run is not a comparison run: it has no runs.json" in capsys.readouterr().err


def test_a_malformed_run_file_is_named(tmp_path, capsys):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    (tmp_path / "benchmark.json").write_text('{"benchmarks": [')
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'benchmark.json'}: not valid JSON" in err and "Traceback" not in err


# --- intervals in the plots ---------------------------------------------------------------------
def _xlabel(fig) -> str:
    return fig.axes[0].get_xlabel()


def test_accuracy_plot_says_single_measurement_with_one_seed(tmp_path):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    fig = report.plots.plot_accuracy(report.load_run(tmp_path))
    assert "single measurement" in _xlabel(fig) and not fig.axes[0].collections


def test_accuracy_plot_draws_a_band_over_several_seeds(tmp_path):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    bench = fixture_json("benchmark.json")
    fastai = next(b for b in bench["benchmarks"] if b["extra_info"].get("variant") == "fastai")
    again = json.loads(json.dumps(fastai))
    again["extra_info"]["seed"] = 1
    for h in again["extra_info"]["epoch_history"]:
        h["test_accuracy"] -= 0.02
    bench["benchmarks"].append(again)
    (tmp_path / "benchmark.json").write_text(json.dumps(bench))
    fig = report.plots.plot_accuracy(report.load_run(tmp_path))
    (band,) = fig.axes[0].collections  # fastai's, the only variant with two seeds
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    history = fastai["extra_info"]["epoch_history"]
    sd = statistics.stdev([0.0, 0.02])  # two seeds 2 points apart, at every epoch
    assert low == pytest.approx(100 * min(h["test_accuracy"] - 0.01 - sd for h in history))
    assert high == pytest.approx(100 * max(h["test_accuracy"] - 0.01 + sd for h in history))
    assert "band" in _xlabel(fig)
    assert any(t.get_text() == "fastai (eager), 2 seeds" for t in fig.axes[0].legend_.texts)


def test_time_to_accuracy_plot_has_each_epoch_and_the_target():
    data = report.load_run(FIXTURE)
    ax = report.plots.plot_time_to_accuracy(data).axes[0]
    rows = {r["variant"]: r for r in data.time_to_accuracy}
    curves = {line.get_label().split(" (")[0]: line for line in ax.get_lines() if line.get_marker()}
    for variant, row in rows.items():
        assert list(curves[variant].get_ydata()) == pytest.approx(
            [100 * h["test_accuracy"] for h in row["epoch_history"]]
        )
    targets = [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert targets == [pytest.approx(100 * rows["raw_pytorch"]["target_accuracy"])]


# --- several runs in one report -----------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """The fixture, and a copy of it 'from another machine' where fastai is twice as fast."""
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("laptop")
    shutil.copytree(FIXTURE, first, dirs_exist_ok=True)
    shutil.copytree(FIXTURE, second, dirs_exist_ok=True)
    env = fixture_json("environment.json")
    env["cpu"] = "Laptop CPU 9000"
    (second / "environment.json").write_text(json.dumps(env))
    bench = fixture_json("benchmark.json")
    for b in bench["benchmarks"]:
        if b["extra_info"].get("variant") == "fastai":
            b["extra_info"]["images_per_second"] *= 2
    (second / "benchmark.json").write_text(json.dumps(bench))
    return first, second


def test_two_runs_side_by_side_each_ratio_within_its_run(two_runs):
    first, second = two_runs
    summary = report.write_report(first, second)
    assert summary.parent == first.parent / f"report-{first.name}+{second.name}"
    text = summary.read_text()
    assert text.startswith("# 2 runs side by side")
    side = markdown_table(text, "Side by side")
    assert side["fastai", "eager"]["run 1: vs raw PyTorch [95% CI]"] == "0.80 (single)"
    assert side["fastai", "eager"]["run 2: vs raw PyTorch [95% CI]"] == "1.60 (single)"
    assert side["fastai", "eager"]["run 2: images/s"] == "1,600"
    assert side["ignite", "—"]["run 1: vs raw PyTorch [95% CI]"] == "FAILED"
    for run, cpu in ((first, fixture_json("environment.json")["cpu"]), (second, "Laptop CPU 9000")):
        assert f"## run {1 if run is first else 2} ({run.name}): MNIST" in text
        assert cpu in text
    page = (summary.parent / "index.html").read_text()
    assert str(TextOf(page)).count("Environment") == 2
    for prefix in ("run1-", "run2-"):
        for name in PLOTS:
            assert (summary.parent / f"{prefix}{name}.svg").exists()
    sections = [p for p in summary.parent.glob("*.svg") if not p.name.startswith("run")]
    assert len(TextOf(page).links) == 2 * len(PLOTS) + len(sections)


def test_one_report_from_two_folders_on_the_command_line(two_runs, tmp_path, capsys):
    out = tmp_path / "both"
    assert report.main([*map(str, two_runs), "--out", str(out)]) == 0
    assert "report: " + str(out / "index.html") in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(two_runs[0]), str(tmp_path / "not-a-run")])
    assert exit_info.value.code == 2
    assert "not-a-run is not a comparison run: it has no runs.json" in capsys.readouterr().err


# --- sections and the diff counts (common/task/code.py) ---------------------------------
REFERENCE_SOURCE = '''"""A suite."""

# --- imports ----------------------------------------------------------------------------------
import torch

# --- training ---------------------------------------------------------------------------------
def train(model):
    """Trains."""
    # a comment
    for step in range(3):
        model.step()
    return model
'''
OTHER_SOURCE = '''"""Another suite, a longer docstring.

with a second paragraph."""

# --- imports ----------------------------------------------------------------------------------
import torch
import lightning

# --- training ---------------------------------------------------------------------------------
def train(model):
    trainer = lightning.Trainer()  # trailing comments stay
    trainer.fit(model)
    return model

# --- harness: what exists only for the comparison ---------------------------------------------
def linear():
    return None
'''


def test_sections_are_cut_at_the_marker_comments():
    spans = code.sections(OTHER_SOURCE)
    assert list(spans) == [code.PREAMBLE, "imports", "training", code.HARNESS]
    lines = OTHER_SOURCE.splitlines()
    start, end = spans["training"]
    assert lines[start] == "def train(model):" and lines[end - 1] == ""
    assert code.code_lines(REFERENCE_SOURCE)["training"] == [
        "def train(model):",
        "    for step in range(3):",
        "        model.step()",
        "    return model",
    ]


def test_diff_counts_code_lines_section_by_section_harness_apart():
    diffs = {d.section: d for d in code.diff_sections(REFERENCE_SOURCE, OTHER_SOURCE)}
    assert (diffs[code.PREAMBLE].added, diffs[code.PREAMBLE].removed) == (0, 0)
    assert (diffs["imports"].added, diffs["imports"].removed) == (1, 0)
    assert (diffs["training"].added, diffs["training"].removed) == (2, 2)
    assert (diffs[code.HARNESS].added, diffs[code.HARNESS].removed) == (2, 0)
    assert "+    trainer.fit(model)" in diffs["training"].diff
    assert code.lines_changed(list(diffs.values())) == (3, 2)
