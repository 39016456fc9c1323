"""The shared task: one definition of what every suite trains, read by all of them.

Values here are the contract. A suite reads them; none hard-codes its own. Frameworks differ in
their defaults (Adam's eps is 1e-8 in torch but 1e-7 in Keras), so every hyperparameter that a
framework would otherwise fill in is stated explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

import numpy as np

from common.task.data import DATASETS, ImageDataset, load_dataset

# --- data --------------------------------------------------------------------------------------
# Inputs are standardized with the dataset's own pixel mean and std (common/task/data.py DATASETS).
IMAGE_SIZE = 28
TRAIN_IMAGES = 60_000  # the training set of MNIST and of Fashion-MNIST alike
NUM_CLASSES = 10
# A model at about chance (1 in NUM_CLASSES) after this many steps has not trained: it diverged
# without a NaN, or learns nothing. Every suite passes 85% well before it (the tests' 32 steps
# reach 80%); one step, as the ddp scenario's start-up runs take, is too few to judge.
UNTRAINED_STEPS = 100
UNTRAINED_BELOW = 2 / NUM_CLASSES

# --- model "convnet" ---------------------------------------------------------------------------
# Conv 1->32 3x3, ReLU, MaxPool 2; Conv 32->64 3x3, ReLU, MaxPool 2;
# Flatten; Dropout 0.5; Dense 1600->10
CONV1_CHANNELS = 32
CONV2_CHANNELS = 64
KERNEL_SIZE = 3
POOL_SIZE = 2
DROPOUT = 0.5
FLAT_FEATURES = CONV2_CHANNELS * 5 * 5  # 28 -conv-> 26 -pool-> 13 -conv-> 11 -pool-> 5
PARAMETER_COUNT = 34_826

# --- training ----------------------------------------------------------------------------------
LEARNING_RATE = 1e-3
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8  # torch's default; Keras would use 1e-7
WEIGHT_DECAY = 0.0
BATCH_SIZE = 128
EVAL_BATCH_SIZE = 1000
DEFAULT_EPOCHS = 2
DEFAULT_SEED = 0

DEVICES = ("auto", "cpu", "cuda")
MODES = ("default", "eager", "graph", "xla", "compile")
# "framework": each framework's own initializers (the task leaves them free). "torch": raw
# PyTorch's initial weights for the same seed, converted (Keras): to tell how much of a gap is
# initialization and how much the framework. The torch suites' own init is torch's already.
INITS = ("framework", "torch")
ALLOCATORS = ("fixed", "glibc")  # how common/measure/allocator.py sets malloc

# The test accuracy every suite should reach, on the mean over seeds, after DEFAULT_EPOCHS
# epochs of the full training set (the Keras example this task follows reaches about 99%).
ACCURACY_BARS: dict[tuple[str | None, int | None], float] = {("mnist", DEFAULT_EPOCHS): 0.985}


def accuracy_bar(dataset: str | None, epochs: int | None) -> float | None:
    """The bar for a dataset after a number of epochs, or None where the task sets none."""
    return ACCURACY_BARS.get((dataset, epochs))


# --- model "linear": for measuring framework overhead ------------------------------------------
# Flatten; Dense 784->10. Its kernels cost next to nothing, so what a training step costs beyond
# them is the framework's own work (Python, dispatch, callbacks): the overhead scenario trains it
# at a small batch on one thread.
MODELS = ("convnet", "linear")
LINEAR_PARAMETER_COUNT = IMAGE_SIZE * IMAGE_SIZE * NUM_CLASSES + NUM_CLASSES  # 7,850
OVERHEAD_BATCH_SIZE = 8


def default_threads() -> int:
    """CPU threads every framework is given: the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_note(threads: int) -> str | None:
    """A warning for more threads than this process's cores: allowed (a user may mean it), but
    every framework then oversubscribes them, and the figures measure that."""
    cores = default_threads()
    if threads <= cores:
        return None
    return (
        f"note: --threads {threads} is more than the {cores} cores this process may use; "
        "the frameworks will oversubscribe them"
    )


class SettingError(ValueError):
    """An invalid run setting; the message says which one and what is allowed."""


def _knob(default, help: str, *, choices=None, kind=None, factory=None):
    """A run knob: its default and how the command lines present it. Every entry point (a suite's
    command line, the compare driver, the pytest options) is derived from these declarations."""
    kind = kind or (int if factory is not None else type(default))
    metadata = {"help": help, "choices": choices, "kind": kind}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunConfig:
    """The knobs a user may turn. Everything else is the task and is fixed above."""

    epochs: int = _knob(DEFAULT_EPOCHS, "epochs to train")
    train_size: int | None = _knob(None, "train on the first N images (default: all)", kind=int)
    test_size: int | None = _knob(
        None, "evaluate on the first N test images (default: all)", kind=int
    )
    seed: int = _knob(DEFAULT_SEED, "seed for weights, shuffling and dropout")
    device: str = _knob("auto", "auto (CUDA when the framework sees one), cpu, cuda or cuda:N")
    threads: int = _knob(
        None, "CPU threads (default: the usable cores)", kind=int, factory=default_threads
    )
    mode: str = _knob("default", "execution mode; each suite lists the ones it has", choices=MODES)
    dataset: str = _knob("mnist", "mnist or fashion-mnist")
    model: str = _knob("convnet", "the task's convnet, or the tiny linear model", choices=MODELS)
    batch_size: int = _knob(BATCH_SIZE, f"training batch size (the task's: {BATCH_SIZE})")
    switch: str = _knob(
        "default",
        "a framework switch that costs time per step (each suite lists its own; default: none)",
    )
    init: str = _knob(
        "framework",
        "initial weights: the framework's own, or raw PyTorch's for the same seed (torch)",
        choices=INITS,
    )
    allocator: str = _knob(
        "fixed",
        "malloc's thresholds fixed before timing, or glibc's adaptive ones (measure/allocator.py)",
        choices=ALLOCATORS,
    )

    def __post_init__(self) -> None:
        for name in ("epochs", "threads", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SettingError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SettingError(f"{name} must be a whole number >= 1 or unset, got {value!r}")
        device, _, index = self.device.partition(":")
        if device not in DEVICES or (index and not (device == "cuda" and index.isdigit())):
            raise SettingError(
                f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {self.device!r}"
            )
        for name, allowed in (
            ("mode", MODES),
            ("model", MODELS),
            ("init", INITS),
            ("allocator", ALLOCATORS),
        ):
            if getattr(self, name) not in allowed:
                raise SettingError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )

    @classmethod
    def knobs(cls) -> list[tuple[str, dict]]:
        """(option, keyword arguments) per knob, for argparse's add_argument or pytest's addoption.
        Every default is None: a knob not given keeps the RunConfig it is applied to."""
        declared = []
        for knob in fields(cls):
            meta = knob.metadata
            options = {
                "dest": knob.name,
                "type": meta["kind"],
                "default": None,
                "help": meta["help"],
            }
            if meta["choices"]:
                options["choices"] = meta["choices"]
            declared.append(("--" + knob.name.replace("_", "-"), options))
        return declared

    @classmethod
    def names(cls) -> list[str]:
        return [knob.name for knob in fields(cls)]

    @classmethod
    def add_arguments(cls, add_argument) -> None:
        """Declares every knob with an argparse-style add_argument (a parser's, or pytest's)."""
        for option, options in cls.knobs():
            add_argument(option, **options)

    def updated(self, given: dict) -> RunConfig:
        """This config with the knobs that were given (not None) in a parsed namespace's dict."""
        names = {knob.name for knob in fields(self)}
        return replace(self, **{k: v for k, v in given.items() if k in names and v is not None})

    def to_arguments(self) -> list[str]:
        """The command-line options that reproduce this config, for a child process."""
        arguments = []
        for knob in fields(self):
            value = getattr(self, knob.name)
            if value is not None:
                arguments += ["--" + knob.name.replace("_", "-"), str(value)]
        return arguments

    def with_(self, **changes) -> RunConfig:
        return replace(self, **changes)


@dataclass(frozen=True)
class TaskData:
    """The task's arrays, normalized and cut to the run's sizes: what every suite trains on.

    Images are float32 (N, 28, 28) without a channel axis: torch wants NCHW and Keras NHWC, so
    each suite adds the axis its framework expects.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    dataset: ImageDataset

    @property
    def train_size(self) -> int:
        return len(self.train_labels)


def normalize(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 pixels -> [0, 1] -> standardized with the dataset's mean and std, as float32."""
    # In place on one new array: the training set is 188 MB as float32, and every temporary
    # the plain expression would make costs page faults (about a second here).
    normalized = images.astype(np.float32)
    normalized /= np.float32(255.0)
    normalized -= np.float32(mean)
    normalized /= np.float32(std)
    return normalized


def prepare(dataset: ImageDataset, run: RunConfig) -> TaskData:
    for name, have in (
        ("train_size", len(dataset.train_labels)),
        ("test_size", len(dataset.test_labels)),
    ):
        asked = getattr(run, name)
        if asked is not None and asked > have:
            raise SettingError(
                f"{name} {asked:,} is more than the {have:,} images {dataset.name} has; "
                f"leave it unset for all of them"
            )
    train = slice(0, run.train_size)
    test = slice(0, run.test_size)
    spec = DATASETS[dataset.name]
    stats = (spec.pixel_mean, spec.pixel_std)
    return TaskData(
        train_images=normalize(dataset.train_images[train], *stats),
        train_labels=dataset.train_labels[train],
        test_images=normalize(dataset.test_images[test], *stats),
        test_labels=dataset.test_labels[test],
        dataset=dataset,
    )


def load_task_data(run: RunConfig) -> TaskData:
    return prepare(load_dataset(run.dataset), run)
