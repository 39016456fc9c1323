"""Runs one suite through the task and measures it, the same way for every suite.

Used by the benchmarks (with pytest-benchmark's pedantic timing), by the standalone entry point
of every suite, and by the scenarios. Nothing here knows which framework it is driving.
"""

from __future__ import annotations

import functools
import platform
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from common.measure import allocator, metrics
from common.measure.hooks import TrainingClock, TrainingHooks, check_trained
from common.measure.turns import Turns
from common.task import RunConfig, TaskData, code, records
from common.task.registry import LoadedSuite


def _time_once(target, setup, rounds):
    """pytest-benchmark's pedantic() signature, for runs outside pytest."""
    result = None
    for _ in range(rounds):
        args, kwargs = setup()
        result = target(*args, **kwargs)
    return result


WARM_UP_IMAGES = 512
# Steps per timed block, per model: about 0.3 s of the convnet here, and 0.05-0.5 s of the tiny
# linear model at its small batch. Short enough for many blocks per epoch, long enough that the
# block's clock readings and the turn handed over between blocks cost nothing measurable.
BLOCK_STEPS = {"convnet": 10, "linear": 500}


def _warm_up(module, run: RunConfig, data: TaskData) -> float:
    start = time.perf_counter()
    few = slice(0, WARM_UP_IMAGES)
    sample = replace(
        data,
        train_images=data.train_images[few],
        train_labels=data.train_labels[few],
        test_images=data.test_images[few],
        test_labels=data.test_labels[few],
    )
    warm = run.with_(epochs=1)
    module.train(
        module.build_model(warm), sample, warm, TrainingHooks(epochs=1, clock=TrainingClock())
    )
    return time.perf_counter() - start


@dataclass
class _Trained:
    """What the timed rounds leave: the last round's model and hooks, and every round's."""

    model: object
    hooks: TrainingHooks
    rounds: list[TrainingHooks]
    peak_rss_mb: float
    warm_up_seconds: float

    @property
    def train_seconds(self) -> float:
        return sum(h.train_seconds for h in self.rounds) / len(self.rounds)


def measure_variant(
    suite: LoadedSuite,
    run: RunConfig,
    data: TaskData,
    *,
    pedantic: Callable | None = None,
    rounds: int = 1,
    target_accuracy: float | None = None,
    log: Callable[[str], None] | None = None,
    data_seconds: float | None = None,
    warm_up: bool = False,
    block_steps: int | None = None,
    turns: Turns | None = None,
) -> records.TrainingRecord:
    """Train (timed), predict, save and reload; return the complete record of the run.

    pedantic: benchmark.pedantic from pytest-benchmark, or None to time without it. Each round
    trains a freshly built model; model building is setup, not training time.
    warm_up: first train a throwaway model on WARM_UP_IMAGES images, untimed, so that what a
    process does once (torch imports torch._dynamo with its first optimizer, oneDNN builds its
    kernels, TensorFlow starts its runtime) is not counted as training. It costs a second or
    two and is reported as warm_up_seconds; the benchmarks use it, quick tests don't.
    block_steps: time training in blocks of this many steps (default: BLOCK_STEPS of the model).
    turns: in an interleaved comparison, the process's turns: it waits for its first turn
    before training, and for the next one after every block (common.measure.turns).
    """
    module, variant = suite.module, suite.variant
    variant.check(run)
    module.configure(run)
    memory = allocator.apply(run.allocator)  # before the warm-up: it grows the heap once
    block_steps = block_steps or BLOCK_STEPS[run.model]
    hooks = functools.partial(
        TrainingHooks,
        epochs=run.epochs,
        target_accuracy=target_accuracy,
        log=log,
        block_steps=block_steps,
        turns=turns,
    )
    trained = _train(suite, run, data, hooks, turns, pedantic or _time_once, rounds, warm_up)
    evaluation = _evaluate_and_reload(suite, trained.model, run, data)
    check_trained(evaluation["test_accuracy"], trained.hooks.steps)
    record: records.TrainingRecord = {
        "kind": "training-record",
        **_identity(suite, run, memory),
        **_training(trained, data),
        **evaluation,
        "import_seconds": suite.import_seconds,
        "data_seconds": data_seconds,
        "block_steps": block_steps,
        "interleaved": turns is not None,
        **code.count_file_lines(variant.path),
        "python": platform.python_version(),
    }
    if target_accuracy is not None:
        record.update(time_to_accuracy(trained.hooks.history, target_accuracy, run.epochs))
    return record


def _train(suite, run, data, hooks, turns, timer, rounds: int, warm_up: bool) -> _Trained:
    """The timed rounds, each on a freshly built model (building it is setup, not training)."""
    module = suite.module
    rounds_hooks: list[TrainingHooks] = []

    def setup():
        model = module.build_model(run)
        if turns is not None and turns.taken == 0:
            turns.ready()  # set up; training starts on the driver's first go
        rounds_hooks.append(hooks())
        return (model, data, run, rounds_hooks[-1]), {}

    warm_up_seconds = _warm_up(module, run, data) if warm_up else 0.0
    metrics.reset_peak_rss()
    model = timer(module.train, setup=setup, rounds=rounds)
    peak = metrics.peak_rss_mb()
    return _Trained(model, rounds_hooks[-1], rounds_hooks, peak, warm_up_seconds)


def _identity(suite: LoadedSuite, run: RunConfig, memory: dict) -> records.RunIdentity:
    """Which variant ran, on what, with which settings."""
    variant = suite.variant
    return {
        "suite": variant.suite,
        "variant": variant.id,
        "framework": variant.framework,
        "framework_version": variant.framework_version(),
        "mode": run.mode if run.mode != "default" else (variant.modes or ["default"])[0],
        "model": run.model,
        "batch_size": run.batch_size,
        "switch": run.switch,
        "seed": run.seed,
        "init": run.init,
        "allocator": memory,
        "threads": run.threads,
        "dataset": run.dataset,
    }


def _training(trained: _Trained, data: TaskData) -> records.TrainingFigures:
    """What the timed training did: its epochs, blocks, seconds and memory."""
    epochs_run = len(trained.hooks.history)
    return {
        "train_size": data.train_size,
        "test_size": len(data.test_labels),
        "epochs": epochs_run,
        "rounds": len(trained.rounds),
        "epoch_history": trained.hooks.history,
        "train_seconds": trained.train_seconds,
        "eval_seconds": trained.hooks.eval_seconds,
        "images_per_second": data.train_size * epochs_run / trained.train_seconds,
        "peak_rss_mb": trained.peak_rss_mb,
        "warm_up_seconds": trained.warm_up_seconds,
        "blocks": trained.hooks.blocks,
    }


def _evaluate_and_reload(
    suite: LoadedSuite, model, run: RunConfig, data: TaskData
) -> records.Evaluation:
    """Test accuracy, then a save and load whose predictions must match the trained model's."""
    module = suite.module
    start = time.perf_counter()
    predictions = module.predict(model, data.test_images)
    predict_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        checkpoint = module.save(model, Path(folder) / "convnet")
        reloaded = suite.load_checkpoint(checkpoint, run)
        checkpoint_seconds = time.perf_counter() - start
        checkpoint_bytes = checkpoint.stat().st_size
        start = time.perf_counter()
        roundtrip_identical = bool(
            (module.predict(reloaded, data.test_images) == predictions).all()
        )
        predict_seconds += time.perf_counter() - start
    description = module.describe(model)
    return {
        "backend": description["backend"],
        "device": description["device"],
        "parameters": description["parameters"],
        "test_accuracy": metrics.accuracy(predictions, data.test_labels),
        "predict_seconds": predict_seconds,  # both predictions: the trained and reloaded model
        "predict_images_per_second": 2 * len(predictions) / predict_seconds,
        "checkpoint_bytes": checkpoint_bytes,
        "checkpoint_seconds": checkpoint_seconds,  # save and load
        "roundtrip_identical": roundtrip_identical,
    }


def time_to_accuracy(
    history: Sequence[Mapping], target: float, epochs_cap: int
) -> records.TimeToAccuracy:
    """DAWNBench-style result: training seconds until the first epoch whose test accuracy reaches
    the target (evaluation time reported beside it, not inside), or that the cap was hit."""
    for entry in history:
        if entry["test_accuracy"] >= target:
            done = history[: entry["epoch"]]
            return {
                "target_accuracy": target,
                "reached": True,
                "epoch_reached": entry["epoch"],
                "epochs_cap": epochs_cap,
                "seconds_to_target": sum(h["train_seconds"] for h in done),
                "eval_seconds_to_target": sum(h["eval_seconds"] for h in done),
            }
    return {
        "target_accuracy": target,
        "reached": False,
        "epoch_reached": None,
        "epochs_cap": epochs_cap,
        "seconds_to_target": None,
        "eval_seconds_to_target": sum(h["eval_seconds"] for h in history),
    }
