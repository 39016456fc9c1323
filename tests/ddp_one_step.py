"""Run by tests/test_ddp.py under a distributed launcher: one training step of a suite with
dropout off, whose weights rank 0 writes to an .npz file.

    python -m tests.ddp_one_step SUITE OUT.npz    one step of SUITE
    python -m tests.ddp_one_step --fail-rank N    rank N raises once the ranks have started
"""

from __future__ import annotations

import os
import sys

import numpy as np

from common import registry, task
from common.hooks import TrainingClock, TrainingHooks
from common.task import RunConfig, load_task_data

# One global batch: the first 128 training images, one step, one thread per process.
ONE_STEP = RunConfig(epochs=1, train_size=task.BATCH_SIZE, test_size=100, threads=1)


def weights(trained) -> list[np.ndarray]:
    """A trained torch-family model's parameters, in order, whatever holds them."""
    module = getattr(trained, "model", trained)  # fastai's Learner holds its model
    module = getattr(module, "module", module)  # DistributedDataParallel wraps it
    return [p.detach().cpu().numpy().copy() for p in module.parameters()]


def one_step(suite, run: RunConfig = ONE_STEP) -> list[np.ndarray]:
    """The weights after one step of `suite` (a module), dropout off: with dropout, each rank
    would draw its own masks, and the step could not equal a single process's."""
    task.DROPOUT = 0.0
    hooks = TrainingHooks(epochs=run.epochs, clock=TrainingClock())
    trained = suite.train(suite.build_model(run), load_task_data(run), run, hooks)
    assert hooks.steps == 1, f"{hooks.steps} steps, expected one"
    return weights(trained)


def main(argv: list[str]) -> int:
    if argv[0] == "--fail-rank":
        if os.environ["RANK"] == argv[1]:
            raise RuntimeError(f"rank {argv[1]} fails on purpose")
        import time

        time.sleep(120)  # the others wait, as ranks in a collective would
        return 0
    name, out = argv
    (variant,) = registry.select([name], distributed=True)
    result = one_step(registry.load(variant).module)
    if os.environ.get("RANK", "0") == "0":
        np.savez(out, *result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
