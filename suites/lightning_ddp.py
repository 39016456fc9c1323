"""MNIST convnet in PyTorch Lightning, data-parallel: suites/lightning.py with strategy="ddp".

The Trainer wraps the module in DistributedDataParallel and synchronizes what is logged with
sync_dist; under torchrun (Lightning's documented way to launch it) every rank runs this file.
Diff it against lightning.py to see what going distributed changes.

    torchrun --nproc-per-node 2 -m suites.lightning_ddp --epochs 2 --threads 1
"""

# --- imports -----------------------------------------------------------------------------------
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    SequentialSampler,
    TensorDataset,
)
from torch.utils.data.distributed import DistributedSampler
from torchmetrics.classification import MulticlassAccuracy

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


class ConvNet(pl.LightningModule):
    def __init__(self, model: str = "convnet") -> None:
        super().__init__()
        self.save_hyperparameters()  # the checkpoint records which model to rebuild
        self.net = convnet() if model == "convnet" else linear()
        # torchmetrics' Accuracy is Lightning's idiom: logged as an object, the Trainer computes
        # and resets it per epoch. "micro" = correct / total (Multiclass' default is "macro").
        self.accuracy = MulticlassAccuracy(task.NUM_CLASSES, average="micro")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = F.cross_entropy(self(images), labels)
        # The epoch mean is weighted by batch_size, as raw_pytorch's loss_sum / train_size is.
        # sync_dist: the epoch's mean over every rank's images, not this rank's alone.
        self.log(
            "train_loss", loss, on_step=False, on_epoch=True, batch_size=len(labels), sync_dist=True
        )
        return loss

    def on_train_epoch_start(self) -> None:
        # Lightning calls set_epoch on a loader's sampler; this one sits inside the BatchSampler.
        self.trainer.train_dataloader.sampler.sampler.set_epoch(self.current_epoch)

    def validation_step(self, batch, batch_idx: int) -> None:
        images, labels = batch
        self.accuracy(self(images).argmax(1), labels)
        self.log("val_accuracy", self.accuracy, on_step=False, on_epoch=True)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        (images,) = batch
        return self(images).argmax(1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.parameters(),
            lr=task.LEARNING_RATE,
            betas=task.ADAM_BETAS,
            eps=task.ADAM_EPS,
            weight_decay=task.WEIGHT_DECAY,
        )


def build_model(run: RunConfig) -> ConvNet:
    # Seeds torch, NumPy and Python's random.
    pl.seed_everything(run.seed, verbose=False)
    # Built on the CPU: the Trainer moves it to run.device when fit starts.
    return ConvNet(run.model)


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def make_trainer(run: RunConfig, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    device = resolve_device(run.device)
    defaults = run.switch == "defaults"
    return pl.Trainer(
        accelerator=device.type,
        strategy="ddp",
        devices=int(os.environ["LOCAL_WORLD_SIZE"]),  # torchrun's --nproc-per-node
        num_nodes=int(os.environ["WORLD_SIZE"]) // int(os.environ["LOCAL_WORLD_SIZE"]),  # --nnodes
        # The loader below shards itself, as raw_pytorch_ddp's does; with the default (True)
        # Lightning would put a DistributedSampler in place of the BatchSampler, one image a step.
        use_distributed_sampler=False,
        max_epochs=run.epochs,
        callbacks=callbacks,
        # No sanity-check validation before training: the task validates after each epoch only.
        num_sanity_val_steps=0,
        # The harness prints each epoch and times the run: no progress bar, no model summary, no
        # logger or checkpoint files. The overhead scenario measures Lightning's own defaults
        # (--switch defaults) and its barebones mode (--switch barebones) beside this.
        enable_progress_bar=defaults,
        enable_model_summary=defaults,
        logger=defaults,  # TensorBoard's, or a CSVLogger where tensorboard is not installed
        enable_checkpointing=defaults,
        # The logs and checkpoints go to a fresh folder, not the working directory.
        default_root_dir=tempfile.mkdtemp(prefix="lightning-defaults-") if defaults else None,
        barebones=run.switch == "barebones",
    )


# --- data --------------------------------------------------------------------------------------
def to_tensors(images: np.ndarray, *labels: np.ndarray) -> TensorDataset:
    # NCHW: torch wants the channel axis first. from_numpy shares memory, nothing is copied.
    return TensorDataset(torch.from_numpy(images).unsqueeze(1), *map(torch.from_numpy, labels))


def make_train_loader(data: TaskData, run: RunConfig, trainer: pl.Trainer) -> DataLoader:
    dataset = to_tensors(data.train_images, data.train_labels)
    generator = torch.Generator().manual_seed(run.seed)
    # The sampler yields whole batches of indices, so the TensorDataset is indexed once per
    # batch instead of once per image. DistributedSampler gives each rank every world_size-th
    # image of a shuffle that is the same on every rank; each rank's batch is its share of the
    # global batch, so a step still sees run.batch_size images (Lightning's batch is per device).
    # The Trainer knows the ranks before fit starts the process group.
    world, rank = trainer.world_size, trainer.global_rank
    shard = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=run.seed)
    batches = BatchSampler(shard, run.batch_size // world, False)
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=generator)


def make_eval_loader(dataset: TensorDataset) -> DataLoader:
    batches = BatchSampler(SequentialSampler(dataset), task.EVAL_BATCH_SIZE, False)
    # Its own generator: evaluation draws nothing from the global RNG that dropout uses.
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=torch.Generator())


# --- training ----------------------------------------------------------------------------------
class ReportToHooks(pl.Callback):
    """Forwards the Trainer's events to the harness. Lightning 2.x validates at the end of each
    training epoch, before on_train_epoch_end, so the epoch's val_accuracy is ready there."""

    def __init__(self, hooks: TrainingHooks) -> None:
        self.hooks = hooks

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.hooks.batch_end(outputs["loss"])

    def on_validation_start(self, trainer, pl_module) -> None:
        self.hooks.validation_start()

    def on_validation_end(self, trainer, pl_module) -> None:
        self.hooks.validation_end()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        epoch = trainer.current_epoch + 1
        if self.hooks.epoch_end(epoch, metrics["train_loss"], metrics["val_accuracy"]):
            trainer.should_stop = True


class BarebonesReport(ReportToHooks):
    """Trainer(barebones=True) ignores self.log: the epoch's figures are gathered here instead."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.loss_sum, self.seen = 0.0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.loss_sum += outputs["loss"].detach() * len(batch[1])
        self.seen += len(batch[1])
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        accuracy = pl_module.accuracy.compute()
        pl_module.accuracy.reset()
        if self.hooks.epoch_end(trainer.current_epoch + 1, self.loss_sum / self.seen, accuracy):
            trainer.should_stop = True


def train(model: ConvNet, data: TaskData, run: RunConfig, hooks: TrainingHooks) -> ConvNet:
    report = BarebonesReport(hooks) if run.switch == "barebones" else ReportToHooks(hooks)
    trainer = make_trainer(run, callbacks=[report])
    val_loader = make_eval_loader(to_tensors(data.test_images, data.test_labels))
    # Lightning's docs: compile the LightningModule before fit; the Trainer then also compiles
    # its *_step methods. fit trains `model` itself (unwrapped), which is what is returned.
    forward = torch.compile(model) if run.mode == "compile" else model
    trainer.fit(forward, make_train_loader(data, run, trainer), val_loader)
    return model


# --- evaluation --------------------------------------------------------------------------------
def predict(model: ConvNet, images: np.ndarray) -> np.ndarray:
    # Lightning's advice: predict on one device, so that no DistributedSampler splits (or pads)
    # the images across ranks. Every rank predicts them all.
    single = pl.Trainer(
        accelerator=model.trainer.accelerator, devices=1, logger=False, enable_progress_bar=False
    )
    batches = single.predict(model, make_eval_loader(to_tensors(images)))
    return torch.cat(batches).cpu().numpy()


# --- save / load -------------------------------------------------------------------------------
def save(model: ConvNet, path: Path) -> Path:
    # Rank 0 writes the checkpoint and every rank waits for it: the path is rank 0's, on every rank.
    path = model.trainer.strategy.broadcast(Path(path).with_suffix(".ckpt"))
    # Lightning's full checkpoint, as its default: weights plus optimizer and loop state, enough
    # to resume training (raw_pytorch saves the weights alone).
    model.trainer.save_checkpoint(path, weights_only=False)
    return path


def load(path: Path, run: RunConfig) -> ConvNet:
    # On the CPU, where the Trainer leaves a module between runs; it moves it to run.device.
    # weights_only: the checkpoint holds tensors and plain values only, so load it the safe way.
    model = ConvNet.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    # A loaded module has no Trainer. Attach a fresh one, as fit and predict do first, so that
    # predict, save and describe work on it exactly as on a trained module.
    trainer = make_trainer(run)
    trainer.strategy.connect(model)
    model.trainer = trainer
    return model


# --- harness: what exists only for the comparison ------------------------------------------------
SUITE = {
    "framework": "pytorch-lightning",
    "imports": ["pytorch_lightning"],
    "extra": "lightning",
    "modes": ["eager", "compile"],
    "switches": ["defaults", "barebones"],
    "distributed": {"of": "lightning", "launcher": "torchrun"},
}

# The harness prints one line per epoch: no "GPU available: ..." info lines (warnings still
# show), no hints that an in-memory dataset needs no DataLoader workers, and not pytorch-lightning
# 2.6.6's FutureWarning about torch 2.14's LeafSpec, which is about Lightning's own internals.
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
pl.disable_possible_user_warnings()
warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)`", FutureWarning)


def configure(run: RunConfig) -> None:
    """The process's settings, before any model: the run's CPU threads, a device torch sees."""
    torch.set_num_threads(run.threads)
    device = torch.device("cpu" if run.device == "auto" else run.device)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SettingError(f"device {run.device!r}: torch sees {torch.cuda.device_count()} GPUs")


def describe(model: ConvNet) -> dict:
    return {
        # Not the parameters' device: the Trainer puts the module back on the CPU after each run.
        "device": str(model.trainer.strategy.root_device),
        "backend": "torch",
        "parameters": sum(p.numel() for p in model.parameters()),
    }


if __name__ == "__main__":
    from common.scenarios.standalone import main

    raise SystemExit(main(__spec__.name))
