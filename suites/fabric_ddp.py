"""MNIST convnet in Lightning Fabric, data-parallel: suites/fabric.py with strategy="ddp".

torchrun starts one process per rank; Fabric reads torchrun's environment and fabric.launch()
joins the ranks. fabric.setup wraps the model in DistributedDataParallel, which averages the
gradients across ranks in backward, and a DistributedSampler hands each rank its share of every
epoch. Diff it against fabric.py to see what going distributed changes.

    torchrun --nproc-per-node 2 -m suites.fabric_ddp --epochs 2 --threads 1
"""

# --- imports -----------------------------------------------------------------------------------
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from lightning_fabric import Fabric
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    SequentialSampler,
    TensorDataset,
)
from torch.utils.data.distributed import DistributedSampler

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
    torch.manual_seed(run.seed)
    # On the CPU, without .to(device): fabric.setup moves it.
    return convnet() if run.model == "convnet" else linear()


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def make_fabric(requested: str) -> Fabric:
    # The run's device; the precision is Fabric's default, "32-true", as raw PyTorch computes.
    device = resolve_device(requested)
    fabric = Fabric(
        accelerator=device.type,
        strategy="ddp",
        devices=int(os.environ["LOCAL_WORLD_SIZE"]),  # torchrun's --nproc-per-node
        num_nodes=int(os.environ["WORLD_SIZE"]) // int(os.environ["LOCAL_WORLD_SIZE"]),  # --nnodes
    )
    # Under torchrun the processes exist already: launch() joins them in a process group (the
    # first call; later ones find the group there) and sets each rank's device.
    fabric.launch()
    return fabric


# --- data --------------------------------------------------------------------------------------
def to_tensors(images: np.ndarray, *labels: np.ndarray) -> TensorDataset:
    # NCHW: torch wants the channel axis first. from_numpy shares memory, nothing is copied.
    return TensorDataset(torch.from_numpy(images).unsqueeze(1), *map(torch.from_numpy, labels))


def make_train_loader(data: TaskData, run: RunConfig, fabric: Fabric) -> DataLoader:
    dataset = to_tensors(data.train_images, data.train_labels)
    generator = torch.Generator().manual_seed(run.seed)
    # The sampler yields whole batches of indices, so the TensorDataset is indexed once per
    # batch instead of once per image. DistributedSampler shuffles with its seed and the epoch
    # (set_epoch), the same on every rank, and gives each rank every world_size-th image; each
    # rank's batch is its share of the global batch, so a step still sees run.batch_size images.
    world, rank = fabric.world_size, fabric.global_rank
    shard = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=run.seed)
    batches = BatchSampler(shard, run.batch_size // world, False)
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=generator)


def make_eval_loader(dataset: TensorDataset) -> DataLoader:
    batches = BatchSampler(SequentialSampler(dataset), task.EVAL_BATCH_SIZE, False)
    # Its own generator: evaluation draws nothing from the global RNG that dropout uses.
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=torch.Generator())


# --- training ----------------------------------------------------------------------------------
def train(model: nn.Module, data: TaskData, run: RunConfig, hooks: TrainingHooks) -> nn.Module:
    fabric = make_fabric(run.device)
    # Fabric's loader moves each batch to fabric.device: no .to(device) in the loop. The loader
    # shards itself, as raw_pytorch_ddp's does; with the default (True) Fabric would shard it
    # again (a DistributedSamplerWrapper around the BatchSampler: every world_size-th batch).
    loader = fabric.setup_dataloaders(
        make_train_loader(data, run, fabric), use_distributed_sampler=False
    )
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=task.LEARNING_RATE,
        betas=task.ADAM_BETAS,
        eps=task.ADAM_EPS,
        weight_decay=task.WEIGHT_DECAY,
    )
    forward = torch.compile(model) if run.mode == "compile" else model
    # Moves the model to fabric.device and wraps it in DistributedDataParallel, and the optimizer.
    # Compiled first, as Fabric's docs advise: setup then compiles the DDP-wrapped model instead.
    # `model` is the same module, trained in place and evaluated.
    forward, optimizer = fabric.setup(forward, optimizer)
    for epoch in range(1, run.epochs + 1):
        # Fabric calls set_epoch on a loader's sampler; this one sits inside the BatchSampler.
        loader.sampler.sampler.set_epoch(epoch - 1)  # a new shuffle each epoch, alike on every rank
        model.train()
        loss_sum = torch.zeros((), device=fabric.device)
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(forward(images), labels)
            fabric.backward(loss)  # instead of loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(labels)
            hooks.batch_end(loss.detach())
        loss_sum = fabric.all_reduce(loss_sum, reduce_op="sum")  # the sum over every rank's images
        # Every rank evaluates the whole test set, so all of them take the same early-stop decision.
        hooks.validation_start()
        accuracy = float(np.mean(predict(model, data.test_images) == data.test_labels))
        hooks.validation_end()
        if hooks.epoch_end(epoch, loss_sum.item() / data.train_size, accuracy):
            break
    return model


# --- evaluation --------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    batches = make_eval_loader(to_tensors(images))
    return torch.cat([model(batch.to(device)).argmax(1).cpu() for (batch,) in batches]).numpy()


# --- save / load -------------------------------------------------------------------------------
def save(model: nn.Module, path: Path) -> Path:
    fabric = make_fabric(str(next(model.parameters()).device))
    # Every rank holds the same weights: fabric.save writes them from rank 0 alone (the file
    # fabric.py's load reads too) and returns once they are written, on every rank alike.
    path = fabric.broadcast(Path(path).with_suffix(".pt"))  # rank 0's path, on every rank
    fabric.save(path, {"model": model})
    return path


def load(path: Path, run: RunConfig) -> nn.Module:
    fabric = make_fabric(run.device)
    model = build_model(run)
    # Restores the model in place; weights_only: tensors and plain values, nothing unpickled.
    # Every rank reads the file; fabric.load returns once all have, so rank 0 may then remove it.
    fabric.load(path, {"model": model}, weights_only=True)
    return fabric.to_device(model)  # where train leaves it: on fabric.device


# --- harness: what exists only for the comparison ------------------------------------------------
SUITE = {
    "framework": "pytorch-lightning",  # lightning_fabric ships in its distribution
    "imports": ["lightning_fabric"],
    "extra": "fabric",
    "modes": ["eager", "compile"],
    "distributed": {"of": "fabric", "launcher": "torchrun"},
}

# The harness prints one line per epoch: not Fabric's info lines as launch() joins the ranks
# ("Initializing distributed: ...", "distributed_backend=gloo"); warnings still show.
logging.getLogger("lightning_fabric").setLevel(logging.WARNING)


def configure(run: RunConfig) -> None:
    """The process's settings, before any model: the run's CPU threads, a device torch sees."""
    torch.set_num_threads(run.threads)
    device = torch.device("cpu" if run.device == "auto" else run.device)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SettingError(f"device {run.device!r}: torch sees {torch.cuda.device_count()} GPUs")


def describe(model: nn.Module) -> dict:
    return {
        "device": str(next(model.parameters()).device),
        "backend": "torch",
        "parameters": sum(p.numel() for p in model.parameters()),
    }


if __name__ == "__main__":
    from common.scenarios.standalone import main

    raise SystemExit(main(__spec__.name))
