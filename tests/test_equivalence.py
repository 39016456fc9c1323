"""The torch-family suites train the same model as raw PyTorch, step for step.

Same seed, same initial weights, same batch order, same dropout masks: the per-step training
losses must agree with the reference's to 5 decimals (Lightning's own parity test asks as much).
Keras computes with other kernels; its equivalence is shown by copying weights
(test_keras_equivalence.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from common import registry, task
from common.hooks import TrainingHooks
from common.task import RunConfig
from conftest import task_data_for

STEP_EQUIVALENT = ("lightning", "ignite", "fastai")
STEPS = 50
RUN = RunConfig(epochs=1, train_size=STEPS * task.BATCH_SIZE, test_size=1000)


def step_losses(variant: registry.Variant) -> list[float]:
    reason = variant.missing()
    if reason:
        pytest.skip(reason)
    suite = registry.load(variant).module
    data, _ = task_data_for(RUN)
    hooks = TrainingHooks(epochs=RUN.epochs, record_steps=True)
    suite.train(suite.build_model(RUN), data, RUN, hooks)
    return hooks.step_losses[:STEPS]


@pytest.fixture(scope="module")
def reference_losses() -> list[float]:
    (reference,) = registry.select([registry.REFERENCE])
    return step_losses(reference)


@pytest.mark.parametrize("name", STEP_EQUIVALENT)
def test_first_steps_match_raw_pytorch(name, reference_losses):
    (variant,) = registry.select([name])
    losses = step_losses(variant)
    assert len(losses) == STEPS == len(reference_losses)
    np.testing.assert_allclose(losses, reference_losses, rtol=0, atol=1e-5)


def test_reference_losses_depend_on_the_seed(reference_losses):
    """Guards the test above: different seeds must give different losses, else it proves nothing."""
    (reference,) = registry.select([registry.REFERENCE])
    suite = registry.load(reference).module
    run = RUN.with_(seed=RUN.seed + 1)
    data, _ = task_data_for(run)
    hooks = TrainingHooks(epochs=1, record_steps=True)
    suite.train(suite.build_model(run), data, run, hooks)
    assert np.abs(np.array(hooks.step_losses[:STEPS]) - reference_losses).max() > 1e-3
