"""The report of a recorded interleaved run (tests/fixtures/interleaved): raw PyTorch, its A/A
control, Lightning and Keras on JAX, 2 replicates, 2 epochs on 3,200 images in blocks of 2
steps, recorded on this project's 2-core Intel VM on 2026-12-02. Its figures are checked
against the blocks themselves, and summary.md against report/figures.json."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from common.measure import speed
from common.report import analysis, figures, write_report
from common.task import registry

FIXTURE = Path(__file__).parent / "fixtures" / "interleaved"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("interleaved") / "run"
    shutil.copytree(FIXTURE, copy)
    write_report(copy)
    return copy


@pytest.fixture(scope="module")
def record(run_dir) -> dict:
    return figures.read_figures(run_dir / "report" / figures.FILE)


def blocks_of(run_dir: Path, label: str) -> list[dict]:
    runs = json.loads((run_dir / "runs.json").read_text())
    (entry,) = [e for e in runs["variants"] if e["label"] == label]
    records = json.loads((run_dir / entry["json"]).read_text())["benchmarks"]
    return next(b["extra_info"]["blocks"] for b in records if "blocks" in b["extra_info"])


def test_the_record_says_what_it_is(record):
    assert record["kind"] == "comparison-figures"
    (run,) = record["runs"]
    assert run["kind"] == "run-figures" and run["replicates"] == 2
    assert run["machine"]["cores"] == 2 and run["machine"]["uptime_seconds"] > 0
    assert [r["label"] for r in run["rows"]] == [
        "raw_pytorch",
        "raw_pytorch+A/A",
        "keras[jax]",
        "lightning",
    ]


def test_each_replicate_is_its_own_pair_of_processes(run_dir, record):
    rows = {r["label"]: r for r in record["runs"][0]["rows"]}
    for label in ("raw_pytorch+A/A", "keras[jax]", "lightning"):
        draws = rows[label]["speed"]["replicates"]
        assert [d["label"] for d in draws] == [label, label + "#r2"]
        for draw, reference in zip(draws, ("raw_pytorch", "raw_pytorch#r2"), strict=True):
            # the replicate's figure, recomputed from its blocks against its own reference
            variant = blocks_of(run_dir, draw["label"])
            used, _ = speed.phases(blocks_of(run_dir, reference), variant)
            again = speed.speed_ratio(blocks_of(run_dir, reference), used)
            assert draw["ratio"]["point"] == pytest.approx(again.point)
        assert rows[label]["speed"]["ratio"]["replicates"] == [d["ratio"]["point"] for d in draws]


def test_verdicts_follow_the_pooled_interval(record):
    rows = {r["label"]: r["speed"] for r in record["runs"][0]["rows"]}
    for label, figures_ in rows.items():
        ratio = figures_["ratio"]
        if label == "raw_pytorch":
            assert figures_["verdict"] == "reference" and ratio is None
            continue
        assert ratio["process_variation"] and ratio["df"] == 3  # 3 rows x (2 - 1)
        assert ratio["low"] < ratio["point"] < ratio["high"]
        if label.endswith("+A/A"):
            assert figures_["verdict"] == "control: holds"
            assert ratio["low"] <= 1 <= ratio["high"]
        else:
            expected = speed.verdict(speed.Interval(ratio["point"], ratio["low"], ratio["high"], 0))
            assert figures_["verdict"] == expected
    assert rows["keras[jax]"]["verdict"] == "slower"  # about a third of raw PyTorch's speed


def test_summary_is_rendered_from_the_record(run_dir, record):
    summary = (run_dir / "report" / "summary.md").read_text()
    run = record["runs"][0]
    for row in run["rows"][1:]:
        ratio = row["speed"]["ratio"]
        cell = f"{ratio['point']:.2f} [{ratio['low']:.2f}, {ratio['high']:.2f}]"
        points = " · ".join(f"{p:.2f}" for p in ratio["replicates"])
        lines = [line for line in summary.splitlines() if line.startswith(f"| {row['label']} ")]
        glance, full = lines[0], lines[1]  # the first screen's table, then the full one
        assert cell in glance and row["speed"]["verdict"] in glance
        assert cell in full and points in full and row["speed"]["verdict"] in full
    rounds = len(json.loads((run_dir / "runs.json").read_text())["schedule"]["rounds"])
    assert "Measured side by side" in summary and f"{rounds} rounds" in summary
    assert "2 replicates, each a fresh set of processes" in summary
    for flag in run["flags"]:
        assert f"NOISY RUN: {flag}." in summary
    # Keras on JAX maps fresh memory every step, in both replicates alike: a note, not noise.
    assert "Page faults: keras[jax] takes" in summary


def test_the_record_feeds_the_table_across_runs(run_dir):
    data = figures.read_figures(run_dir / "report" / figures.FILE)
    headers, rows = figures.across_runs([data, data])
    lightning = next(r for r in rows if r[0] == "lightning")
    assert lightning[-1] == "0.000"  # the same run twice: no distance from the mean
    assert headers[0] == "variant" and "up " in headers[1]


def test_a_file_that_is_not_a_record_is_refused(tmp_path):
    path = tmp_path / "figures.json"
    path.write_text('{"kind": "something else"}')
    with pytest.raises(figures.ReportError, match="not a comparison-figures record"):
        figures.read_figures(path)


def test_a_suite_is_compared_with_its_nearest_relative(tmp_path, monkeypatch, run_dir):
    """Lightning declared a relative of Keras on JAX (as Flax is): its ratio to that relative,
    per replicate from the two processes' own blocks, pooled; a table; and a diff against it."""
    assert "Against its nearest relative" not in (run_dir / "report" / "summary.md").read_text()
    declared = [
        dataclasses.replace(v, relative="keras[jax]") if v.suite == "lightning" else v
        for v in registry.variants()
    ]
    monkeypatch.setattr(analysis, "known_variants", lambda: declared)
    copy = tmp_path / "run"
    shutil.copytree(FIXTURE, copy)
    write_report(copy)
    rows = {
        r["label"]: r
        for r in figures.read_figures(copy / "report" / figures.FILE)["runs"][0]["rows"]
    }
    relative = rows["lightning"]["speed"]["relative"]
    assert relative["kind"] == "relative-figures" and relative["to"] == "keras[jax]"
    for point, suffix in zip(relative["ratio"]["replicates"], ("", "#r2"), strict=True):
        keras_blocks = blocks_of(copy, "keras[jax]" + suffix)
        used, _ = speed.phases(keras_blocks, blocks_of(copy, "lightning" + suffix))
        assert point == pytest.approx(speed.speed_ratio(keras_blocks, used).point)
    ratio = relative["ratio"]
    assert ratio["low"] < ratio["point"] < ratio["high"]
    assert ratio["point"] > 2  # Keras on JAX runs at about a third of raw PyTorch's speed
    assert relative["verdict"] == "faster"
    assert "relative" not in rows["keras[jax]"]["speed"]  # the relative itself declares none
    summary = (copy / "report" / "summary.md").read_text()
    section = summary.split("# Against its nearest relative", 1)[1].split("\n#", 1)[0]
    (line,) = [line for line in section.splitlines() if line.startswith("| lightning ")]
    assert f"{ratio['point']:.2f} [{ratio['low']:.2f}, {ratio['high']:.2f}]" in line
    assert "keras[jax]" in line and "faster" in line
    page = (copy / "report" / "index.html").read_text()
    assert '<details class="suite-diff" data-suite="lightning" data-base="keras"' in page
    assert '<details class="suite-diff" data-suite="lightning" data-base="raw_pytorch"' in page


def test_a_stopped_process_is_reported_from_the_rounds_it_ran(tmp_path):
    """Ctrl-C mid-run: runs.json keeps the blocks an unfinished process reported, and the report
    gives its ratio over those rounds, said to be so far (issue 21, case 7)."""
    copy = tmp_path / "run"
    shutil.copytree(FIXTURE, copy)
    runs = json.loads((copy / "runs.json").read_text())
    (entry,) = [e for e in runs["variants"] if e["label"] == "lightning"]
    ran = blocks_of(copy, "lightning")[:12]  # stopped after 12 of its blocks
    entry.update(status="interrupted", blocks=ran, error="interrupted (SIGINT)")
    (copy / entry["json"]).unlink()
    (copy / "runs.json").write_text(json.dumps(runs))
    write_report(copy)
    expected = speed.speed_ratio(blocks_of(copy, "raw_pytorch"), ran)
    assert expected is not None and expected.pairs == 11  # the first block is start-up
    summary = (copy / "report" / "summary.md").read_text()
    training = summary.split("## Training", 1)[1].split("\n## ", 1)[0]
    (line,) = [line for line in training.splitlines() if line.startswith("| lightning ")]
    cell = f"{expected.point:.2f} [{expected.low:.2f}, {expected.high:.2f}] (11 rounds)"
    assert "INTERRUPTED" in line and cell in line and "(so far)" in line
