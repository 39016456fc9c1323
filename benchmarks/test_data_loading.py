"""pytest-benchmark: loading the dataset once its parsed arrays are cached (target <= 0.3 s)."""

from __future__ import annotations

import pytest

from common.task import RunConfig
from common.task.data import load_dataset


@pytest.fixture(scope="module")
def warm_cache() -> None:
    load_dataset(RunConfig().dataset, progress=False)  # first load parses and caches


def test_load_from_cache(benchmark, warm_cache, reference):
    """Measured once per comparison, in the reference suite's process."""
    dataset = benchmark.pedantic(
        load_dataset, args=(RunConfig().dataset,), kwargs={"progress": False}, rounds=5
    )
    benchmark.extra_info.update(
        {
            "dataset": dataset.name,
            "source": dataset.source,
            "train_size": len(dataset.train_labels),
            "load_seconds": benchmark.stats.stats.mean,
        }
    )
    if dataset.source != "cache":  # a cache is an optimisation: never a failed measurement
        pytest.skip(
            f"{dataset.cache_error or 'the parsed cache could not be written'}; {dataset.name} "
            f"loads from {dataset.source}, and the cache's load time is not measured"
        )
