"""Run by tests/test_ddp.py, in a process of its own or under a distributed launcher: one
training step of a suite with dropout off; rank 0 writes the weights before and after it.

    python -m tests.ddp_one_step VARIANT OUT.npz    one step of VARIANT (e.g. keras_ddp[jax])
    python -m tests.ddp_one_step --fail-rank N      rank N raises once the ranks have started
"""

from __future__ import annotations

import os
import sys

import numpy as np

from common import task
from common.measure.hooks import TrainingClock, TrainingHooks
from common.task import RunConfig, load_task_data, registry

# One global batch: the first 128 training images, one step, one thread per process.
ONE_STEP = RunConfig(epochs=1, train_size=task.BATCH_SIZE, test_size=100, threads=1)


def weights(trained) -> list[np.ndarray]:
    """A model's parameters, in order, whatever holds them."""
    if hasattr(trained, "get_weights"):  # Keras
        return [np.asarray(w) for w in trained.get_weights()]
    flax = sys.modules.get("flax")  # imported by a Flax suite, and only then
    if flax is not None and isinstance(trained, flax.nnx.Module):  # its Params, in path order
        params = flax.nnx.state(trained, flax.nnx.Param)
        return [np.asarray(p) for p in sys.modules["jax"].tree.leaves(params)]
    module = getattr(trained, "model", trained)  # fastai's Learner holds its model
    module = getattr(module, "module", module)  # DistributedDataParallel wraps it
    return [p.detach().cpu().numpy().copy() for p in module.parameters()]


def one_step(suite, run: RunConfig = ONE_STEP) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The weights before and after one step of `suite` (a module), dropout off: with dropout,
    each rank would draw its own masks, and the step could not equal a single process's."""
    task.DROPOUT = 0.0
    hooks = TrainingHooks(epochs=run.epochs, clock=TrainingClock())
    model = suite.build_model(run)
    before = weights(model)
    trained = suite.train(model, load_task_data(run), run, hooks)
    assert hooks.steps == 1, f"{hooks.steps} steps, expected one"
    return before, weights(trained)


def main(argv: list[str]) -> int:
    if argv[0] == "--fail-rank":
        if os.environ["RANK"] == argv[1]:
            raise RuntimeError(f"rank {argv[1]} fails on purpose")
        import time

        time.sleep(120)  # the others wait, as ranks in a collective would
        return 0
    name, out = argv
    (variant,) = registry.select([name], distributed=None)
    before, after = one_step(registry.load(variant).module)
    if os.environ.get("RANK", "0") == "0":
        arrays = {f"before_{i}": w for i, w in enumerate(before)}
        np.savez(out, **arrays, **{f"after_{i}": w for i, w in enumerate(after)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
