"""Every entry point tox.ini declares (the README's commands and docs/running.md's scenarios)
runs end to end, as tox runs it, on a tiny subset: each env's own command line with options
that shrink it appended (argparse takes the last of an option given twice), in a process of its
own, writing into a temporary folder. What each must leave: a finished run, every variant ok,
and its report; then `python -m common report` over two of them.

A scenario whose command is not here fails the first test, so a new tox env gets a tiny run
before it gets a README line.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 1200  # seconds: generous, for a loaded machine (about 45 s each on a quiet one)

# What shrinks each module's run: raw PyTorch alone, a few hundred images, one replicate.
TINY = {
    "common.scenarios.compare": [
        "--suite", "raw_pytorch", "--train-size", "640", "--test-size", "500",
        "--replicates", "1", "--max-epochs", "2",
    ],
    "common.scenarios.distributed": [
        "--suite", "raw_pytorch_ddp", "--epochs", "1", "--train-size", "512", "--test-size", "500",
        "--max-load", "100",
    ],
    "common.scenarios.instructions": ["--suite", "raw_pytorch", "--steps", "2", "--repeats", "1"],
    "common.scenarios.attribution": ["--suite", "raw_pytorch", "--steps", "2", "--repeats", "1"],
    "common.scenarios.versions": [
        "--suite", "ignite", "--releases", "1", "--steps", "2", "--convnet-steps", "2",
    ],
}  # fmt: skip
VALGRIND = {"instructions", "attribution", "versions"}  # the envs that count under valgrind
NOT_ENTRY_POINTS = {"tests", "lint"}  # the test command itself, and its linters


def _environments() -> dict[str, list[str]]:
    """{tox env: its command}, for every env that runs an entry point."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    found = {}
    for section in tox.sections():
        env = section.removeprefix("testenv:")
        if section.startswith("testenv:") and env not in NOT_ENTRY_POINTS:
            (line,) = tox[section]["commands"].strip().splitlines()
            found[env] = shlex.split(line.replace("{posargs}", ""))
    return found


ENVIRONMENTS = _environments()


def test_every_entry_point_has_a_tiny_run():
    assert {"compare", "quick", "modes", "tta", "overhead", "seeds", "ddp"} <= set(ENVIRONMENTS)
    for env, command in ENVIRONMENTS.items():
        assert command[:2] == ["python", "-m"] and command[2] in TINY, env


def _run(env: str, out: Path) -> subprocess.CompletedProcess:
    command = ENVIRONMENTS[env]
    if env in VALGRIND and not shutil.which("valgrind"):
        pytest.skip("valgrind is not installed: apt-get install valgrind")
    argv = [sys.executable, *command[1:], *TINY[command[2]], "--out", str(out)]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}  # as tox.ini sets it
    done = subprocess.run(
        argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, f"tox -e {env}: exit {done.returncode}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The run folders written so far, by env: the report test takes two of them."""
    return {}


@pytest.mark.parametrize("env", [e for e in ENVIRONMENTS if e not in ("ddp", *VALGRIND)])
def test_a_comparison_scenario_runs_end_to_end(env, tmp_path, runs):
    _run(env, tmp_path)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()]
    status = json.loads((run / "runs.json").read_text())
    assert status["finished"] and status["variants"]
    assert {v["status"] for v in status["variants"]} == {"ok"}, status["variants"]
    summary = (run / "report" / "summary.md").read_text()
    assert summary.startswith("# MNIST: 1 variant") and "raw_pytorch" in summary
    assert (run / "report" / "index.html").stat().st_size > 0
    runs[env] = run


def test_the_ddp_scenario_runs_end_to_end(tmp_path):
    _run("ddp", tmp_path)
    (record,) = [p for p in tmp_path.glob("*-ddp/ddp.json") if not p.parent.is_symlink()]
    assert json.loads(record.read_text())["kind"] == "ddp-run"


@pytest.mark.parametrize(
    ("env", "record"),
    [
        ("instructions", "attribution.json"),
        ("attribution", "attribution.json"),
        ("versions", "versions.json"),
    ],
)
def test_a_counting_scenario_runs_end_to_end(env, record, tmp_path):
    done = _run(env, tmp_path)
    (found,) = [p for p in tmp_path.glob(f"*-{env}/{record}") if not p.parent.is_symlink()]
    run = json.loads(found.read_text())
    assert run["records"] and not [r for r in run["records"] if "error" in r], run["records"]
    assert (found.parent / "summary.md").read_text().startswith("## ")
    assert "raw_pytorch" in done.stdout or env == "versions"


def test_a_report_of_two_runs(tmp_path, runs):
    if len(runs) < 2:
        pytest.skip("needs two of the runs above")
    first, second = list(runs.values())[:2]
    out = tmp_path / "both"
    argv = [sys.executable, "-m", "common", "report", str(first), str(second), "--out", str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 runs side by side" in (out / "summary.md").read_text()
