"""MNIST convnet in fastai: the raw PyTorch suite's model and DataLoaders, trained by a Learner.

fastai's "migrating from pure PyTorch" path: plain torch DataLoaders wrapped in fastai's
DataLoaders, a Learner in place of the hand-written loop, and a Callback that reports to the
harness.

    python -m suites.fastai --epochs 2
"""

# --- imports -----------------------------------------------------------------------------------
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fastai.callback.core import Callback, CancelFitException
from fastai.callback.progress import ProgressCallback
from fastai.data.core import DataLoaders
from fastai.learner import Learner, Recorder
from fastai.metrics import accuracy
from fastai.optimizer import OptimWrapper
from fastai.torch_core import default_device, find_bs, set_seed
from fastcore.basics import noop
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from common import task
from common.measure.hooks import TrainingHooks
from common.task import RunConfig, SettingError, TaskData


# --- model -------------------------------------------------------------------------------------
def convnet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, task.CONV1_CHANNELS, task.KERNEL_SIZE),
        nn.ReLU(),
        nn.MaxPool2d(task.POOL_SIZE),
        nn.Conv2d(task.CONV1_CHANNELS, task.CONV2_CHANNELS, task.KERNEL_SIZE),
        nn.ReLU(),
        nn.MaxPool2d(task.POOL_SIZE),
        nn.Flatten(),
        nn.Dropout(task.DROPOUT),
        nn.Linear(task.FLAT_FEATURES, task.NUM_CLASSES),
    )


def linear() -> nn.Sequential:
    """--model linear: its kernels cost next to nothing, so a step times the framework alone."""
    return nn.Sequential(nn.Flatten(), nn.Linear(task.IMAGE_SIZE**2, task.NUM_CLASSES))


def build_model(run: RunConfig) -> nn.Module:
    set_seed(run.seed)  # fastai's: seeds torch (CPU and CUDA), numpy and random
    model = convnet() if run.model == "convnet" else linear()
    return model.to(resolve_device(run.device))


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    # Plain torch DataLoaders have no device, so the Learner moves the model and every batch to
    # fastai's global default device (CUDA when there is one): make that the requested one.
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    default_device(device.type == "cuda")
    return device


# --- data --------------------------------------------------------------------------------------
def to_tensors(images: np.ndarray, *labels: np.ndarray) -> TensorDataset:
    # NCHW: torch wants the channel axis first. from_numpy shares memory, nothing is copied.
    return TensorDataset(torch.from_numpy(images).unsqueeze(1), *map(torch.from_numpy, labels))


def make_train_loader(data: TaskData, run: RunConfig) -> DataLoader:
    dataset = to_tensors(data.train_images, data.train_labels)
    generator = torch.Generator().manual_seed(run.seed)
    # The sampler yields whole batches of indices, so the TensorDataset is indexed once per
    # batch instead of once per image: the same shuffle as shuffle=True, without 128 small
    # copies and a collate per step.
    batches = BatchSampler(RandomSampler(dataset, generator=generator), run.batch_size, False)
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=generator)


def make_eval_loader(dataset: TensorDataset) -> DataLoader:
    batches = BatchSampler(SequentialSampler(dataset), task.EVAL_BATCH_SIZE, False)
    # Its own generator: evaluation draws nothing from the global RNG that dropout uses.
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=torch.Generator())


# --- training ----------------------------------------------------------------------------------
def make_learner(model: nn.Module, dls: DataLoaders, run: RunConfig) -> Learner:
    learn = Learner(
        dls,
        model,
        loss_func=F.cross_entropy,
        # torch's Adam through fastai's OptimWrapper, with the task's settings: fastai's own Adam
        # defaults to beta2 0.99, eps 1e-5 and a decoupled weight decay of 0.01.
        opt_func=partial(
            OptimWrapper,
            opt=torch.optim.Adam,
            betas=task.ADAM_BETAS,
            eps=task.ADAM_EPS,
            weight_decay=task.WEIGHT_DECAY,
        ),
        metrics=accuracy,
    )
    # The harness prints one line per epoch: no progress bars (the ProgressCallback that fastai
    # gives every Learner once fastai.callback.progress is imported, as by fastai.vision.all)
    # and no per-epoch table (the Recorder prints it through learn.logger). --switch defaults
    # keeps both, which the overhead scenario measures.
    if run.switch != "defaults":
        learn.remove_cbs(ProgressCallback)
        learn.logger = noop
    return learn


class ReportToHooks(Callback):
    """Reports fastai's training events to the harness's TrainingHooks."""

    order = Recorder.order + 1  # after_epoch runs once the Recorder has stored the metrics
    run_valid = False  # batch events only while training

    def __init__(self, hooks: TrainingHooks) -> None:
        self.hooks = hooks

    def before_train(self) -> None:
        # The Recorder's train_loss is an exponentially smoothed loss, not the epoch's mean, so
        # sum it here, weighted by batch size (on the device: no sync per step).
        self.loss_sum, self.seen = 0.0, 0

    def after_batch(self) -> None:
        loss, images = self.learn.loss.detach(), find_bs(self.learn.yb)
        self.loss_sum += loss * images
        self.seen += images
        self.hooks.batch_end(loss)

    def before_validate(self) -> None:
        self.hooks.validation_start()

    def after_validate(self) -> None:
        self.hooks.validation_end()

    def after_epoch(self) -> None:
        # Read as fastai's TrackerCallback reads a metric: the Recorder's row for this epoch,
        # whose columns are its metric_names less "epoch" (train_loss, valid_loss, accuracy).
        test_accuracy = self.recorder.values[-1][self.recorder.metric_names[1:].index("accuracy")]
        mean_loss = float(self.loss_sum) / self.seen
        if self.hooks.epoch_end(self.learn.epoch + 1, mean_loss, test_accuracy):
            raise CancelFitException


def train(model: nn.Module, data: TaskData, run: RunConfig, hooks: TrainingHooks) -> Learner:
    if run.mode == "compile":
        # In place, so the Learner, learn.save and the state_dict's keys see the same module.
        model.compile()
    test_loader = make_eval_loader(to_tensors(data.test_images, data.test_labels))
    learn = make_learner(model, DataLoaders(make_train_loader(data, run), test_loader), run)
    # fit, not fit_one_cycle (fastai's recommendation): the task is Adam at a constant lr.
    # fit sets only lr on the optimizer (wd too, were it given): betas, eps and weight decay
    # stay as OptimWrapper built them.
    learn.fit(run.epochs, lr=task.LEARNING_RATE, cbs=ReportToHooks(hooks))
    return learn


# --- evaluation --------------------------------------------------------------------------------
def predict(learn: Learner, images: np.ndarray) -> np.ndarray:
    dataset = TensorDataset(torch.from_numpy(images).unsqueeze(1))
    logits, _ = learn.get_preds(dl=make_eval_loader(dataset))
    return logits.argmax(1).numpy()


# --- save / load -------------------------------------------------------------------------------
def save(learn: Learner, path: Path) -> Path:
    path = Path(path).with_suffix(".pth")
    # learn.save writes learn.path/learn.model_dir/<name>.pth (by default ./models/ under the
    # working directory): point it at the caller's folder. fastai's format keeps the
    # optimizer's state next to the weights, so training can resume from it.
    learn.path, learn.model_dir = path.parent, "."
    return learn.save(path.stem)


def load(path: Path, run: RunConfig) -> Learner:
    path = Path(path)
    # A Learner needs DataLoaders but predict brings its own, so no data is loaded: an empty one.
    empty = TensorDataset(torch.empty(0, 1, task.IMAGE_SIZE, task.IMAGE_SIZE))
    learn = make_learner(build_model(run), DataLoaders(DataLoader(empty)), run)
    learn.path, learn.model_dir = path.parent, "."
    return learn.load(path.stem)


# --- harness: what exists only for the comparison ------------------------------------------------
SUITE = {
    "framework": "fastai",
    "imports": ["fastai"],
    "extra": "fastai",
    "modes": ["eager", "compile"],
    "switches": ["defaults"],
}


def configure(run: RunConfig) -> None:
    """The process's settings, before any model: the run's CPU threads, a device torch sees."""
    torch.set_num_threads(run.threads)
    device = torch.device("cpu" if run.device == "auto" else run.device)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SettingError(f"device {run.device!r}: torch sees {torch.cuda.device_count()} GPUs")


def describe(learn: Learner) -> dict:
    return {
        "device": str(next(learn.model.parameters()).device),
        "backend": "torch",
        "parameters": sum(p.numel() for p in learn.model.parameters()),
    }


if __name__ == "__main__":
    from common.scenarios.standalone import main

    raise SystemExit(main(__spec__.name))
