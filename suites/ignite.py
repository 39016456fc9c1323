"""MNIST convnet in PyTorch Ignite: the same nn.Module and DataLoader, driven by Ignite engines.

create_supervised_trainer and create_supervised_evaluator write the loops; metrics and event
handlers (`@trainer.on(Events.EPOCH_COMPLETED)`) do the bookkeeping in the manner of
pytorch/ignite's examples/mnist/mnist.py.

    python -m suites.ignite --epochs 2
"""

# --- imports -----------------------------------------------------------------------------------
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events, create_supervised_evaluator, create_supervised_trainer
from ignite.handlers import Checkpoint, ProgressBar
from ignite.metrics import Accuracy, Loss
from ignite.utils import manual_seed
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
    # Seeds torch (CPU and CUDA), NumPy and Python's random.
    manual_seed(run.seed)
    model = convnet() if run.model == "convnet" else linear()
    return model.to(resolve_device(run.device))


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


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

    # The step's logits and labels with its loss (not the default loss.item()), so that Ignite's
    # Loss metric averages the epoch's training loss from outputs it already has.
    def step_output(x, y, y_pred, loss):
        return {"y_pred": y_pred, "y": y, "loss": loss.detach()}

    trainer = create_supervised_trainer(
        forward, optimizer, F.cross_entropy, device=device, output_transform=step_output
    )
    # Weighted by batch size, reset as each epoch starts.
    train_loss = Loss(
        F.cross_entropy, output_transform=lambda out: (out["y_pred"], out["y"]), device=device
    )
    train_loss.attach(trainer, "loss")  # engine.state.metrics["loss"] at EPOCH_COMPLETED
    # Evaluated uncompiled: eval mode and the 1,000-image batch would each cost a recompile.
    evaluator = create_supervised_evaluator(model, metrics={"accuracy": Accuracy()}, device=device)
    test_loader = make_eval_loader(to_tensors(data.test_images, data.test_labels))

    @trainer.on(Events.ITERATION_COMPLETED)
    def report_step(engine: Engine) -> None:
        hooks.batch_end(engine.state.output["loss"])

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine: Engine) -> None:
        hooks.validation_start()
        accuracy = evaluator.run(test_loader).metrics["accuracy"]
        hooks.validation_end()
        if hooks.epoch_end(engine.state.epoch, engine.state.metrics["loss"], accuracy):
            engine.terminate()

    # No progress bar: the harness prints each epoch itself. --switch progress_bar attaches the
    # one of Ignite's examples, updated every step, which the overhead scenario measures.
    if run.switch == "progress_bar":
        ProgressBar().attach(trainer)
    trainer.run(loader, max_epochs=run.epochs)
    return model


# --- evaluation --------------------------------------------------------------------------------
def predict(model: nn.Module, images: np.ndarray) -> np.ndarray:
    device = next(model.parameters()).device

    @torch.no_grad()
    def predict_step(engine: Engine, batch: list[torch.Tensor]) -> torch.Tensor:
        model.eval()
        (images,) = batch
        return model(images.to(device)).argmax(1).cpu()

    # A bare Engine: create_supervised_evaluator expects (images, labels) batches, and there are
    # no labels to predict with.
    predictor = Engine(predict_step)
    predictions = []

    @predictor.on(Events.ITERATION_COMPLETED)
    def collect(engine: Engine) -> None:
        predictions.append(engine.state.output)

    predictor.run(make_eval_loader(to_tensors(images)))
    return torch.cat(predictions).numpy()


# --- save / load -------------------------------------------------------------------------------
def save(model: nn.Module, path: Path) -> Path:
    # The file Ignite's ModelCheckpoint writes for a single object: its state_dict, torch.save'd.
    # ModelCheckpoint itself is an event handler that names files after the engine's progress.
    path = Path(path).with_suffix(".pt")
    torch.save(model.state_dict(), path)
    return path


def load(path: Path, run: RunConfig) -> nn.Module:
    model = build_model(run)
    # torch.load here rather than handing load_objects the path: it would load without a
    # map_location, so a checkpoint written on a GPU could not be read on a CPU-only machine.
    checkpoint = torch.load(path, map_location=resolve_device(run.device))
    Checkpoint.load_objects(to_load={"model": model}, checkpoint=checkpoint)
    return model


# --- harness: what exists only for the comparison ------------------------------------------------
SUITE = {
    "framework": "pytorch-ignite",
    "imports": ["ignite"],
    "extra": "ignite",
    "modes": ["eager", "compile"],
    "switches": ["progress_bar"],
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
