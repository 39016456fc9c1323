"""The torch-family suites train the same model as raw PyTorch, step for step.

Same seed, same initial weights, same batch order, same dropout masks: the per-step training
losses must agree with the reference's to 5 decimals (Lightning's own parity test asks as much).
Keras computes with other kernels; its equivalence is shown by copying weights
(test_keras_equivalence.py).

What it takes for the frameworks to draw the same random numbers as raw PyTorch, kept here
rather than in the examples:
- Initial weights: the same layers built in the same order after the same torch.manual_seed
  (Lightning's seed_everything, Ignite's manual_seed and fastai's set_seed all call it, and draw
  nothing more from torch's generator).
- Batch order: the same BatchSampler over a RandomSampler with its own seeded generator. Ignite's
  Engine (not DeterministicEngine) leaves the loader's shuffle and the RNGs alone. Lightning stops
  an epoch at len(loader) where a for loop runs the sampler dry: when train_size is a multiple of
  the batch size, that skips RandomSampler's last (empty) randperm draw and from epoch 2 the
  shuffle differs. Full MNIST (60,000 = 468.75 batches) is not a multiple: identical. Fabric's
  setup_dataloaders, on one device, keeps the loader's sampler and runs it dry as a for loop does,
  only moving each batch to the device (a distributed strategy would wrap the sampler in a
  DistributedSamplerWrapper unless use_distributed_sampler=False); Fabric(), setup and backward
  draw nothing, and the Fabric suite seeds with torch.manual_seed, as raw PyTorch does.
- Dropout masks: evaluation must draw nothing from torch's global generator. A DataLoader without
  its own generator draws a base seed from it on every pass, so every evaluation loader gets a
  generator of its own; Lightning's sanity-check validation is off (it would not shift the RNG,
  which Lightning isolates, but it would call the validation hooks before the first step).
- Syncs: the suites hand the step's loss to the harness as a tensor (no .item() per step): Ignite's
  default output_transform and fastai's Recorder smoothing would each read it on the host.
"""

from __future__ import annotations

import numpy as np
import pytest

from common import task
from common.measure.hooks import TrainingHooks
from common.task import RunConfig, registry
from conftest import task_data_for

STEP_EQUIVALENT = ("lightning", "ignite", "fastai", "fabric")
STEPS = 50
RUN = RunConfig(epochs=1, train_size=STEPS * task.BATCH_SIZE, test_size=1000)


def recorded_losses(variant: registry.Variant, run: RunConfig) -> list[float]:
    """Every step's loss of the variant trained with the run's settings."""
    reason = variant.missing()
    if reason:
        pytest.skip(reason)
    suite = registry.load(variant).module
    data, _ = task_data_for(run)
    hooks = TrainingHooks(epochs=run.epochs, record_steps=True)
    suite.train(suite.build_model(run), data, run, hooks)
    return hooks.step_losses


def step_losses(variant: registry.Variant) -> list[float]:
    return recorded_losses(variant, RUN)[:STEPS]


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
    other_seed = recorded_losses(reference, RUN.with_(seed=RUN.seed + 1))[:STEPS]
    assert np.abs(np.array(other_seed) - reference_losses).max() > 1e-3


EPOCHS_RUN = RUN.with_(epochs=2, train_size=20 * task.BATCH_SIZE + 40, test_size=500)


def epoch_losses(variant: registry.Variant) -> list[float]:
    """Every step's loss over two epochs, an evaluation between them."""
    return recorded_losses(variant, EPOCHS_RUN)


@pytest.mark.parametrize("name", STEP_EQUIVALENT)
def test_the_second_epoch_matches_too(name):
    """Epoch 2 comes after an evaluation and a new shuffle: it matches only if neither the
    evaluation nor the framework's loop draws from torch's generators (see the module's notes)."""
    (reference,) = registry.select([registry.REFERENCE])
    (variant,) = registry.select([name])
    expected, got = epoch_losses(reference), epoch_losses(variant)
    assert len(got) == len(expected) == 2 * 21
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
