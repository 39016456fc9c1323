"""MNIST convnet in Flax NNX with Optax, data-parallel: suites/flax.py over a jax.sharding mesh.

In the manner of google/flax's examples/nnx_toy_examples/04_data_parallel_with_jit.py: the model's
and the optimizer's state replicated on every device, each batch split across them, and the same
nnx.jit step, which XLA compiles into one program for all the devices (with the all-reduce of
the gradients in it). One process drives all the devices; on a CPU, XLA_FLAGS makes XLA present
the host as several. Diff it against flax.py to see what going distributed changes.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python -m suites.flax_ddp --epochs 2
"""

# --- imports -----------------------------------------------------------------------------------
import os
from functools import partial
from pathlib import Path

import jax
import numpy as np
import optax
from flax import nnx, serialization
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from common import task
from common.measure.hooks import TrainingHooks
from common.task import RunConfig, SettingError, TaskData


# --- model -------------------------------------------------------------------------------------
class CNN(nnx.Module):
    """Layers are created, with their weights, in __init__; __call__ is the forward pass."""

    def __init__(self, *, rngs: nnx.Rngs):
        kernel = (task.KERNEL_SIZE, task.KERNEL_SIZE)
        # padding="VALID" (no padding): torch's and Keras' default; Flax's is "SAME".
        self.conv1 = nnx.Conv(1, task.CONV1_CHANNELS, kernel, padding="VALID", rngs=rngs)
        self.conv2 = nnx.Conv(
            task.CONV1_CHANNELS, task.CONV2_CHANNELS, kernel, padding="VALID", rngs=rngs
        )
        # Pooling has no weights: a function, not a layer. Its strides default to 1, not to the
        # window as in torch and Keras.
        pool = (task.POOL_SIZE, task.POOL_SIZE)
        self.max_pool = partial(nnx.max_pool, window_shape=pool, strides=pool)
        # Dropout keeps its own stream of keys, forked from rngs: each call draws a new mask.
        self.dropout = nnx.Dropout(task.DROPOUT, rngs=rngs)
        self.linear = nnx.Linear(task.FLAT_FEATURES, task.NUM_CLASSES, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.max_pool(nnx.relu(self.conv1(x)))
        x = self.max_pool(nnx.relu(self.conv2(x)))
        x = x.reshape(x.shape[0], -1)  # flatten, in (H, W, C) order
        return self.linear(self.dropout(x))  # logits: the loss applies the softmax


class LinearClassifier(nnx.Module):
    """--model linear: its kernels cost next to nothing, so a step times the framework alone."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.linear = nnx.Linear(task.IMAGE_SIZE**2, task.NUM_CLASSES, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.linear(x.reshape(x.shape[0], -1))


MODELS = {"convnet": CNN, "linear": LinearClassifier}


def build_model(run: RunConfig) -> nnx.Module:
    # JAX has no global random state: every random number comes from an explicit key. nnx.Rngs
    # derives one from the seed's for each weight, and forks Dropout a stream of its own.
    # Flax's default init (lecun_normal kernels, zero biases), not torch's (kaiming_uniform with
    # a=sqrt(5), uniform biases): the task leaves each framework its own.
    model = MODELS[run.model](rngs=nnx.Rngs(run.seed))
    replicate(model)  # the same initial weights on every device
    return model


def shardings() -> tuple[NamedSharding, NamedSharding]:
    """A mesh of every device along one axis, "batch": the state's sharding (replicated: every
    device holds all of it) and the batches' (split along their first axis, one slice a device)."""
    # Auto: XLA carries these shardings on to everything computed from the arrays, and adds the
    # communication itself. (Explicit, JAX 0.10's default, makes a sharding part of each array's
    # type, and wants the computations inside `with jax.set_mesh(mesh)`.)
    mesh = jax.make_mesh((jax.device_count(),), ("batch",), axis_types=(AxisType.Auto,))
    return NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))


def replicate(*nodes: nnx.Pytree) -> None:
    """Copies the state of models, optimizers and metrics to every device, in place."""
    replicated, _ = shardings()
    nnx.update(nodes, jax.device_put(nnx.state(nodes), replicated))


# --- data --------------------------------------------------------------------------------------
def to_inputs(images: np.ndarray) -> np.ndarray:
    # NHWC: Flax's Conv wants the channel axis last. A view of the array, nothing is copied;
    # split() sends each batch to the devices.
    return images[..., None]


def split(*arrays: np.ndarray) -> list[jax.Array]:
    """A batch's arrays, each device given its slice. A batch that the devices cannot split evenly
    (the last one of an epoch, say) is replicated instead: every device computes all of it."""
    replicated, sharded = shardings()
    even = len(arrays[0]) % jax.device_count() == 0
    return jax.device_put(arrays, sharded if even else replicated)


def batches(data: TaskData, size: int, rng: np.random.Generator):
    """The training set in batches of `size`, in a new random order every call (every epoch).
    JAX has no data loader of its own: NumPy indexing cuts the batches (the Flax tutorial uses
    tf.data; Grain streams data that does not fit in memory)."""
    order = rng.permutation(data.train_size)
    for start in range(0, len(order), size):
        chosen = order[start : start + size]
        yield split(to_inputs(data.train_images[chosen]), data.train_labels[chosen])


# --- training ----------------------------------------------------------------------------------
def loss_fn(model: nnx.Module, images: jax.Array, labels: jax.Array):
    losses = optax.softmax_cross_entropy_with_integer_labels(model(images), labels)
    return losses.mean(), losses


@nnx.jit
def train_step(model, optimizer: nnx.Optimizer, metric: nnx.metrics.Average, images, labels):
    """One step, traced once per batch shape and compiled by XLA into one computation. The
    model, optimizer and metric are updated in place: nnx.jit carries their state in and out."""
    grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)  # gradients of the model's nnx.Params
    (loss, losses), grads = grad_fn(model, images, labels)
    optimizer.update(model, grads)
    metric.update(loss=losses)  # every image's loss: the epoch's mean is over images
    return loss


def make_optimizer(model: nnx.Module) -> nnx.Optimizer:
    adam = optax.adam(
        task.LEARNING_RATE, b1=task.ADAM_BETAS[0], b2=task.ADAM_BETAS[1], eps=task.ADAM_EPS
    )
    # torch's Adam weight_decay adds decay * weights to the gradient before Adam: in Optax, a
    # transformation chained in front (optax.adamw is the decoupled decay of torch's AdamW).
    if task.WEIGHT_DECAY:
        adam = optax.chain(optax.add_decayed_weights(task.WEIGHT_DECAY), adam)
    return nnx.Optimizer(model, adam, wrt=nnx.Param)  # Adam's moments for the Params alone


def train(model: nnx.Module, data: TaskData, run: RunConfig, hooks: TrainingHooks) -> nnx.Module:
    optimizer = make_optimizer(model)
    metric = nnx.metrics.Average("loss")
    replicate(optimizer, metric)  # Adam's moments and step count, the loss's running sum
    rng = np.random.default_rng(run.seed)  # the shuffle's
    # "eager": JAX's own switch runs every jitted function op by op, in Python, as written.
    with jax.disable_jit(run.mode == "eager"):
        for epoch in range(1, run.epochs + 1):
            model.train()  # Dropout on
            for images, labels in batches(data, run.batch_size, rng):
                loss = train_step(model, optimizer, metric, images, labels)
                # JAX dispatches asynchronously: loss is a device array, not yet computed.
                hooks.batch_end(loss)
            hooks.validation_start()
            accuracy = float(np.mean(predict(model, data.test_images) == data.test_labels))
            hooks.validation_end()
            train_loss = float(metric.compute())
            metric.reset()
            if hooks.epoch_end(epoch, train_loss, accuracy):
                break
    return model


# --- evaluation --------------------------------------------------------------------------------
@nnx.jit
def eval_step(model: nnx.Module, images: jax.Array) -> jax.Array:
    return model(images).argmax(axis=1)


def predict(model: nnx.Module, images: np.ndarray) -> np.ndarray:
    model.eval()  # Dropout off
    size = task.EVAL_BATCH_SIZE
    inputs = to_inputs(images)
    return np.concatenate(
        [
            np.asarray(eval_step(model, *split(inputs[i : i + size])))
            for i in range(0, len(images), size)
        ]
    )


# --- save / load -------------------------------------------------------------------------------
def save(model: nnx.Module, path: Path) -> Path:
    # The Params as a nested dict of arrays, in msgpack: Flax's one-file format, where Orbax (the
    # checkpointer Flax's guide uses) would write a folder. It holds arrays only, no Python
    # objects, so reading it runs no code.
    path = Path(path).with_suffix(".msgpack")
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    path.write_bytes(serialization.msgpack_serialize(params))
    return path


def load(path: Path, run: RunConfig) -> nnx.Module:
    # Rebuild the model, then overwrite its Params with the saved ones (a name it does not have
    # raises).
    model = MODELS[run.model](rngs=nnx.Rngs(run.seed))
    params = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(params, serialization.msgpack_restore(Path(path).read_bytes()))
    nnx.update(model, params)
    replicate(model)
    return model


# --- harness: what exists only for the comparison ------------------------------------------------
SUITE = {
    "framework": "flax",
    "imports": ["flax", "optax"],
    "extra": "flax",
    "modes": ["xla", "eager"],
    "distributed": {"of": "flax", "launcher": "xla-devices"},
}


def configure(run: RunConfig) -> None:
    """The process's settings, before any model: the run's CPU threads, a device JAX sees."""
    # JAX has no API for it: XLA's CPU client sizes its pool from PJRT_NPROC (default: the usable
    # cores) once, when it starts at JAX's first computation, so this counts only if no JAX array
    # existed before in this process; later calls cannot change it.
    os.environ["PJRT_NPROC"] = str(run.threads)
    if run.device == "auto":  # JAX's default: its first GPU when it has one, else the CPU
        return
    kind, _, index = run.device.partition(":")
    try:
        devices = jax.devices("gpu" if kind == "cuda" else "cpu")
    except RuntimeError:  # no such backend: jax[cpu] has none for GPUs
        devices = []
    if int(index or 0) >= len(devices):
        raise SettingError(f"device {run.device!r}: JAX sees {len(devices)} GPUs")
    # Arrays not placed explicitly (weights, batches) and the computations on them go there.
    jax.config.update("jax_default_device", devices[int(index or 0)])


def describe(model: nnx.Module) -> dict:
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    devices = params[0].sharding.device_set
    return {
        # Every device holds a replica: their kind and count, e.g. "cpu x2".
        "device": f"{next(iter(devices)).platform} x{len(devices)}",
        "backend": "jax",
        "parameters": sum(p.size for p in params),
    }


# --init torch belongs to the comparison, not the example: the contract's build_model is the
# example's, started from raw PyTorch's initial weights when asked.
example_build_model = build_model


def build_model(run: RunConfig) -> nnx.Module:
    """--init torch: raw PyTorch's initial weights for the same seed, so that what is left of a
    gap to raw PyTorch is the framework (its kernels, XLA's), not the initialization."""
    model = example_build_model(run)
    if run.init == "torch":
        from suites import raw_pytorch

        start_from_torch(model, raw_pytorch.build_model(run.with_(device="cpu", init="framework")))
    return model


def start_from_torch(model: nnx.Module, torch_model, permute_flatten: bool = True) -> None:
    """A torch nn.Sequential's weights into the same layers in Flax, in Flax's NHWC layouts
    (common/task/weights.py; tests/test_init_torch.py checks the two then compute one function)."""
    from common.task import weights

    arrays = weights.channels_last(
        [p.detach().cpu().numpy() for p in torch_model.parameters()], permute_flatten
    )
    # The layers with weights, in the order __init__ created them: torch's Sequential's order.
    for layer in vars(model).values():
        if isinstance(layer, nnx.Conv | nnx.Linear):
            layer.kernel[...] = arrays.pop(0)
            layer.bias[...] = arrays.pop(0)
    assert not arrays, f"{len(arrays)} of torch's arrays have no layer here"


def logits_of(model: nnx.Module, images: np.ndarray) -> np.ndarray:
    """The model's outputs for float32 (N, 28, 28) images (tests/test_init_torch.py)."""
    model.eval()
    return np.asarray(model(to_inputs(images)))


if __name__ == "__main__":
    from common.scenarios.standalone import main

    raise SystemExit(main(__spec__.name))
