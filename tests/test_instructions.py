"""The instruction-count track's arithmetic and commands (the valgrind runs themselves take
minutes each: `python -m common instructions`, on demand)."""

from __future__ import annotations

import pytest

from common import task
from common.scenarios import instructions

CACHEGRIND = """==4242== Cachegrind, a cache and branch-prediction profiler
==4242== Command: python -m suites.raw_pytorch
==4242==
==4242== I   refs:      10,664,896,903
"""


def test_the_count_is_read_from_cachegrinds_summary():
    assert instructions.count_from(CACHEGRIND) == 10_664_896_903
    with pytest.raises(ValueError, match="no 'I refs' line"):
        instructions.count_from("==1== ERROR SUMMARY: 0 errors")


def test_one_step_is_the_difference_of_the_two_runs_over_n():
    # The issue's own figures: 50 and 150 steps of raw PyTorch's Linear(784, 10) step.
    assert instructions.instructions_per_step(10_664_896_903, 10_762_491_428, 100) == pytest.approx(
        975_945.25
    )


def test_the_runs_train_exactly_n_steps_of_the_overhead_task():
    command = instructions.command("lightning", 400)
    value = dict(zip(command[3::2], command[4::2], strict=False))
    assert value["--model"] == "linear" and value["--threads"] == "1"
    assert int(value["--train-size"]) == 400 * int(value["--batch-size"])
    assert int(value["--batch-size"]) == task.OVERHEAD_BATCH_SIZE
