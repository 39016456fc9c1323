"""The comparison driver: a failing suite in the middle, an interrupted run, atomic writes.

The per-variant child processes are replaced by tiny Python commands that write the recorded
fixture's JSON (tests/fixtures/run) or fail the way pytest does, so the driver's own behaviour is
tested in seconds, without training anything.
"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common import task
from common.scenarios import catalog, compare
from common.task import SettingError, files, paths, registry
from common.task.data import DATASETS

FIXTURE = Path(__file__).parent / "fixtures" / "run" / "benchmark.json"
CHOSEN = ["raw_pytorch", "ignite", "lightning"]

CHILD = """
import json, os, signal, sys, time
from common.measure.turns import process_turns
fixture, json_path, junit, variant, behaviour = sys.argv[1:]
turns = process_turns()
if behaviour == "fail":
    long = "RuntimeError: " + "injected failure with a message longer than a terminal line " * 2
    open(junit, "w").write(
        '<testsuites><testsuite><testcase name="test_training">'
        f'<failure message="{long}">traceback</failure></testcase></testsuite></testsuites>'
    )
    sys.exit(1)
if behaviour == "garble":
    open(json_path, "w").write('{"benchmarks": [{"half')
    sys.exit(0)
turns.ready()
if behaviour in ("SIGINT", "SIGTERM", "SIGHUP"):  # to the driver's pid alone, not its group
    os.kill(os.getppid(), getattr(signal, behaviour))
    time.sleep(30)
if behaviour == "SIGINT after a turn":
    turns.yield_turn([{"kind": "block", "index": 0, "epoch": 1, "steps": 10, "seconds": 0.1}], None)
    os.kill(os.getppid(), signal.SIGINT)
    time.sleep(30)
epoch = {"epoch": 1, "train_loss": 0.5, "test_accuracy": 0.9, "train_seconds": 1.0}
turns.yield_turn([], epoch)
data = json.load(open(fixture))
data["benchmarks"] = [b for b in data["benchmarks"]
                      if b["extra_info"].get("variant") == variant]
json.dump(data, open(json_path, "w"))
"""


@pytest.fixture
def signals_as_in_a_terminal():
    """The driver's signals as a terminal leaves them: a shell's `tox &` starts pytest with SIGINT
    ignored, and the driver keeps an ignored signal ignored (as nohup wants for SIGHUP)."""
    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in stopping}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for s in stopping[1:]:
        signal.signal(s, signal.SIG_DFL)
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


@pytest.fixture
def stub_children(monkeypatch):
    """Child commands that replay the fixture; behaviour[variant]: fail, garble, SIGINT or
    SIGTERM."""
    behaviour: dict[str, str] = {}

    def command(variant, run, args, log, control=False):
        json_path, _, junit = compare._child_files(log)
        return [
            sys.executable,
            "-c",
            CHILD,
            str(FIXTURE),
            str(json_path),
            str(junit),
            variant.id,
            behaviour.get(variant.id, "ok"),
        ]

    monkeypatch.setattr(compare, "_pytest_command", command)
    return behaviour


def run_compare(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    """One replicate unless extra asks for more: most tests are about one set of processes."""
    replicates = [] if "--replicates" in extra else ["--replicates", "1"]
    args = ["--out", str(tmp_path), "--quick", *(a for s in CHOSEN for a in ("--suite", s))]
    args += [*replicates, *extra]
    code = compare.main(args)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()]
    return code, run_dir


def test_a_failing_suite_in_the_middle_loses_nothing(tmp_path, stub_children, capsys):
    stub_children["ignite"] = "fail"
    code, run_dir = run_compare(tmp_path)
    assert code == 1
    runs = json.loads((run_dir / "runs.json").read_text())
    assert [(e["label"], e["status"]) for e in runs["variants"]] == [
        ("raw_pytorch", "ok"),
        ("raw_pytorch+A/A", "ok"),  # the A/A control: the reference's second process
        ("ignite", "failed"),
        ("lightning", "ok"),
    ]
    # The whole first line, from the child's JUnit XML: not cut to the terminal's width.
    error = runs["variants"][2]["error"]
    assert error.startswith("RuntimeError: injected failure") and len(error) > 100
    merged = json.loads((run_dir / "benchmark.json").read_text())
    variants = {b["extra_info"].get("variant") for b in merged["benchmarks"]}
    assert {"raw_pytorch", "lightning"} <= variants and "ignite" not in variants
    summary = (run_dir / "report" / "summary.md").read_text()
    assert "FAILED" in summary and error in summary
    assert "not completed: ignite" in capsys.readouterr().err
    assert (tmp_path / "latest").resolve() == run_dir.resolve()


def test_all_ok_exits_zero_and_echoes_progress(tmp_path, stub_children, capsys):
    code, run_dir = run_compare(tmp_path)
    assert code == 0
    out = capsys.readouterr().out
    assert "  lightning: epoch 1  loss 0.5000" in out and "lightning ok" in out
    runs = json.loads((run_dir / "runs.json").read_text())
    assert runs["kind"] == "comparison-run" and runs["schedule"]["order_seed"]
    everyone = sorted([*CHOSEN, "raw_pytorch+A/A"])
    assert [sorted(r["order"]) for r in runs["schedule"]["rounds"]] == [everyone] * 2
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["threads"] >= 1 and environment["data_checksums"]


REPLICATE_MARK = compare.REPLICATE


def test_replicates_are_fresh_processes_one_after_another(tmp_path, stub_children):
    code, run_dir = run_compare(tmp_path, "--replicates", "2")
    assert code == 0
    runs = json.loads((run_dir / "runs.json").read_text())
    assert runs["settings"]["replicates"] == 2
    labels = [(e["label"], e["replicate"], e["group"]) for e in runs["variants"]]
    first = sorted([*CHOSEN, "raw_pytorch+A/A"])
    assert sorted(label for label, replicate, _ in labels if replicate == 1) == first
    assert sorted(label for label, replicate, _ in labels if replicate == 2) == [
        name + "#r2" for name in first
    ]
    assert {group for _, replicate, group in labels if replicate == 2} == {2}
    # Each replicate's rounds hold its own processes only: ratios pair within a replicate.
    for entry in runs["schedule"]["rounds"]:
        assert all(("#r2" in label) == (entry["group"] == 2) for label in entry["order"])
    figures = json.loads((run_dir / "report" / "figures.json").read_text())
    assert figures["kind"] == "comparison-figures"
    (run,) = figures["runs"]
    assert run["replicates"] == 2
    rows = {row["label"]: row for row in run["rows"]}
    # One row per variant, its replicates inside it (the stub children replay the old fixture,
    # where only lightning's record is a training run of this scenario).
    assert "lightning" in rows and not any(REPLICATE_MARK in label for label in rows)
    assert [r["label"] for r in rows["lightning"]["speed"]["replicates"]] == [
        "lightning",
        "lightning#r2",
    ]


def test_replicates_are_checked(tmp_path, stub_children, capsys):
    for given, why in (("0", "whole number >= 1"), ("2 --seeds 2", "does not apply")):
        with pytest.raises(SystemExit):
            compare.main(["--out", str(tmp_path), "--replicates", *given.split()])
        assert why in capsys.readouterr().err


@pytest.mark.parametrize(
    ("signal_name", "exit_code"), [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)]
)
def test_an_interrupted_run_keeps_what_was_measured(
    tmp_path, stub_children, capsys, signal_name, exit_code, signals_as_in_a_terminal
):
    stub_children["lightning"] = signal_name  # sent to the driver once all are ready
    code, run_dir = run_compare(tmp_path)
    assert code == exit_code
    runs = json.loads((run_dir / "runs.json").read_text())
    assert runs["finished"] and [e["status"] for e in runs["variants"]] != ["pending"] * 3
    assert {e["status"] for e in runs["variants"]} <= {"ok", "interrupted"}
    assert "interrupted" in {e["status"] for e in runs["variants"]}
    assert (tmp_path / "latest").resolve() == run_dir.resolve()


def test_a_half_written_json_is_that_variants_failure(tmp_path, stub_children):
    stub_children["ignite"] = "garble"
    code, run_dir = run_compare(tmp_path)
    assert code == 1
    runs = json.loads((run_dir / "runs.json").read_text())
    statuses = {e["variant"]: (e["status"], e["error"]) for e in runs["variants"]}
    assert statuses["ignite"] == (
        "failed",
        "its benchmark JSON ignite.json is unreadable (JSONDecodeError)",
    )
    assert statuses["lightning"][0] == statuses["raw_pytorch"][0] == "ok"


def test_two_runs_in_the_same_second_get_their_own_folders(tmp_path):
    import datetime as dt

    now = dt.datetime(2026, 11, 29, 12, 0, 0)
    first, second = paths.run_folder(tmp_path, now), paths.run_folder(tmp_path, now)
    assert first != second and first.is_dir() and second.is_dir()
    assert paths.run_folder(tmp_path, now, "ddp").name == "20261129-120000-ddp"


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
    args = compare._parser().parse_args(["--modes"])
    jobs = [(v.id, r.mode) for v, r in compare._jobs(chosen, compare._settings(args), args)]
    assert jobs == [
        ("raw_pytorch", "eager"),
        ("raw_pytorch", "compile"),
        ("keras[jax]", "graph"),
        ("keras[jax]", "eager"),
        ("keras[jax]", "xla"),
    ]


def test_the_seeds_scenario_runs_each_variant_with_each_seed_against_one_reference(
    tmp_path, stub_children
):
    code, run_dir = run_compare(tmp_path, "--seeds", "2", "--seed", "5")
    assert code == 0
    runs = json.loads((run_dir / "runs.json").read_text())
    assert runs["scenario"] == "seeds" and runs["settings"]["seeds"] == 2
    assert sorted(e["label"] for e in runs["variants"]) == sorted(
        f"{s}#seed{n}" for s in CHOSEN for n in (5, 6)
    )
    assert [e["label"] for e in runs["variants"] if e["reference"]] == ["raw_pytorch#seed5"]
    assert not any(e["control"] for e in runs["variants"])  # no A/A: speed is not the point


@pytest.mark.parametrize("seeds", ["1", "0"])
def test_fewer_than_two_seeds_is_a_usage_error(seeds, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:  # were it taken, only a quick run in tmp_path
        compare.main(
            ["--seeds", seeds, "--quick", "--suite", "raw_pytorch", "--out", str(tmp_path)]
        )
    assert exit_info.value.code == 2
    assert f"seeds must be a whole number >= 2, got {seeds}" in capsys.readouterr().err


def test_every_run_knob_reaches_the_children():
    args = compare._parser().parse_args(
        ["--dataset", "fashion-mnist", "--seed", "3", "--device", "cpu", "--test-size", "500"]
    )
    run = compare._settings(args)
    (variant,) = registry.select(["ignite"])
    command = compare._pytest_command(variant, run, args, Path("/tmp/logs/ignite.log"))
    for option, value in (("--dataset", "fashion-mnist"), ("--seed", "3"), ("--test-size", "500")):
        assert command[command.index(option) + 1] == value
    assert command[command.index("--device") + 1] == "cpu"


@pytest.fixture
def tmpfs(tmp_path, request):
    """A tmpfs mounted with the options request.param (needs root, as in CI); skipped where it
    can't be mounted."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", request.param, "tmpfs", str(disk)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.parametrize("tmpfs", ["ro,size=64k"], indirect=True)
@pytest.mark.parametrize("out", ["/etc/passwd/x", "read-only"])
def test_an_unusable_out_folder_is_one_clear_error(tmpfs, capsys, out):
    out = tmpfs if out == "read-only" else out  # root writes into a chmod-ed folder: a ro mount
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--out", str(out), "--suite", "raw_pytorch"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--out {out}: cannot create a run folder there (" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("knob", "message"),
    [
        ({"device": "cuda:x"}, "device must be one of auto, cpu, cuda (or cuda:N)"),
        ({"epochs": 0}, "epochs must be a whole number >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
        ({"model": "resnet"}, "model must be one of convnet, linear"),
    ],
)
def test_every_knob_is_validated_in_one_place(knob, message):
    from common.task import RunConfig, SettingError

    with pytest.raises(SettingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunConfig(**knob)


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--rounds", "0"], ["--epochs", "-1"]])
def test_a_bad_benchmark_option_is_a_usage_error(option):
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", *option],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 4  # pytest's usage error
    assert "must be" in done.stderr and "Traceback" not in done.stderr


def test_a_full_disk_stops_cleanly_and_keeps_what_was_written(
    tmp_path, stub_children, monkeypatch, capsys
):
    import errno

    real_merge, calls = compare.merge, []

    def merge_until_the_disk_fills(run_dir, runs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "benchmark.json"))
        real_merge(run_dir, runs)

    monkeypatch.setattr(compare, "merge", merge_until_the_disk_fills)
    code, run_dir = run_compare(tmp_path)
    assert code == 1
    err = capsys.readouterr().err
    assert (
        f"error: cannot write the results in {tmp_path}" in err
        and "No space left on device (" in err
    )
    assert "Traceback" not in err
    runs = json.loads((run_dir / "runs.json").read_text())
    assert runs["finished"] and "pending" not in {e["status"] for e in runs["variants"]}
    merged = run_dir / "benchmark.json"  # what was merged before the disk filled stays whole
    assert not merged.exists() or "benchmarks" in json.loads(merged.read_text())
    assert not list(run_dir.glob(".*.part"))


@pytest.mark.parametrize("tmpfs", ["size=8k", "size=40k", "size=72k", "size=160k"], indirect=True)
def test_a_really_full_disk_leaves_a_finished_run_or_none(
    tmpfs, stub_children, monkeypatch, capsys
):
    from common import report

    monkeypatch.setattr(files.Reserve, "SIZE", 24 << 10)  # a stub run's runs.json is ~3 KB
    args = ["--out", str(tmpfs), "--quick", *(a for s in CHOSEN for a in ("--suite", s))]
    code = compare.main(args)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    runs = [p for p in tmpfs.iterdir() if p.is_dir() and not p.is_symlink()]
    assert not list(tmpfs.rglob(".*.part")) and not list(tmpfs.rglob(".reserve"))
    if not runs:  # not even runs.json fitted: nothing ran, and no folder is left that isn't a run
        assert errors[0] == f"error: cannot write to {tmpfs}: No space left on device"
        return
    (run_dir,) = runs
    status = json.loads((run_dir / "runs.json").read_text())
    assert status["finished"] and "pending" not in {e["status"] for e in status["variants"]}
    report.load_run(run_dir)  # what is there reads as a run


@pytest.mark.parametrize(
    "argv, name",
    [
        ([], "comparison"),
        (["--quick"], "comparison"),
        (["--modes"], "modes"),
        (["--overhead"], "overhead"),
        (["--target-accuracy", "0.99"], "time-to-accuracy"),
        (["--seeds", "3"], "seeds"),
        (["--seeds", "0"], "seeds"),  # given, and then refused: never the default comparison
    ],
)
def test_the_driver_looks_the_scenario_up_in_the_catalog(argv, name):
    args = compare._parser().parse_args(argv)
    assert catalog.chosen(args) is catalog.BY_NAME[name]


def test_two_scenarios_at_once_is_a_setting_error():
    args = compare._parser().parse_args(["--modes", "--seeds", "2"])
    with pytest.raises(SettingError, match="choose one scenario: --modes, --overhead"):
        catalog.chosen(args)


# --- real children on a tiny subset -------------------------------------------------------------
TINY = ["--suite", "raw_pytorch", "--train-size", "1000", "--test-size", "500", "--epochs", "1"]


def _real_compare(tmp_path: Path, *argv: str, **environment: str) -> subprocess.CompletedProcess:
    """`python -m common compare` on a tiny subset (the reference alone unless argv says), as a
    user starts it."""
    return subprocess.run(
        [sys.executable, "-m", "common", "compare", *(argv or TINY), "--replicates", "1"]
        + ["--out", str(tmp_path / "out")],
        cwd=paths.ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=900,  # about a minute on 2 busy cores
    )


def test_a_cache_that_cannot_be_written_never_fails_a_measurement(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    done = _real_compare(tmp_path, MNIST_COMPARE_CACHE=str(tmp_path / "a-file"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "raw_pytorch ok\n" in done.stdout
    (note,) = [line for line in done.stdout.splitlines() if "raw_pytorch: skipped:" in line]
    assert "could not write the parsed cache" in note and "loads from" in note


def test_a_child_that_cannot_load_its_data_says_why_on_the_console(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for stem in DATASETS["mnist"].files:
        (corrupt / f"{stem}.gz").write_bytes(gzip.compress(b"not an IDX file"))
    done = _real_compare(
        tmp_path, MNIST_DIR=str(corrupt), MNIST_COMPARE_CACHE=str(tmp_path / "cache")
    )
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("raw_pytorch failed")]
    assert failed and failed[0].startswith("raw_pytorch failed: cannot load the data: ")
    assert "is corrupt or from another dataset" in failed[0] and "no tests ran" not in failed[0]


def test_the_recorded_command_pastes_back_and_too_many_threads_are_noted(
    tmp_path, stub_children, capsys
):
    out = tmp_path / "out dir" / "x"
    code = compare.main(["--out", str(out), "--quick", "--suite", "raw_pytorch", "--threads", "64"])
    assert code == 0
    (run_dir,) = [p for p in out.iterdir() if not p.is_symlink()]
    command = json.loads((run_dir / "runs.json").read_text())["command"]
    argv = ["--out", str(out), "--quick", "--suite", "raw_pytorch", "--threads", "64"]
    assert shlex.split(command) == ["python", "-m", "common", "compare", *argv]
    assert f"note: --threads 64 is more than the {task.default_threads()} cores" in (
        capsys.readouterr().err
    )


def test_a_second_ctrl_c_while_the_report_is_written_is_one_line(
    tmp_path, stub_children, monkeypatch, capsys
):
    def interrupted(run_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare, "_write_report", interrupted)
    code, run_dir = run_compare(tmp_path)
    assert code == 130
    err = capsys.readouterr().err
    assert f"interrupted: no report; the measurements are whole in {run_dir}" in err
    assert "Traceback" not in err
    assert json.loads((run_dir / "runs.json").read_text())["finished"]
    assert (tmp_path / "latest").resolve() == run_dir.resolve()


def test_ctrl_c_before_a_command_takes_over_is_one_line(monkeypatch, capsys):
    import types

    from common import __main__ as entry

    starting = types.ModuleType("starting")

    def main(argv):
        raise KeyboardInterrupt  # as during its imports, at 0.15 s

    starting.main = main
    monkeypatch.setitem(sys.modules, "starting", starting)
    monkeypatch.setitem(entry.COMMANDS, "compare", "starting")
    assert entry.main(["compare"]) == 130
    assert capsys.readouterr().err == "python -m common compare: interrupted\n"


def test_ctrl_c_mid_run_keeps_the_rounds_and_blocks_it_ran(
    tmp_path, stub_children, signals_as_in_a_terminal
):
    stub_children["lightning"] = "SIGINT after a turn"
    code, run_dir = run_compare(tmp_path)
    assert code == 130
    runs = json.loads((run_dir / "runs.json").read_text())
    assert len(runs["schedule"]["rounds"]) >= 1
    assert all(entry["group"] == 1 for entry in runs["schedule"]["rounds"])
    (stopped,) = [e for e in runs["variants"] if e["label"] == "lightning"]
    assert stopped["status"] == "interrupted" and stopped["blocks"][0]["steps"] == 10


def test_keras_on_tensorflow_trains_on_one_thread_as_the_overhead_scenario_asks(tmp_path):
    (variant,) = registry.select(["keras[tensorflow]"])
    if variant.missing():
        pytest.skip(variant.missing())
    done = _real_compare(tmp_path, *TINY[2:], "--suite", "keras[tensorflow]", "--threads", "1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "keras[tensorflow] ok\n" in done.stdout


def test_progress_is_shown_at_least_every_ten_seconds_without_a_terminal(monkeypatch, capsys):
    from common.scenarios import progress

    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.05)
    run = compare.RunConfig(epochs=2, train_size=4000)  # 32 steps an epoch: 4 blocks of 10
    total = progress.expected_turns(run, processes=3, block_steps=10)
    assert total == 3 * 2 * 4
    with progress.Heartbeat(total, live=False) as heartbeat:
        for _ in range(6):
            heartbeat.tick()
        time.sleep(0.3)
    lines = [line for line in capsys.readouterr().out.splitlines() if "progress:" in line]
    assert len(lines) >= 2
    assert lines[-1].startswith("  progress: 25% of the turns (6/24), 0:00 elapsed, about 0:0")


def test_every_process_has_its_own_reason_file_a_later_groups_reference_copy_too(tmp_path):
    import datetime as dt

    from common.scenarios import outcomes

    args = compare._parser().parse_args(["--modes"])
    run = compare._settings(args)
    pairs = compare._jobs(registry.select([]), run, args)
    plan = compare.Plan(args, [], catalog.chosen(args), run, pairs, tmp_path, dt.datetime.now(), 1)
    batches = compare._batches(plan)
    jobs = [job for group in batches for job in group]
    assert len(batches) > 1 and any("@" in job.label for job in jobs)  # a reference copy
    reasons = [job.environment[outcomes.REASON_ENV] for job in jobs]
    assert reasons == [str(outcomes.reason_file(job.log_path)) for job in jobs]
    assert len(set(reasons)) == len(jobs)
