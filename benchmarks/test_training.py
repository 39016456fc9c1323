"""pytest-benchmark: every registered suite trains the task; the record lands in extra_info.

    pytest benchmarks --benchmark-only --benchmark-json results/bench.json
    pytest benchmarks --benchmark-only --suite raw_pytorch --epochs 1 --train-size 10000

Timing uses common.hooks.training_clock (set in pyproject's addopts), which stands still while a
suite evaluates inside fit, so the pedantic stats and `train_seconds` are training alone.
Keras backends are chosen at import: one process runs one backend. `python -m common.compare`
runs every variant in its own process and merges the JSON.
"""

from __future__ import annotations

import pytest

from common import runner
from common.task import RunConfig
from conftest import task_data_for


def bench_run(config: pytest.Config) -> RunConfig:
    return RunConfig(
        epochs=config.getoption("--epochs") or RunConfig.epochs,
        train_size=config.getoption("--train-size"),
        mode=config.getoption("--mode"),
    )


def test_training(benchmark, suite, request, progress):
    run = bench_run(request.config)
    if not suite.variant.supports(run.mode):
        pytest.skip(
            f"{suite.variant.id} has no mode {run.mode!r} (it has: "
            f"{', '.join(suite.variant.modes)})"
        )
    data, data_seconds = task_data_for(run)
    benchmark.group = f"train {run.dataset} x{run.epochs} epochs"
    record = runner.measure(
        suite,
        run,
        data,
        pedantic=benchmark.pedantic,
        rounds=request.config.getoption("--rounds"),
        log=progress,
        data_seconds=data_seconds,
    )
    benchmark.extra_info.update(record)
    assert record["roundtrip_identical"], "the reloaded checkpoint predicts differently"
