"""`python -m common instructions`: its runs' command lines and its options' errors (the
valgrind runs themselves: tests/test_attribution.py on a stub, test_entry_points.py on raw
PyTorch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import task
from common.scenarios import attribution
from common.task import registry

ROOT = Path(__file__).resolve().parents[1]


def test_the_runs_train_exactly_n_steps_of_the_overhead_task(tmp_path):
    (variant,) = registry.select(["lightning"])
    command = attribution.probe_command("instructions", variant, 400, tmp_path, "linear", "py")
    value = dict(zip(command[4::2], command[5::2], strict=False))
    assert value["--suite"] == "lightning" and value["--model"] == "linear"
    assert value["--threads"] == "1" and value["--epochs"] == "1"
    assert int(value["--train-size"]) == 400 * int(value["--batch-size"])
    assert int(value["--batch-size"]) == task.OVERHEAD_BATCH_SIZE


def _errors(*argv: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "common", "instructions", *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    return done.stderr.strip().splitlines()[-1:]


def test_the_gates_options_say_in_one_line_what_is_wrong(tmp_path):
    assert _errors("--compare", "a", "b", "--factor", "0.9") == [
        "python -m common instructions: error: --factor must be above 1, got 0.9"
    ]
    assert _errors("--compare", "a", "b", "--steps", "3") == [
        "python -m common instructions: error: --compare counts nothing: --steps 3 does not go "
        "with it"
    ]
    assert _errors("--suite", "nope")[0].startswith(
        "python -m common instructions: error: unknown suite 'nope'"
    )
