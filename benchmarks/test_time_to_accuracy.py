"""Time to accuracy, in the manner of DAWNBench: train until test accuracy first reaches a target.

On demand only (it trains for minutes per suite):

    python -m common compare --target-accuracy 0.99 --max-epochs 15

The schedule is the task's own, the same for every suite: constant-rate Adam (lr 1e-3), batch 128,
test accuracy checked after every epoch, at most --max-epochs epochs. The reported seconds are
training alone; the evaluations run after each epoch are reported beside them.
"""

from __future__ import annotations

import pytest

from conftest import run_config


def test_time_to_accuracy(measure, request):
    target = request.config.getoption("--target-accuracy")
    if target is None:
        pytest.skip("on demand: pass --target-accuracy (e.g. 0.99) to run this scenario")
    run = run_config(request.config).with_(epochs=request.config.getoption("--max-epochs"))
    measure(run, group=f"time to {target:.1%} on {run.dataset}", target_accuracy=target)
