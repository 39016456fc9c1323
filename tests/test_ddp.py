"""The ddp scenario: a data-parallel step computes what a single process computes, and a failing,
killed or interrupted launch ends whole, names the rank, and leaves no process behind.

Each launch runs 2 processes on the CPU over gloo, on the loopback interface, with a rendezvous
port that torchrun picks free.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from common.measure import processes
from common.scenarios import distributed
from common.task import registry

ROOT = Path(__file__).resolve().parents[1]
NPROC = 2
STEP_EQUAL = (
    "raw_pytorch_ddp", "lightning_ddp", "ignite_ddp", "fabric_ddp", "keras_ddp[jax]", "flax_ddp"
)  # fmt: skip
# torchrun's suites, which its multi-node rendezvous launches on two "nodes" too
TWO_NODES = tuple(
    v.id
    for v in registry.variants(distributed=True)
    if v.id in STEP_EQUAL and v.launcher == "torchrun"
)
ENDS_WITHIN = 60  # seconds: a failed or killed rank ends the whole launch by then


def _variant(name: str) -> registry.Variant:
    (variant,) = registry.select([name], distributed=True)
    reason = variant.missing()
    if reason:
        pytest.skip(reason)
    return variant


def _launch(variant, options, tmp_path, module=None, timeout=300, nodes=None) -> distributed.Launch:
    nproc = 1 if nodes else NPROC if variant.distributes else 1  # a rank per node, or NPROC
    return distributed.Launch(
        distributed.launch_command(variant, nproc, options, module=module, nodes=nodes),
        distributed.launch_environments(variant, nproc),
        tmp_path / f"{variant.suite}{f'-node{nodes.rank}' if nodes else ''}.log",
        timeout,
    )


def _two_nodes(variant, options, tmp_path, module=None, timeout=300):
    """Two "nodes" on this machine, one rank each, meeting at a port of node 0's, each launch run
    in a thread of its own: the launches, their threads, and each one's outcome once it ends
    (its LaunchFailed message, or None)."""
    endpoint = f"127.0.0.1:{distributed.free_port()}"
    launches = [
        _launch(variant, options, tmp_path, module, timeout, distributed.Nodes(2, rank, endpoint))
        for rank in range(2)
    ]
    outcome: dict[int, str | None] = {}

    def run(index: int) -> None:
        try:
            launches[index].run()
            outcome[index] = None
        except distributed.LaunchFailed as error:
            outcome[index] = str(error)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    threads[0].start()
    _wait_for_port(endpoint)  # node 0's agent hosts the store, as on a machine of its own
    threads[1].start()
    return launches, threads, outcome


def _wait_for_line(log: Path, text: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {log} after {seconds} s")


def _wait_for_port(endpoint: str, seconds: float = 60) -> None:
    host, port = endpoint.rsplit(":", 1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens at {endpoint} after {seconds} s")


def _one_step(variant, tmp_path, two_nodes=False) -> dict[str, list[np.ndarray]]:
    """Weights before and after one step of `variant`, launched as it is launched to train (on
    two nodes if asked)."""
    out = tmp_path / f"{variant.suite}.npz"
    options = [variant.id, str(out)]
    if two_nodes:
        _, threads, outcome = _two_nodes(variant, options, tmp_path, "tests.ddp_one_step")
        for thread in threads:
            thread.join()
        assert outcome == {0: None, 1: None}
    else:
        _launch(variant, options, tmp_path, module="tests.ddp_one_step").run()
    with np.load(out) as saved:
        count = len(saved.files) // 2
        return {when: [saved[f"{when}_{i}"] for i in range(count)] for when in ("before", "after")}


@pytest.mark.parametrize(
    ("name", "two_nodes"),
    [(name, False) for name in STEP_EQUAL] + [(name, True) for name in TWO_NODES],
)
def test_one_data_parallel_step_equals_one_single_process_step(name, two_nodes, tmp_path):
    variant = _variant(name)
    parallel = _one_step(variant, tmp_path, two_nodes)
    single = _one_step(distributed.single_of(variant), tmp_path)
    for got, want in zip(parallel["before"], single["before"], strict=True):
        np.testing.assert_array_equal(got, want)  # the same start, so the same step is expected
    # The check has teeth: Adam's first step moves every weight by about lr (1e-3), so a step on
    # other images, or on half of them, misses 1e-5 by far.
    moved = max(np.abs(a - b).max() for a, b in zip(single["after"], single["before"], strict=True))
    assert moved > 5e-4
    for got, want in zip(parallel["after"], single["after"], strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def _ranks_of(launcher_pid: int, module: str) -> dict[int, int]:
    """RANK -> pid of the processes below the launcher that run `module`."""
    ranks = {}
    for pid in processes.descendants(launcher_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if module.encode() in command:
            for item in environment:
                if item.startswith(b"RANK="):
                    ranks[int(item[5:])] = pid
    return ranks


def _wait_for_ranks(
    launcher_pid: int, module: str, count: int = NPROC, seconds: float = 60
) -> dict[int, int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ranks = _ranks_of(launcher_pid, module)
        if len(ranks) == count:
            return ranks
        time.sleep(0.2)
    raise AssertionError(f"{count} ranks of {module} did not start within {seconds} s")


def _gone(pids) -> bool:
    return not any(processes.exists(pid) for pid in pids)


def test_a_failing_rank_ends_the_launch_in_one_line_naming_it(tmp_path):
    variant = _variant("raw_pytorch_ddp")
    launch = _launch(variant, ["--fail-rank", "1"], tmp_path, module="tests.ddp_one_step")
    start = time.monotonic()
    with pytest.raises(distributed.LaunchFailed) as failed:
        launch.run()
    assert time.monotonic() - start < ENDS_WITHIN
    message = str(failed.value)
    assert "\n" not in message and message.startswith("rank 1 failed (exit code 1)")
    assert "RuntimeError: rank 1 fails on purpose" in message


def test_a_killed_rank_ends_the_launch_and_leaves_no_process(tmp_path):
    variant = _variant("raw_pytorch_ddp")
    # Full MNIST for 5 epochs: far longer than the test, so only the kill can end it.
    launch = _launch(variant, ["--epochs", "5", "--threads", "1"], tmp_path, timeout=600)
    outcome: dict = {}

    def run() -> None:
        try:
            launch.run()
        except distributed.LaunchFailed as error:
            outcome["error"] = str(error)

    runner = threading.Thread(target=run)
    runner.start()
    launcher = _wait_for_launcher(launch)
    ranks = _wait_for_ranks(launcher, variant.module_name)
    everything = processes.descendants(launcher) + [launcher]
    os.kill(ranks[1], signal.SIGKILL)
    killed = time.monotonic()
    runner.join(ENDS_WITHIN)
    assert not runner.is_alive(), f"the launch outlived its killed rank by {ENDS_WITHIN} s"
    assert time.monotonic() - killed < ENDS_WITHIN
    assert outcome["error"] == "rank 1 failed (killed by SIGKILL)"
    assert _gone(everything)


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_second_nodes_agent_ends_the_first_in_one_line(sent, tmp_path):
    """SIGTERM: the agent stops its rank and leaves. SIGKILL: its rank is orphaned (torchrun
    starts it in a session of its own) and the launch stops it; either way node 0's rank loses
    its peer, and its agent ends."""
    variant = _variant("raw_pytorch_ddp")
    # Short epochs, far more of them than the test lasts: only the kill can end it.
    options = ["--epochs", "1000", "--train-size", "2560", "--test-size", "500", "--threads", "1"]
    launches, threads, outcome = _two_nodes(variant, options, tmp_path, timeout=600)
    everything: list[int] = []
    try:
        agents = [_wait_for_launcher(launch) for launch in launches]
        for agent in agents:
            _wait_for_ranks(agent, variant.module_name, count=1)
        everything = [*agents, *(pid for agent in agents for pid in processes.descendants(agent))]
        # Into training: a node lost before its rank has joined the process group leaves the
        # others waiting in init_process_group for its timeout (30 minutes), as torchrun does.
        _wait_for_line(launches[0].log, "epoch 1/1000")
        os.kill(agents[1], sent)
        killed = time.monotonic()
        threads[0].join(ENDS_WITHIN)
        assert not threads[0].is_alive(), f"node 0 outlived node 1's agent by {ENDS_WITHIN} s"
        ended = time.monotonic() - killed
        threads[1].join(ENDS_WITHIN)
    finally:  # however the test ends, nothing it started is left for the next test to find
        for pid in everything:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert ended < ENDS_WITHIN
    message = outcome[0]
    assert message and "\n" not in message and message.startswith("rank 0 failed"), message
    assert _gone(everything)


def _wait_for_launcher(launch: distributed.Launch, seconds: float = 30) -> int:
    """The pid of the launcher a Launch started in another thread (a child of this process)."""
    wanted = b"".join(part.encode() + b"\0" for part in launch.command)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for pid in processes.descendants(os.getpid()):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == wanted:
                    return pid
            except OSError:
                continue
        time.sleep(0.1)
    raise AssertionError("the launcher did not start")


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_scenario_and_every_rank(tmp_path):
    _variant("raw_pytorch_ddp")
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "common",
            "ddp",
            "--suite",
            "raw_pytorch_ddp",
            "--epochs",
            "5",
            "--out",
            str(tmp_path),
        ],  # fmt: skip
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # as from a terminal: a shell's `tox &` starts pytest, and so the driver, with SIGINT
        # ignored, and the driver keeps it so
        preexec_fn=_sigint_as_in_a_terminal,
    )
    try:
        # The driver's first launch (the single-process run) is interrupted like any other.
        deadline = time.monotonic() + 60
        while not processes.descendants(driver.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # into imports and training
        everything = processes.descendants(driver.pid)
        assert everything
        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=ENDS_WITHIN)
    finally:  # however the test ends, nothing it started is left for the next test to find
        below = processes.descendants(driver.pid)
        processes.stop(driver, grace=5)
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert driver.returncode == 130, output[-2000:]
    assert "interrupted" in output
    assert _gone(everything)


def test_workers_started_one_by_one_end_together_when_one_fails(tmp_path):
    """TensorFlow's workers have no torchrun above them: the launch watches them itself."""
    variant = next(v for v in registry.variants(True) if v.launcher == "tf-workers")
    environments = distributed.launch_environments(variant, NPROC)
    assert {e["RANK"] for e in environments} == {"0", "1"}
    assert len({e["TF_CONFIG"] for e in environments}) == NPROC  # each its own task index
    failing = "import os, sys, time\nif os.environ['RANK'] == '1': sys.exit(3)\ntime.sleep(120)"
    launch = distributed.Launch(
        [sys.executable, "-c", failing], environments, tmp_path / "workers.log", 300
    )
    start = time.monotonic()
    with pytest.raises(distributed.LaunchFailed, match=r"^rank 1 failed \(exit code 3\)"):
        launch.run()
    assert time.monotonic() - start < ENDS_WITHIN
    assert not processes.descendants(os.getpid())


def test_a_bad_setting_is_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "common", "ddp", "--nproc", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "python -m common ddp: error: nproc must be >= 2 and divide the global batch 128, got 3"
    )


def test_the_report_section_says_what_is_not_available_on_cpu(tmp_path):
    from common.report.ddp import ddp_section
    from common.task import files

    def launch(accuracy, speed, device="cpu"):
        record = {"test_accuracy": accuracy, "images_per_second": speed, "device": device}
        return {"status": "ok", "record": record, "load_before": 0.3,
                "startup": {"status": "ok", "wall_seconds": 9.0, "record": record}}  # fmt: skip

    lines = {"added": 9, "removed": 3, "net": 6}
    failed = {"status": "failed", "error": "rank 1 failed (exit code 1): RuntimeError: no GPU"}
    ok = {"kind": "ddp-variant", "variant": "raw_pytorch_ddp", "launch": "torchrun ...",
          "status": "ok", "lines": lines, "single": launch(0.985, 1000.0),
          "distributed": launch(0.984, 1500.0), "accuracy_gap_points": -0.1,
          "throughput_ratio": 1.5}  # fmt: skip
    gpu_only = {"kind": "ddp-variant", "variant": "fastai_ddp", "launch": "torchrun ...",
                "needs": "cuda", "status": "failed", "error": failed["error"], "lines": lines,
                "single": {"status": "not run", "startup": launch(0.9, 900.0)},
                "distributed": {**failed, "startup": failed}}  # fmt: skip
    files.write_json(
        tmp_path / "ddp.json",
        {"kind": "ddp-run", "started": "2026-11-30T01:00:00",
         "settings": {"nproc": 2, "batch_size": 128, "epochs": 2, "train_size": None},
         "environment": {"cpu": "AMD EPYC", "cores": 2}, "variants": [ok, gpu_only]},
    )  # fmt: skip
    section = ddp_section(tmp_path)
    assert "| raw_pytorch_ddp | `torchrun ...` | 98.50% / 98.40% (-0.10) | 1000 / 1500 (1.50x)" in (
        section
    )
    assert "not available on CPU: rank 1 failed (exit code 1): RuntimeError: no GPU" in section
    assert "Not a quiet machine" not in section
    ok["distributed"]["startup"]["load_before"] = 4.0
    files.write_json(tmp_path / "ddp.json", {**json.loads((tmp_path / "ddp.json").read_text()),
                                             "variants": [ok, gpu_only]})  # fmt: skip
    assert "Not a quiet machine" in ddp_section(tmp_path)
    assert ddp_section(tmp_path / "elsewhere") is None


def test_a_failed_variant_fails_the_run(tmp_path, monkeypatch, capsys):
    _variant("raw_pytorch_ddp")

    def rank_killed(variant, run, nproc, name, folder, options):
        return {"kind": "ddp-launch", "status": "failed", "error": "rank 1 failed (SIGKILL)"}

    monkeypatch.setattr(distributed, "_launch_once", rank_killed)
    code = distributed.main(["--suite", "raw_pytorch_ddp", "--out", str(tmp_path)])
    assert code == 1
    (record,) = (p for p in tmp_path.glob("*-ddp/ddp.json") if not p.parent.is_symlink())
    assert json.loads(record.read_text())["variants"][0]["status"] == "failed"
    assert "rank 1 failed (SIGKILL)" in capsys.readouterr().out
