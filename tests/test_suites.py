"""Every suite, on every installed backend, honours the contract and learns the task."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common import task
from common.measure import runner
from common.measure.hooks import TrainingDiverged, TrainingHooks, check_trained
from common.task import RunConfig, paths, registry
from conftest import task_data_for

ROOT = Path(__file__).resolve().parents[1]

# One epoch on the first 4,000 training images. The issue asked for 2,000 images; with the task's
# batch 128 and lr 1e-3 that is only 16 Adam steps, and raw PyTorch then scores 74-83% depending
# on the seed (74% at seed 0), so 80% would be luck. 4,000 images (32 steps) scores 87-89%.
SMOKE = RunConfig(epochs=1, train_size=4000, test_size=2000)


@pytest.fixture
def smoke_record(suite):
    data, _ = task_data_for(SMOKE)
    return runner.measure_variant(suite, SMOKE, data)


def test_model_has_the_task_parameter_count(smoke_record):
    assert smoke_record["parameters"] == task.PARAMETER_COUNT


def test_one_epoch_on_a_subset_learns(smoke_record):
    assert smoke_record["test_accuracy"] > 0.80
    (epoch,) = smoke_record["epoch_history"]
    assert epoch["epoch"] == 1 and 0 < epoch["train_loss"] < 2.3  # below chance's ln(10)
    assert epoch["test_accuracy"] == pytest.approx(smoke_record["test_accuracy"])


def test_save_then_load_predicts_identically(smoke_record):
    assert smoke_record["roundtrip_identical"]
    assert smoke_record["checkpoint_bytes"] > task.PARAMETER_COUNT * 4  # float32 weights at least


def test_training_stops_when_the_target_is_reached(suite):
    run = SMOKE.with_(epochs=3, train_size=1000, test_size=500)
    data, _ = task_data_for(run)
    hooks = TrainingHooks(epochs=run.epochs, target_accuracy=0.0)
    suite.module.train(suite.module.build_model(run), data, run, hooks)
    assert [h["epoch"] for h in hooks.history] == [1]


def test_runs_on_its_own_from_the_command_line(variant, suite):
    env = {**os.environ, **variant.environment()}
    args = ["--epochs", "1", "--train-size", "512", "--test-size", "500"]
    done = subprocess.run(
        [sys.executable, "-m", variant.module_name, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "epoch 1/1" in done.stdout and "test accuracy" in done.stdout


def test_command_line_rejects_a_bad_setting_in_one_line(variant, suite):
    env = {**os.environ, **variant.environment()}
    done = subprocess.run(
        [sys.executable, "-m", variant.module_name, "--epochs", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.endswith("epochs must be a whole number >= 1, got 0")
    assert "Traceback" not in done.stderr


def test_predict_returns_class_ids_for_every_image(suite):
    run = SMOKE.with_(train_size=256, test_size=300)
    data, _ = task_data_for(run)
    trained = suite.module.train(suite.module.build_model(run), data, run, TrainingHooks(epochs=1))
    predictions = np.asarray(suite.module.predict(trained, data.test_images))
    assert predictions.shape == (300,)
    assert np.issubdtype(predictions.dtype, np.integer)
    assert predictions.min() >= 0 and predictions.max() < task.NUM_CLASSES


def test_the_overhead_scenarios_model_and_switches_train(variant, suite):
    """--model linear, as written and with each of the suite's switches (the framework's progress
    bar, logger or barebones mode): an epoch reported, the tiny model, a checkpoint that reloads."""
    run = SMOKE.with_(model="linear", train_size=512, test_size=500)
    data, _ = task_data_for(run)
    for switch in ("default", *variant.switches):
        record = runner.measure_variant(suite, run.with_(switch=switch), data)
        assert record["switch"] == switch and len(record["epoch_history"]) == 1
        assert np.isfinite(record["epoch_history"][0]["train_loss"]), switch
        assert record["parameters"] == task.IMAGE_SIZE**2 * task.NUM_CLASSES + task.NUM_CLASSES
        assert record["roundtrip_identical"], switch


@pytest.mark.parametrize(
    ("name", "broken", "fix"),
    [  # Keras raises at import when KERAS_BACKEND names no backend it knows
        ("keras", {"KERAS_BACKEND": "mxnet"}, "set KERAS_BACKEND to one of tensorflow, jax, torch"),
        ("ignite", {"PYTHONPATH": "{broken}"}, "install it with: pip install -e '.[ignite]'"),
    ],
)
def test_a_framework_that_fails_to_import_is_one_line_with_the_fix(tmp_path, name, broken, fix):
    package = tmp_path / "ignite"  # a broken install that shadows the real one
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('a broken install')\n")
    done = subprocess.run(
        [sys.executable, "-m", f"suites.{name}", "--epochs", "1"],
        cwd=ROOT,
        env={**os.environ, **{k: v.format(broken=tmp_path) for k, v in broken.items()}},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"python -m suites.{name}: error: cannot import ")
    assert line.endswith(fix) and "Traceback" not in done.stderr


def test_more_images_than_the_dataset_has_is_a_setting_error():
    run = SMOKE.with_(train_size=100_000)
    with pytest.raises(task.SettingError, match="train_size 100,000 is more than the 60,000"):
        task.prepare(task_data_for(SMOKE)[0].dataset, run)


def test_a_device_the_framework_does_not_see_is_one_setting_error(suite):
    run = SMOKE.with_(train_size=256, test_size=100, device="cuda:7")
    data, _ = task_data_for(run)
    with pytest.raises(task.SettingError, match=r"^device 'cuda:7': "):
        runner.measure_variant(suite, run, data)


def test_a_model_at_chance_after_enough_steps_has_not_trained():
    with pytest.raises(TrainingDiverged, match=r"test accuracy 9\.00% after 7,500 steps is chance"):
        check_trained(0.09, 7500)  # Ignite at lr 1e6: loss 2.65e22, no NaN
    check_trained(0.09, task.UNTRAINED_STEPS - 1)  # one start-up step: too few to judge
    check_trained(task.UNTRAINED_BELOW, 7500)


def test_a_corrupt_checkpoint_is_one_line_naming_the_file(suite, tmp_path):
    run = SMOKE.with_(train_size=task.BATCH_SIZE, test_size=100)
    data, _ = task_data_for(run)
    trained = suite.module.train(suite.module.build_model(run), data, run, TrainingHooks(epochs=1))
    good = suite.module.save(trained, tmp_path / "good")
    whole = good.read_bytes()
    for name, content in (
        ("truncated", whole[: len(whole) // 2]),
        ("random", bytes(range(256)) * 64),
        ("empty", b""),
    ):
        bad = (tmp_path / name).with_suffix(good.suffix)
        bad.write_bytes(content)
        with pytest.raises(registry.CheckpointError) as failed:
            suite.load_checkpoint(bad, run)
        message = str(failed.value)
        assert message.startswith(f"{bad}: not a valid {suite.variant.framework} checkpoint (")
        assert "\n" not in message


def test_no_suite_loads_a_checkpoint_the_unsafe_way():
    """Loading stays safe: torch.load and Lightning's load_from_checkpoint with weights_only, never
    weights_only=False; Keras' load_model never with safe_mode=False."""
    unsafe = []
    for path in sorted(paths.SUITES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and "save" not in ast.unparse(node.func):
                for keyword in node.keywords:
                    is_false = (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                    )
                    if keyword.arg in ("weights_only", "safe_mode") and is_false:
                        unsafe.append(f"{path.name}:{node.lineno}")
    assert unsafe == []
