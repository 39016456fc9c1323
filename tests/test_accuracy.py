"""Accuracy over seeds (common/report/seeds.py) and its place in the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from common import report
from common.report import seeds
from common.task import files

FIXTURE = Path(__file__).parent / "fixtures" / "run"
SETTINGS = {"dataset": "mnist", "epochs": 2, "train_size": None, "test_size": None}


def row(variant: str, seed: int, final: float, **extra) -> dict:
    history = [
        {"epoch": 1, "test_accuracy": final - 0.004},
        {"epoch": 2, "test_accuracy": final},
    ]
    return {
        "variant": variant,
        "suite": variant.partition("[")[0],
        "mode": "eager",
        "seed": seed,
        "test_accuracy": final,
        "epoch_history": history,
        **extra,
    }


ROWS = [
    *(row("raw_pytorch", s, a) for s, a in enumerate((0.9866, 0.9871, 0.9858))),
    *(row("ignite", s, a) for s, a in enumerate((0.9866, 0.9871, 0.9858))),
    *(row("keras[jax]", s, a) for s, a in enumerate((0.9840, 0.9842, 0.9838))),
    *(row("keras[torch]", s, a) for s, a in enumerate((0.9801, 0.9876, 0.9890))),
    row("raw_pytorch", 0, 0.5, control=True),  # the A/A control: the same seed again
    row("raw_pytorch", 1, 0.5, group_copy=True),  # a group's copy of the reference
]


@pytest.fixture(scope="module")
def spreads() -> dict[str, dict]:
    return {r["variant"]: r for r in seeds.spreads(ROWS, SETTINGS)}


def test_one_record_per_variant_over_its_seeds(spreads):
    raw = spreads["raw_pytorch"]
    assert raw["kind"] == "accuracy-over-seeds" and raw["seeds"] == [0, 1, 2]
    assert raw["mean"] == pytest.approx(0.98650) and raw["sd"] == pytest.approx(0.000656, abs=1e-6)
    assert (raw["low"], raw["high"]) == (0.9858, 0.9871)
    assert [e["epoch"] for e in raw["per_epoch"]] == [1, 2]
    assert raw["per_epoch"][0]["mean"] == pytest.approx(0.98250)
    assert raw["versus_reference"] is None


def test_a_difference_is_ranked_only_beyond_its_interval(spreads):
    same = spreads["ignite"]["versus_reference"]  # the same accuracies, seed for seed
    assert same["point"] == 0.0 and same["low"] < 0 < same["high"]
    assert same["verdict"] == "indistinguishable"
    jax = spreads["keras[jax]"]["versus_reference"]
    assert jax["verdict"] == "lower" and jax["high"] < 0 and jax["point"] == pytest.approx(-0.0025)
    spread_out = spreads["keras[torch]"]["versus_reference"]  # lower on average, but noisy
    assert spread_out["verdict"] == "indistinguishable"
    assert spread_out["low"] < 0 < spread_out["high"]


def test_the_bar_is_judged_on_the_mean(spreads):
    assert spreads["raw_pytorch"]["bar"] == 0.985 and spreads["raw_pytorch"]["meets_bar"]
    assert not spreads["keras[jax]"]["meets_bar"]
    other = seeds.spreads(ROWS, {**SETTINGS, "dataset": "fashion-mnist"})
    assert {r["bar"] for r in other} == {None}


def test_one_seed_is_not_a_spread():
    assert not seeds.has_seeds([row("raw_pytorch", 0, 0.98), row("ignite", 0, 0.98)])
    assert seeds.has_seeds(ROWS)


def seeds_record(folder: Path, settings: dict) -> None:
    record = seeds.seeds_record(seeds.spreads(ROWS, settings), settings, "results/x", {})
    files.write_json(folder / "report" / seeds.FILE, record)


def test_a_comparison_report_merges_the_matching_seeds_run(tmp_path):
    results = tmp_path / "results"
    run_dir = results / "20261130-020000"
    shutil.copytree(FIXTURE, run_dir)
    runs = json.loads((run_dir / "runs.json").read_text())
    seeds_record(results / "20261130-010000", {**runs["settings"], "epochs": 5})  # no match
    summary = report.write_report(run_dir).read_text()
    assert "Accuracy over seeds" not in summary
    seeds_record(results / "20261130-000000", runs["settings"])
    summary = report.write_report(run_dir).read_text()
    section = summary.split("## Accuracy over seeds\n", 1)[1]
    assert "From the seeds run results/x" in section
    assert "| keras[jax]" in section and "lower" in section and "BELOW 98.5%" not in section
    assert (run_dir / "report" / "accuracy_over_seeds.png").exists()
    assert "Accuracy over seeds" in (run_dir / "report" / "index.html").read_text()
