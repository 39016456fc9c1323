"""The shared task: one definition of what every suite trains, read by all of them.

Values here are the contract. A suite reads them; none hard-codes its own. Frameworks differ in
their defaults (Adam's eps is 1e-8 in torch but 1e-7 in Keras), so every hyperparameter that a
framework would otherwise fill in is stated explicitly.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields, replace

import numpy as np

from common.data import ImageDataset, load_dataset

# --- data --------------------------------------------------------------------------------------
PIXEL_MEAN = 0.1307  # of the MNIST training pixels on the [0, 1] scale
PIXEL_STD = 0.3081
IMAGE_SIZE = 28
NUM_CLASSES = 10

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


def default_threads() -> int:
    """CPU threads every framework is given: the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class SettingError(ValueError):
    """An invalid run setting; the message says which one and what is allowed."""


@dataclass(frozen=True)
class RunConfig:
    """The knobs a user may turn. Everything else is the task and is fixed above."""

    epochs: int = DEFAULT_EPOCHS
    train_size: int | None = None  # first N training images; None = all 60,000
    test_size: int | None = None  # first N test images; None = all 10,000
    seed: int = DEFAULT_SEED
    device: str = "auto"  # "auto" = CUDA when the framework sees one, else CPU
    threads: int = field(default_factory=default_threads)
    mode: str = "default"  # execution mode; each suite lists the ones it has
    dataset: str = "mnist"

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise SettingError(f"epochs must be a whole number >= 1, got {self.epochs!r}")
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SettingError(f"{name} must be a whole number >= 1 or unset, got {value!r}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise SettingError(f"threads must be a whole number >= 1, got {self.threads!r}")
        if self.device.split(":")[0] not in DEVICES:
            raise SettingError(
                f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {self.device!r}"
            )
        if self.mode not in MODES:
            raise SettingError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        defaults = cls()
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument(
            "--train-size",
            type=int,
            default=None,
            help="train on the first N images (default: all 60,000)",
        )
        parser.add_argument(
            "--test-size",
            type=int,
            default=None,
            help="evaluate on the first N test images (default: all 10,000)",
        )
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda or cuda:N")
        parser.add_argument(
            "--threads",
            type=int,
            default=defaults.threads,
            help=f"CPU threads (default: {defaults.threads}, the usable cores)",
        )
        parser.add_argument("--mode", default=defaults.mode, choices=MODES)
        parser.add_argument("--dataset", default=defaults.dataset)
        return parser

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> RunConfig:
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

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


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> [0, 1] -> standardized with the task's mean and std, as float32."""
    # In place on one new array: the training set is 188 MB as float32, and every temporary
    # the plain expression would make costs page faults (about a second here).
    normalized = images.astype(np.float32)
    normalized /= np.float32(255.0)
    normalized -= np.float32(PIXEL_MEAN)
    normalized /= np.float32(PIXEL_STD)
    return normalized


def prepare(dataset: ImageDataset, run: RunConfig) -> TaskData:
    train = slice(0, run.train_size)
    test = slice(0, run.test_size)
    return TaskData(
        train_images=normalize(dataset.train_images[train]),
        train_labels=dataset.train_labels[train],
        test_images=normalize(dataset.test_images[test]),
        test_labels=dataset.test_labels[test],
        dataset=dataset,
    )


def load_task_data(run: RunConfig) -> TaskData:
    return prepare(load_dataset(run.dataset), run)
