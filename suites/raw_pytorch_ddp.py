"""MNIST convnet in raw PyTorch, data-parallel: suites/raw_pytorch.py with DistributedDataParallel.

torchrun starts one process per rank; each builds the same model, DistributedDataParallel
averages the gradients across ranks in backward, and a DistributedSampler hands each rank its
share of every epoch. Diff it against raw_pytorch.py to see what going distributed changes.

    torchrun --nproc-per-node 2 -m suites.raw_pytorch_ddp --epochs 2 --threads 1
"""

# --- imports -----------------------------------------------------------------------------------
import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
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
    device = resolve_device(run.device)
    if not dist.is_initialized():  # torchrun set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(run.seed)  # every rank starts from the same weights (DDP broadcasts rank 0's)
    model = convnet() if run.model == "convnet" else linear()
    return DistributedDataParallel(model.to(device))


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":  # one GPU per rank: torchrun numbers the ranks on this machine
        requested = f"cuda:{os.environ['LOCAL_RANK']}"
    return torch.device(requested)


# --- data --------------------------------------------------------------------------------------
def to_tensors(images: np.ndarray, *labels: np.ndarray) -> TensorDataset:
    # NCHW: torch wants the channel axis first. from_numpy shares memory, nothing is copied.
    return TensorDataset(torch.from_numpy(images).unsqueeze(1), *map(torch.from_numpy, labels))


def make_train_loader(data: TaskData, run: RunConfig) -> DataLoader:
    dataset = to_tensors(data.train_images, data.train_labels)
    generator = torch.Generator().manual_seed(run.seed)
    # The sampler yields whole batches of indices, so the TensorDataset is indexed once per
    # batch instead of once per image. DistributedSampler shuffles with its seed and the epoch
    # (set_epoch), the same on every rank, and gives each rank every world_size-th image; each
    # rank's batch is its share of the global batch, so a step still sees run.batch_size images.
    shard = DistributedSampler(dataset, shuffle=True, seed=run.seed)
    batches = BatchSampler(shard, run.batch_size // dist.get_world_size(), False)
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=generator)


def make_eval_loader(dataset: TensorDataset) -> DataLoader:
    batches = BatchSampler(SequentialSampler(dataset), task.EVAL_BATCH_SIZE, False)
    # Its own generator: evaluation draws nothing from the global RNG that dropout uses.
    return DataLoader(dataset, sampler=batches, batch_size=None, generator=torch.Generator())


# --- training ----------------------------------------------------------------------------------
def train(model: nn.Module, data: TaskData, run: RunConfig, hooks: TrainingHooks) -> nn.Module:
    device = next(model.parameters()).device
    loader = make_train_loader(data, run)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=task.LEARNING_RATE,
        betas=task.ADAM_BETAS,
        eps=task.ADAM_EPS,
        weight_decay=task.WEIGHT_DECAY,
    )
    forward = torch.compile(model) if run.mode == "compile" else model
    for epoch in range(1, run.epochs + 1):
        model.train()
        loader.sampler.sampler.set_epoch(epoch - 1)  # a new shuffle each epoch, alike on every rank
        loss_sum = torch.zeros((), device=device)
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(forward(images), labels)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(labels)
            hooks.batch_end(loss.detach())
        dist.all_reduce(loss_sum)  # the sum over every rank's images
        hooks.validation_start()
        # Every rank evaluates the whole test set, so all of them take the same early-stop decision.
        accuracy = float(np.mean(predict(model, data.test_images) == data.test_labels))
        hooks.validation_end()
        if hooks.epoch_end(epoch, loss_sum.item() / data.train_size, accuracy):
            break
    return model


# --- evaluation --------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray) -> np.ndarray:
    model = model.module  # the wrapped model: no gradients to synchronize
    model.eval()
    device = next(model.parameters()).device
    batches = make_eval_loader(to_tensors(images))
    return torch.cat([model(batch.to(device)).argmax(1).cpu() for (batch,) in batches]).numpy()


# --- save / load -------------------------------------------------------------------------------
def save(model: nn.Module, path: Path) -> Path:
    # Every rank holds the same weights: rank 0 writes them (the wrapped model's, which
    # raw_pytorch.load reads too) to its path, and every rank returns that path once it is written.
    paths = [Path(path).with_suffix(".pt")]
    dist.broadcast_object_list(paths)  # rank 0's path, on every rank
    if dist.get_rank() == 0:
        torch.save(model.module.state_dict(), paths[0])
    dist.barrier()
    return paths[0]


def load(path: Path, run: RunConfig) -> nn.Module:
    model = build_model(run)
    model.module.load_state_dict(torch.load(path, map_location=resolve_device(run.device)))
    dist.barrier()  # every rank has read the file before rank 0 may remove it
    return model


# --- harness: what exists only for the comparison ------------------------------------------------
SUITE = {
    "framework": "torch",
    "imports": ["torch"],
    "extra": "torch",
    "modes": ["eager", "compile"],
    "distributed": {"of": "raw_pytorch", "launcher": "torchrun"},
}


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
