"""The comparison driver: a failing suite in the middle, an interrupted run, atomic writes.

The per-variant child processes are replaced by tiny Python commands that write the recorded
fixture's JSON (tests/fixtures/run) or fail the way pytest does, so the driver's own behaviour is
tested in seconds, without training anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from common import compare, files, registry

FIXTURE = Path(__file__).parent / "fixtures" / "run" / "benchmark.json"
CHOSEN = ["raw_pytorch", "ignite", "lightning"]

CHILD = """
import json, sys
fixture, json_path, variant, fail = sys.argv[1:]
if fail == "yes":
    print("FAILED benchmarks/test_training.py::test_training[" + variant + "] - RuntimeError: boom")
    sys.exit(1)
data = json.load(open(fixture))
data["benchmarks"] = [b for b in data["benchmarks"]
                      if b["extra_info"].get("variant") == variant]
print("  " + variant + ": epoch 1/1  loss 0.5  test accuracy 90.00%  1.0 s", flush=True)
json.dump(data, open(json_path, "w"))
"""


@pytest.fixture
def stub_children(monkeypatch):
    """Child commands that replay the fixture; the variant named in `failing` fails."""
    failing: set[str] = set()

    def command(variant, run, args, json_path):
        fail = "yes" if variant.id in failing else "no"
        return [sys.executable, "-c", CHILD, str(FIXTURE), str(json_path), variant.id, fail]

    monkeypatch.setattr(compare, "_pytest_command", command)
    return failing


def run_compare(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    args = ["--out", str(tmp_path), "--quick", *(a for s in CHOSEN for a in ("--suite", s)), *extra]
    code = compare.main(args)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()]
    return code, run_dir


def test_a_failing_suite_in_the_middle_loses_nothing(tmp_path, stub_children, capsys):
    stub_children.add("ignite")
    code, run_dir = run_compare(tmp_path)
    assert code == 1
    runs = json.loads((run_dir / "runs.json").read_text())
    assert [(e["variant"], e["status"]) for e in runs["variants"]] == [
        ("raw_pytorch", "ok"),
        ("ignite", "failed"),
        ("lightning", "ok"),
    ]
    assert runs["variants"][1]["error"] == "RuntimeError: boom"
    merged = json.loads((run_dir / "benchmark.json").read_text())
    variants = {b["extra_info"].get("variant") for b in merged["benchmarks"]}
    assert {"raw_pytorch", "lightning"} <= variants and "ignite" not in variants
    summary = (run_dir / "report" / "summary.md").read_text()
    assert "FAILED" in summary and "RuntimeError: boom" in summary
    assert "not completed: ignite" in capsys.readouterr().err
    assert (tmp_path / "latest").resolve() == run_dir.resolve()


def test_all_ok_exits_zero_and_echoes_progress(tmp_path, stub_children, capsys):
    code, run_dir = run_compare(tmp_path)
    assert code == 0
    out = capsys.readouterr().out
    assert "  lightning: epoch 1/1" in out and "[3/3] lightning ok" in out
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["threads"] >= 1 and environment["data_checksums"]


def test_an_interrupted_run_keeps_what_was_measured(tmp_path, stub_children, monkeypatch):
    real_run_job = compare.run_job

    def interrupted_on_second(variant, *args):
        if variant.id == CHOSEN[1]:
            raise KeyboardInterrupt
        return real_run_job(variant, *args)

    monkeypatch.setattr(compare, "run_job", interrupted_on_second)
    code, run_dir = run_compare(tmp_path)
    assert code == 130
    runs = json.loads((run_dir / "runs.json").read_text())
    assert [e["status"] for e in runs["variants"]] == ["ok", "interrupted", "interrupted"]
    merged = json.loads((run_dir / "benchmark.json").read_text())
    assert any(b["extra_info"].get("variant") == "raw_pytorch" for b in merged["benchmarks"])


def test_an_unknown_suite_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--out", str(tmp_path), "--suite", "tensorflow_raw"])
    assert exit_info.value.code == 2
    assert "unknown suite 'tensorflow_raw'; known: raw_pytorch" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "benchmark.json"
    files.write_json(target, {"complete": True})

    def half_then_interrupt(f):
        f.write(b'{"comp')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(target, half_then_interrupt)
    assert json.loads(target.read_text()) == {"complete": True}
    assert [p.name for p in tmp_path.iterdir()] == ["benchmark.json"]


def test_every_mode_scenario_runs_each_variant_in_each_of_its_modes():
    chosen = registry.select(["raw_pytorch", "keras[jax]"])
    run = compare._settings(compare._parser().parse_args(["--modes"]))
    jobs = [(v.id, r.mode) for v, r in compare._jobs(chosen, run, every_mode=True)]
    assert jobs == [
        ("raw_pytorch", "eager"),
        ("raw_pytorch", "compile"),
        ("keras[jax]", "graph"),
        ("keras[jax]", "eager"),
        ("keras[jax]", "xla"),
    ]
