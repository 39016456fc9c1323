"""MNIST convnet in TensorFlow 2: Keras' layers, trained by TensorFlow's own loop.

In the manner of keras-io's guides/writing_a_custom_training_loop_in_tensorflow.py: the model is
suites/keras.py's, the same text; what fit() did is written out in TensorFlow's terms: a tf.data
pipeline, a step that tf.GradientTape differentiates and tf.function traces into a graph, the
optimizer's update, and a tf.train.Checkpoint. Diff it against keras.py to see what fit() does
for you.

    python -m suites.tensorflow --epochs 2 --mode xla
"""

# --- imports -----------------------------------------------------------------------------------
# Keras reads KERAS_BACKEND once, at import: one backend per process. tf.GradientTape records
# TensorFlow's variables only, so this example pins Keras to TensorFlow, as keras-io's guide does.
# The layers are Keras' because TensorFlow 2 has no others (tf.keras is Keras); a tf.Module
# would mean declaring each kernel, bias and initializer by hand.
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
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
    # Seeds Python, NumPy, TensorFlow and Keras' own SeedGenerator (init, dropout); tf.data's
    # shuffle takes the seed itself.
    keras.utils.set_random_seed(run.seed)
    # Keras' default init (glorot_uniform kernels, zero biases), not torch's (kaiming_uniform
    # with a=sqrt(5), uniform biases): the task leaves each framework its own.
    return convnet() if run.model == "convnet" else linear()


# --- data --------------------------------------------------------------------------------------
def to_inputs(images: np.ndarray) -> np.ndarray:
    # NHWC: Keras wants the channel axis last. A view of the array, nothing is copied.
    return images[..., None]


def make_train_dataset(data: TaskData, run: RunConfig) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices((to_inputs(data.train_images), data.train_labels))
    # A buffer as large as the dataset is a uniform shuffle, drawn anew each time the dataset is
    # iterated (each epoch) from the seed.
    dataset = dataset.shuffle(data.train_size, seed=run.seed, reshuffle_each_iteration=True)
    # prefetch: tf.data assembles the next batches on its own threads while a step runs, as the
    # pipeline fit() builds does.
    return dataset.batch(run.batch_size).prefetch(tf.data.AUTOTUNE)


# --- training ----------------------------------------------------------------------------------
def train(model: keras.Model, data: TaskData, run: RunConfig, hooks: TrainingHooks) -> keras.Model:
    # The task's Adam: Keras' default epsilon is 1e-7 (the task's is torch's 1e-8), and its
    # weight_decay is decoupled (AdamW's): None when the task has none.
    optimizer = keras.optimizers.Adam(
        learning_rate=task.LEARNING_RATE,
        beta_1=task.ADAM_BETAS[0],
        beta_2=task.ADAM_BETAS[1],
        epsilon=task.ADAM_EPS,
        weight_decay=task.WEIGHT_DECAY or None,
    )
    # On logits: a linear last layer, rather than Keras' usual softmax layer.
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # The epoch's mean loss, each step's weighted by its batch: what fit() reports as "loss".
    # Kept in a variable inside the step, so that no step waits to copy its loss to Python.
    epoch_loss = keras.metrics.Mean()

    def train_step(images, labels):
        # The tape records the forward pass; gradient() walks it backwards.
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))  # training=True: Dropout on
        gradients = tape.gradient(loss, model.trainable_weights)
        # Keras 3's form of tf.keras' optimizer.apply_gradients(zip(gradients, variables)).
        optimizer.apply(gradients, model.trainable_weights)
        epoch_loss.update_state(loss, sample_weight=tf.shape(labels)[0])
        return loss

    if run.mode != "eager":  # eager: each op runs as Python reaches it, as in NumPy
        # tf.function traces the step into a graph, once per input shape (the last, smaller
        # batch is a second trace), and runs the graph from then on; jit_compile=True has XLA
        # compile that graph into fused kernels.
        train_step = tf.function(train_step, jit_compile=run.mode == "xla")
    batches = make_train_dataset(data, run)
    for epoch in range(1, run.epochs + 1):
        epoch_loss.reset_state()
        for images, labels in batches:
            hooks.batch_end(train_step(images, labels))
        hooks.validation_start()
        accuracy = float(np.mean(predict(model, data.test_images) == data.test_labels))
        hooks.validation_end()
        if hooks.epoch_end(epoch, float(epoch_loss.result()), accuracy):
            break
    return model


# --- evaluation --------------------------------------------------------------------------------
def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    batches = tf.data.Dataset.from_tensor_slices(to_inputs(images)).batch(task.EVAL_BATCH_SIZE)
    # training=False: Dropout off. Eager: ten large batches, so each op's dispatch costs little.
    return np.concatenate(
        [tf.argmax(model(batch, training=False), axis=1).numpy() for batch in batches]
    )


# --- save / load -------------------------------------------------------------------------------
# TensorFlow writes a checkpoint as an index file beside the data shard that holds the values,
# both named from one prefix. save returns the shard, and load finds the prefix from it.
SHARD = ".data-00000-of-00001"


def save(model: keras.Model, path: Path) -> Path:
    # The variables only, each under its path from the object given (model/layers/...): no code,
    # no pickle, so reading it runs nothing. A run that resumes training would pass the
    # optimizer too (optimizer=optimizer: its moments and step count).
    prefix = tf.train.Checkpoint(model=model).write(str(Path(path).with_suffix(".ckpt")))
    return Path(prefix + SHARD)


def load(path: Path, run: RunConfig) -> keras.Model:
    model = convnet() if run.model == "convnet" else linear()
    # read() fills the variables of the model just built; assert_consumed() fails on a file
    # whose variables are not exactly those (the other model, say).
    tf.train.Checkpoint(model=model).read(str(path).removesuffix(SHARD)).assert_consumed()
    return model


# --- harness: what exists only for the comparison ------------------------------------------------
SUITE = {
    "framework": "tensorflow-cpu",
    "imports": ["tensorflow"],
    "extra": "tensorflow",
    "modes": ["graph", "eager", "xla"],
    "relative": "keras[tensorflow]",
}


def configure(run: RunConfig) -> None:
    """The process's settings, before any model: the run's CPU threads, the device TF uses."""
    # Possible only until TF's runtime starts, at its first op; importing it does not.
    tf.config.threading.set_intra_op_parallelism_threads(run.threads)
    tf.config.threading.set_inter_op_parallelism_threads(run.threads)
    check_backend()
    check_device(run.device)


def check_backend() -> None:
    # Setting KERAS_BACKEND above comes too late where Keras was imported before, on another
    # backend (a test process that ran keras[jax] first, say).
    backend = keras.backend.backend()
    if backend != "tensorflow":
        os.environ["KERAS_BACKEND"] = backend  # the truth again, for the process's other suites
        raise SettingError(
            f"Keras was imported on {backend} before this suite in this process, and "
            f"tf.GradientTape needs it on tensorflow: run the tensorflow suite in its own process"
        )


def check_device(requested: str) -> None:
    gpus = tf.config.list_physical_devices("GPU")
    kind, _, index = requested.partition(":")
    if kind == "cuda" and int(index or 0) >= len(gpus):
        raise SettingError(f"device {requested!r}: TensorFlow sees {len(gpus)} GPUs")
    if gpus and kind != "auto":
        # TensorFlow places each op on its first visible GPU: leave only the one asked for, none
        # for "cpu" (before its runtime starts, as the threads).
        tf.config.set_visible_devices(gpus[int(index or 0)] if kind == "cuda" else [], "GPU")


def describe(model: keras.Model) -> dict:
    # TF names it "/job:localhost/replica:0/task:0/device:CPU:0".
    device = model.weights[0].value.device.rsplit("device:", 1)[-1].lower()
    return {
        "device": device,  # where the weights live, TensorFlow computes
        "backend": "tensorflow",
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
    return model(to_inputs(images), training=False).numpy()


if __name__ == "__main__":
    from common.scenarios.standalone import main

    raise SystemExit(main(__spec__.name))
