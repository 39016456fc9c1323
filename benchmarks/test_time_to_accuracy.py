"""Time to accuracy, in the manner of DAWNBench: train until test accuracy first reaches a target.

On demand only (it trains for minutes per suite):

    python -m common.compare --target-accuracy 0.99 --max-epochs 15

The schedule is the task's own, the same for every suite: constant-rate Adam (lr 1e-3), batch 128,
test accuracy checked after every epoch, at most --max-epochs epochs. The reported seconds are
training alone; the evaluations run after each epoch are reported beside them.
"""

from __future__ import annotations

import pytest

from common import runner
from common.task import RunConfig
from conftest import task_data_for


def test_time_to_accuracy(benchmark, suite, request, progress):
    target = request.config.getoption("--target-accuracy")
    if target is None:
        pytest.skip("on demand: pass --target-accuracy (e.g. 0.99) to run this scenario")
    run = RunConfig(
        epochs=request.config.getoption("--max-epochs"),
        train_size=request.config.getoption("--train-size"),
        mode=request.config.getoption("--mode"),
    )
    data, data_seconds = task_data_for(run)
    benchmark.group = f"time to {target:.1%} on {run.dataset}"
    record = runner.measure(
        suite,
        run,
        data,
        pedantic=benchmark.pedantic,
        log=progress,
        target_accuracy=target,
        data_seconds=data_seconds,
    )
    benchmark.extra_info.update(record)
