"""pytest-benchmark: every registered suite trains the task; the record lands in extra_info.

    pytest benchmarks --benchmark-only --benchmark-json results/bench.json
    pytest benchmarks --benchmark-only --suite raw_pytorch --epochs 1 --train-size 10000

Timing uses common.measure.hooks.training_clock (pyproject's addopts), which stands still while a
suite evaluates inside fit, so the pedantic stats and `train_seconds` are training alone.
Keras backends are chosen at import: one process runs one backend. `python -m common compare`
runs every variant in its own process and merges the JSON.
"""

from __future__ import annotations

from conftest import run_config


def test_training(measure, request):
    run = run_config(request.config)
    record = measure(run, group=f"train {run.dataset} x{run.epochs} epochs")
    assert record["roundtrip_identical"], "the reloaded checkpoint predicts differently"
