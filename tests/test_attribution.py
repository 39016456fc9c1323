"""The attribution track's counting, its N/2N arithmetic and the regression gate.

The end-to-end tests run a stub suite (tests/fixtures/stub_suite.py: softmax regression in NumPy,
whose calls per step are known) in a copy of the project's tree, through the probe and the
scenarios' own command lines; the gate's test plants a regression in the copy's harness code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.measure import counting
from common.scenarios import attribution, gate
from common.task import files

ROOT = Path(__file__).resolve().parents[1]
STUB = Path(__file__).with_name("fixtures") / "stub_suite.py"
TIMEOUT = 900  # seconds, for a loaded machine (the valgrind runs take about 20 s each here)


# --- counting in-process ------------------------------------------------------------------------
def leaf():
    return len("abc")


def caller(times):
    for _ in range(times):
        leaf()


def test_calls_are_counted_by_package_and_by_the_function_that_makes_them():
    counter = counting.CallCounter()
    with counter.counting():
        caller(7)
    counts = {(g, m, f): n for (_, g, m, f), n in counter.counts.items()}
    assert counts[("tests", __name__, "caller")] == 1
    assert counts[("tests", __name__, "leaf")] == 7
    assert counts[("tests", __name__, "builtins.len")] == 7  # a C call, counted for its caller
    made = {(m, f): n for (_, m, f), n in counter.made.items()}
    assert made[(__name__, "caller")] == 7 and made[(__name__, "leaf")] == 7


def test_what_the_harness_calls_is_left_out_with_everything_beneath_it(tmp_path):
    counter = counting.CallCounter()
    with counter.counting():
        caller(2)
        # common.task.files is the harness's: the callback it calls is beneath it
        files.atomic_write(tmp_path / "x", lambda f: caller(5))
    counts = {(g, f): n for (_, g, _, f), n in counter.counts.items()}
    assert counts[("tests", "leaf")] == 2
    assert not [key for key in counts if key[0] == counting.GROUP_HARNESS]


def test_a_standard_library_call_counts_for_the_package_that_called_it():
    import textwrap

    counter = counting.CallCounter()
    with counter.counting():
        textwrap.dedent("  a\n  b\n")
    behalf = {b for (b, g, _, _) in counter.counts if g == counting.GROUP_STDLIB}
    assert behalf == {"tests"}


# --- arithmetic -------------------------------------------------------------------------------
def test_one_step_is_the_difference_of_n_and_2n_steps_and_setup_cancels():
    setup, step = {"a": 5.0, "b": 1.0}, {"a": 3.0, "c": 2.0}
    short = {k: setup.get(k, 0) + 10 * step.get(k, 0) for k in {*setup, *step}}
    long = {k: setup.get(k, 0) + 20 * step.get(k, 0) for k in {*setup, *step}}
    assert attribution.one_step(short, long, 10) == step  # "b" ran once: gone


def test_repeats_disagree_by_their_largest_relative_difference():
    one = {"total": 100.0, "groups": {"x": 60.0, "y": 40.0, "tiny": 0.2}}
    other = {"total": 101.0, "groups": {"x": 60.0, "y": 41.0, "tiny": 0.9}}
    found = attribution.disagreement([one, other])
    assert found["relative"] == pytest.approx(1 / 41) and found["count"] == "y"
    # a group under 1% of the total: its difference as a share of the total
    assert found["small_groups"] == pytest.approx(0.7 / 101)


CALLGRIND = """# callgrind format
version: 1
positions: line
events: Ir
summary: 1000

ob=(1) /usr/lib/libpython3.11.so
fl=(1) ???
fn=(1) _PyEval_EvalFrameDefault
0 600
cob=(2) /venv/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so
cfn=(2) at::addmm
calls=2 0
0 350
fn=(3) PyObject_GetAttr
+1 50
ob=(2)
fn=(2)
0 340
* 10

totals: 1000
"""


def test_callgrinds_exclusive_costs_are_read_and_sum_to_its_total():
    total, costs = counting.exclusive_costs(CALLGRIND)
    assert total == 1000
    assert costs[("/usr/lib/libpython3.11.so", "_PyEval_EvalFrameDefault")] == 600
    assert costs[("/usr/lib/libpython3.11.so", "PyObject_GetAttr")] == 50
    assert costs[("/venv/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so", "at::addmm")] == (
        350
    )
    with pytest.raises(ValueError, match="functions sum to 990"):
        counting.exclusive_costs(CALLGRIND.replace("* 10", "* 0"))
    assert attribution.object_label("/venv/lib/python3.11/site-packages/torch/lib/x.so") == (
        "torch: x.so"
    )


# --- the gate ---------------------------------------------------------------------------------
def _run_file(tmp_path: Path, name: str, per_step: float, grown: float = 0.0) -> Path:
    record = {
        "kind": "attribution-suite",
        "variant": "lightning",
        "instructions": {
            "per_step": per_step,
            "keys": {"/lib/libpython.so\tPyObject_GetAttr": 100.0 + grown, "/lib/x.so\tf": 5.0},
        },
        "calls": {"made": {"pytorch_lightning\tpytorch_lightning.loops\tadvance": 10 + grown}},
    }
    path = tmp_path / name
    files.write_json(path, {"kind": "attribution", "records": [record]})
    return path


def test_the_gate_passes_an_unchanged_run_and_fails_a_grown_one_naming_what_grew(tmp_path):
    base = gate.read_counts(_run_file(tmp_path, "a.json", 1_000_000))
    same = gate.read_counts(_run_file(tmp_path, "b.json", 1_004_000))
    grown = gate.read_counts(_run_file(tmp_path, "c.json", 1_100_000, grown=50))
    (ok,) = gate.compare_counts(base, same)
    assert not ok.regressed and ok.ratio == pytest.approx(1.004)
    (bad,) = gate.compare_counts(base, grown)
    assert bad.regressed
    assert bad.grown[0] == ("libpython.so: PyObject_GetAttr (instructions)", 50.0)
    assert ("pytorch_lightning.loops.advance (calls)", 50.0) in bad.grown
    assert "REGRESSED (over 1.05)" in gate.table([bad])


def test_the_gate_says_in_one_line_what_it_cannot_compare(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(gate.GateError, match="no attribution.json, instructions.json"):
        gate.read_counts(tmp_path / "empty")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(gate.GateError, match="cannot read it as JSON"):
        gate.read_counts(tmp_path / "bad.json")
    done = _command(["-m", "common", "instructions", "--compare", str(tmp_path / "empty"), "x"])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"python -m common instructions: error: {tmp_path / 'empty'}: no attribution.json, "
        "instructions.json, versions.json in this folder"
    ]


# --- end to end, on the stub suite --------------------------------------------------------------
def _command(argv: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip


def _tree(folder: Path, stub: str) -> Path:
    """A copy of the project's code with the stub as suites/stub.py."""
    for part in ("common", "suites"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder)
    (folder / "suites" / "stub.py").write_text(stub)
    return folder


def _attribute(tree: Path, out: Path, *counts: str) -> Path:
    argv = ["-m", "common", "attribution", "--suite", "stub", "--steps", "20", "--repeats", "1"]
    done = _command([*argv, "--counts", ",".join(counts), "--no-time", "--out", str(out)], tree)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    return run


def test_the_stub_loops_calls_per_step_are_counted_exactly(tmp_path):
    tree = _tree(tmp_path / "tree", STUB.read_text())
    run = _attribute(tree, tmp_path / "out", "calls", "operators")
    (record,) = json.loads((run / "attribution.json").read_text())["records"]
    suite = {
        key.split("\t")[3]: value
        for key, value in record["calls"]["keys"].items()
        if key.startswith("suite\tsuite\t")
    }
    assert suite == {"step": 1, "gradient": 1, "forward": 1, "builtins.len": 2, "numpy.arange": 1}
    assert "setup" not in suite  # once per train(): N/2N cancels it
    assert counting.GROUP_HARNESS not in record["calls"]["groups"]
    assert not [key for key in record["calls"]["keys"] if "batch_end" in key]
    assert record["operators"]["per_step"] is None  # no torch in this process
    summary = (run / "summary.md").read_text()
    assert summary.startswith("## Where the overhead goes (attribution scenario)")
    assert "| stub | " in summary and (run / "attribution_calls.png").stat().st_size > 0


@pytest.mark.skipif(not shutil.which("valgrind"), reason="apt-get install valgrind")
def test_the_gate_fails_a_planted_regression_and_passes_an_unchanged_rerun(tmp_path):
    stub = STUB.read_text()
    # 10% more work: the harness's callback repeats the step every tenth step
    planted = stub.replace(
        "            hooks.batch_end(0.0)\n",
        "            hooks.batch_end(0.0)\n"
        "            if hooks.steps % 10 == 0:\n"
        "                step(weights, images[batch], data.train_labels[batch])\n",
    )
    assert planted != stub
    runs = {}
    for name, text in (("base", stub), ("rerun", stub), ("planted", planted)):
        tree = _tree(tmp_path / name, text)
        runs[name] = _attribute(tree, tmp_path / f"{name}-out", "instructions", "calls")
    unchanged = _command(["-m", "common", "instructions", "--compare", runs["base"], runs["rerun"]])
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    regressed = _command(
        ["-m", "common", "instructions", "--compare", runs["base"], runs["planted"]]
    )
    assert regressed.returncode == 1, regressed.stdout + regressed.stderr
    assert "regression: stub over 1.05x" in regressed.stdout
    # the stub's function whose calls grew: a tenth of its step's five (forward, len twice,
    # np.arange, and np.dot's Python dispatcher)
    assert "suites.stub.gradient (calls) +0.5" in regressed.stdout


# --- across releases ----------------------------------------------------------------------------
def _release(version: str, per_step: float, released: str) -> dict:
    return {
        "kind": "attribution-suite", "suite": "lightning", "variant": "lightning",
        "label": f"lightning {version}", "build_seconds": 20.0, "microseconds_per_step": 900.0,
        "release": {"variant": "lightning", "distribution": "pytorch-lightning",
                    "version": version, "released": released, "over_torch_bound": False},
        "instructions": {"per_step": per_step, "keys": {"/lib/libpython.so\tf": per_step}},
        "calls": {"per_step": 3000.0, "made": {}},
        "convnet": {"suite_us": 1000.0, "reference_us": 900.0, "ratio": 0.9},
    }  # fmt: skip


def test_each_release_is_gated_against_the_one_before_it():
    from common.report import releases
    from common.scenarios import versions

    records = [
        _release("2.4.0", 5_000_000, "2024-08-07"),
        _release("2.5.6", 5_020_000, "2025-11-05"),
        _release("2.6.6", 5_600_000, "2026-09-10"),
    ]
    versions.gate_steps(records, 1.05)
    assert "gate" not in records[0]
    assert not records[1]["gate"]["regressed"] and records[2]["gate"]["regressed"]
    assert records[2]["gate"]["against"] == "lightning 2.5.6"
    run = {"records": records, "reference": {"instructions": {"per_step": 1.2e6},
           "calls": {"per_step": 287.0}}, "steps": 50, "convnet_steps": 50,
           "started": "2026-12-06T07:13:28", "seconds": 3000.0}  # fmt: skip
    text = releases.versions_section(run).markdown()
    assert "| pytorch-lightning 2.6.6 (2026-09-10) | 5,600,000 |" in text
    assert "**regressed**: 1.116x lightning 2.5.6" in text


def test_the_newest_releases_of_each_framework():
    from common.scenarios import versions

    newest = versions._newest(list(versions.RELEASES), 1)
    assert {(r.variant, r.version) for r in newest} >= {
        ("lightning", "2.6.6"),
        ("fastai", "2.8.12"),
    }
    assert len(newest) == len({r.variant for r in versions.RELEASES})
