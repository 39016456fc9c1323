"""The data-feeding floor: the reference model trained by slicing batches out of in-memory tensors.

No DataLoader, no Dataset, no per-image work: the fastest way to feed this model. It runs in the
reference suite's process, beside it, so that the reference's DataLoader overhead can be read
as the ratio of the two throughputs (the report shows it).
"""

from __future__ import annotations

from common import task
from common.measure.runner import WARM_UP_IMAGES
from common.task import RunConfig
from conftest import run_config, task_data_for


def train_by_slicing(model, images, labels, run: RunConfig) -> int:
    # Imported here, not at collection, so the suites' import times stay their own.
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    images = torch.from_numpy(images).unsqueeze(1).to(device)
    labels = torch.from_numpy(labels).to(device)
    generator = torch.Generator().manual_seed(run.seed)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=task.LEARNING_RATE,
        betas=task.ADAM_BETAS,
        eps=task.ADAM_EPS,
        weight_decay=task.WEIGHT_DECAY,
    )
    model.train()
    for _ in range(run.epochs):
        order = torch.randperm(len(labels), generator=generator).to(device)
        shuffled_images, shuffled_labels = images[order], labels[order]
        for start in range(0, len(labels), task.BATCH_SIZE):
            batch = slice(start, start + task.BATCH_SIZE)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(shuffled_images[batch]), shuffled_labels[batch])
            loss.backward()
            optimizer.step()
    return len(labels) * run.epochs


def test_feeding_floor(benchmark, reference, request):
    run = run_config(request.config)
    data, _ = task_data_for(run)
    benchmark.group = f"train {run.dataset} x{run.epochs} epochs"

    def setup():
        return (reference.module.build_model(run), data.train_images, data.train_labels, run), {}

    few = slice(0, WARM_UP_IMAGES)  # untimed, as the suites warm up: one-time costs aside
    train_by_slicing(
        reference.module.build_model(run),
        data.train_images[few],
        data.train_labels[few],
        run.with_(epochs=1),
    )

    images_seen = benchmark.pedantic(
        train_by_slicing, setup=setup, rounds=request.config.getoption("--rounds")
    )
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        {
            "baseline": "tensor-slicing floor",
            "suite": reference.variant.suite,
            "variant": f"{reference.variant.id} floor",
            "threads": run.threads,
            "train_size": data.train_size,
            "epochs": run.epochs,
            "train_seconds": seconds,
            "images_per_second": images_seen / seconds,
        }
    )
