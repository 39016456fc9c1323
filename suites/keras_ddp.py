"""MNIST convnet in Keras 3, data-parallel: suites/keras.py with keras.distribution.DataParallel.

Keras' distribution API replicates the model on every device and splits each batch of fit()
across them; it runs on the JAX backend only. One process drives all the devices; on a CPU,
XLA_FLAGS makes XLA present the host as several. Diff it against keras.py to see what going
distributed changes.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax \
        python -m suites.keras_ddp --epochs 2
"""

# --- imports -----------------------------------------------------------------------------------
# Keras reads KERAS_BACKEND once, at import: one backend per process.
import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from common import task
from common.measure.hooks import TrainingHooks
from common.task import RunConfig, SettingError, TaskData


# --- model -------------------------------------------------------------------------------------
def convnet() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input((task.IMAGE_SIZE, task.IMAGE_SIZE, 1)),
            layers.Conv2D(task.CONV1_CHANNELS, task.KERNEL_SIZE, activation="relu"),
            layers.MaxPooling2D(task.POOL_SIZE),
            layers.Conv2D(task.CONV2_CHANNELS, task.KERNEL_SIZE, activation="relu"),
            layers.MaxPooling2D(task.POOL_SIZE),
            layers.Flatten(),
            layers.Dropout(task.DROPOUT),
            layers.Dense(task.NUM_CLASSES),  # logits: the loss applies the softmax
        ]
    )


def linear() -> keras.Sequential:
    """--model linear: its kernels cost next to nothing, so a step times the framework alone."""
    return keras.Sequential(
        [
            keras.Input((task.IMAGE_SIZE, task.IMAGE_SIZE, 1)),
            layers.Flatten(),
            layers.Dense(task.NUM_CLASSES),
        ]
    )


def build_model(run: RunConfig) -> keras.Model:
    # Seeds Python, NumPy, the backend and Keras' own SeedGenerator (init, dropout); fit's
    # shuffle draws from them too.
    keras.utils.set_random_seed(run.seed)
    # Every device holds the whole model; each gets an equal slice of every batch, and the
    # gradients are averaged across them. Set before the model is built, so its weights are
    # created replicated. fit's batch_size stays the global batch (Keras scales nothing).
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    # Keras' default init (glorot_uniform kernels, zero biases), not torch's (kaiming_uniform
    # with a=sqrt(5), uniform biases): the task leaves each framework its own.
    return convnet() if run.model == "convnet" else linear()


# --- data --------------------------------------------------------------------------------------
def to_inputs(images: np.ndarray) -> np.ndarray:
    # NHWC: Keras wants the channel axis last. A view of the array, nothing is copied; fit()
    # batches and shuffles NumPy arrays itself.
    return images[..., None]


# --- training ----------------------------------------------------------------------------------
def compile_options(mode: str) -> dict:
    """model.compile() arguments for run.mode. Keras' own default, jit_compile="auto", means XLA
    on JAX and on TensorFlow with a GPU, tf.function without XLA on a CPU-only TensorFlow, and
    eager execution on torch."""
    if mode == "eager":
        return {"run_eagerly": True, "jit_compile": False}
    if mode == "xla":
        # On torch, jit_compile=True means torch.compile (TorchDynamo + Inductor), not XLA.
        return {"run_eagerly": False, "jit_compile": True}
    # "graph": the train step traced into a tf.function graph, without XLA. JAX's only graph is
    # jax.jit, which is XLA (with jit_compile=False Keras would run JAX op by op), so "graph"
    # is "xla" there. torch has no graph short of torch.compile: Keras runs it eagerly.
    return {"run_eagerly": False, "jit_compile": keras.backend.backend() == "jax"}


class ReportToHooks(keras.callbacks.Callback):
    """Keras' callback events, forwarded to the harness."""

    def __init__(self, hooks: TrainingHooks) -> None:
        super().__init__()
        self.hooks = hooks

    def on_train_batch_end(self, batch, logs=None):
        # Overriding it makes Keras copy the logs to Python floats after every step (a sync that
        # fit() with verbose=0 and no per-batch callback skips, and that its progress bar pays).
        # The harness needs it to time blocks of steps; the overhead scenario measures its cost.
        self.hooks.batch_end(logs["loss"])

    def on_test_begin(self, logs=None):
        # fit() runs its validation through evaluate(), which fires these with fit's callbacks.
        self.hooks.validation_start()

    def on_test_end(self, logs=None):
        self.hooks.validation_end()

    def on_epoch_end(self, epoch, logs=None):
        # Keras counts epochs from 0. logs["loss"] is the epoch's mean loss weighted by batch
        # size, like raw_pytorch's; val_accuracy is measured on validation_data.
        if self.hooks.epoch_end(epoch + 1, logs["loss"], logs["val_accuracy"]):
            self.model.stop_training = True


def train(model: keras.Model, data: TaskData, run: RunConfig, hooks: TrainingHooks) -> keras.Model:
    model.compile(
        # The task's Adam: Keras' default epsilon is 1e-7 (the task's is torch's 1e-8), and its
        # weight_decay is decoupled (AdamW's): None when the task has none.
        optimizer=keras.optimizers.Adam(
            learning_rate=task.LEARNING_RATE,
            beta_1=task.ADAM_BETAS[0],
            beta_2=task.ADAM_BETAS[1],
            epsilon=task.ADAM_EPS,
            weight_decay=task.WEIGHT_DECAY or None,
        ),
        # On logits: a linear last layer, rather than Keras' usual softmax layer.
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        **compile_options(run.mode),
    )
    model.fit(
        to_inputs(data.train_images),
        data.train_labels,
        batch_size=run.batch_size,
        epochs=run.epochs,
        validation_data=(to_inputs(data.test_images), data.test_labels),
        validation_batch_size=task.EVAL_BATCH_SIZE,
        shuffle=True,
        # No progress bar: the harness prints each epoch (the overhead scenario measures it).
        verbose=1 if run.switch == "progress_bar" else 0,
        callbacks=[ReportToHooks(hooks)],
    )
    return model


# --- evaluation --------------------------------------------------------------------------------
def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    # predict() runs the layers in inference mode (Dropout off) and returns NumPy logits.
    logits = model.predict(to_inputs(images), batch_size=task.EVAL_BATCH_SIZE, verbose=0)
    return logits.argmax(-1)


# --- save / load -------------------------------------------------------------------------------
def save(model: keras.Model, path: Path) -> Path:
    # The .keras zip: architecture, compile() settings, weights and the optimizer's state.
    path = Path(path).with_suffix(".keras")
    model.save(path)
    return path


def load(path: Path, run: RunConfig) -> keras.Model:
    return keras.saving.load_model(path)


# --- harness: what exists only for the comparison ------------------------------------------------
SUITE = {
    "framework": "keras",
    "imports": ["keras"],
    "extra": "keras",
    "modes": ["graph", "eager", "xla"],
    "switches": ["progress_bar"],
    "backends": ["jax"],
    "backend_env": "KERAS_BACKEND",
    "distributed": {"of": "keras", "launcher": "xla-devices"},
}


def configure(run: RunConfig) -> None:
    """The process's settings, before any model: the run's CPU threads, the device Keras uses."""
    set_threads(run.threads)
    check_device(run.device)


def set_threads(threads: int) -> None:
    """The one place the backends differ: each sizes its CPU thread pools its own way."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # Possible only until TF's runtime starts, at its first op; `import keras` does not.
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
    elif backend == "jax":
        # JAX has no API for it: XLA's CPU client sizes its pool from PJRT_NPROC (default: the
        # usable cores) once, when it starts at JAX's first computation, so this counts only
        # if no JAX array existed before in this process; later calls cannot change it.
        os.environ["PJRT_NPROC"] = str(threads)


def check_device(requested: str) -> None:
    # Keras places everything on the GPU whenever its backend sees one and has no per-model
    # switch, so "cpu" or "cuda" can only be checked here, not chosen.
    device = where(keras.Variable(0.0))
    if requested != "auto" and (requested == "cpu") != device.startswith("cpu"):
        raise SettingError(
            f"device {requested!r}: Keras computes on {device}, the device its backend found; "
            f"to force the CPU, hide the GPUs with CUDA_VISIBLE_DEVICES=''"
        )


def where(variable: keras.Variable) -> str:
    # Each backend names a device its own way: TF "/job:localhost/replica:0/task:0/device:CPU:0",
    # JAX "cpu:0", torch "cpu".
    return str(variable.value.device).rsplit("device:", 1)[-1].lower()


def describe(model: keras.Model) -> dict:
    devices = keras.distribution.list_devices()
    return {
        # Every device holds a replica: their kind and count, e.g. "cpu x2".
        "device": f"{devices[0].split(':')[0]} x{len(devices)}",
        "backend": keras.backend.backend(),
        "parameters": model.count_params(),
    }


# --init torch belongs to the comparison, not the example: the contract's build_model is the
# example's, started from raw PyTorch's initial weights when asked.
example_build_model = build_model


def build_model(run: RunConfig) -> keras.Model:
    """--init torch: raw PyTorch's initial weights for the same seed, so that what is left of a
    gap to raw PyTorch is the framework (its kernels, Adam's epsilon), not the initialization."""
    model = example_build_model(run)
    if run.init == "torch":
        from suites import raw_pytorch

        start_from_torch(model, raw_pytorch.build_model(run.with_(device="cpu", init="framework")))
    return model


def start_from_torch(model: keras.Model, torch_model, permute_flatten: bool = True) -> None:
    """A torch nn.Sequential's weights into the same layers in Keras, in Keras' NHWC layouts
    (common/task/weights.py; tests/test_init_torch.py checks the two then compute one function)."""
    from common.task import weights

    arrays = weights.channels_last(
        [p.detach().cpu().numpy() for p in torch_model.parameters()], permute_flatten
    )
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([arrays.pop(0) for _ in layer.weights])


def logits_of(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The model's outputs for float32 (N, 28, 28) images (tests/test_init_torch.py)."""
    return model.predict(to_inputs(images), verbose=0)


if __name__ == "__main__":
    from common.scenarios.standalone import main

    raise SystemExit(main(__spec__.name))
