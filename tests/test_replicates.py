"""Intervals that hold process-to-process variation, and the slow-phase rule, on simulated runs
whose true ratios are known.

A simulated run is what a comparison records: R replicates, each a fresh reference process and
one process per variant (the A/A control among them), 90 steady blocks of 10 steps over two
epochs, paired by round. Each process carries what is fixed for its lifetime, a random speed
effect (lognormal, sd TAU: the memory layout, the allocator's state), and with probability SLOW
a slow first epoch (15-50% slower, as after a boot); each round shares a drift of +-20%, each
block has 5% noise and a 2% chance of a 2x stall. The report's own code (common.report.analysis's
add_speed) computes the figures.
"""

from __future__ import annotations

import numpy as np
import pytest

from common.measure import speed
from common.report import analysis

TRUE = {  # reference time / variant time
    "raw_pytorch+A/A": 1.0,
    "lightning": 0.93,
    "ignite": 1.0,
    "fastai": 1.03,
    "keras[jax]": 0.33,
    "keras[tensorflow]": 1.6,
    "keras[torch]": 0.6,
}
TAU = 0.025  # the A/A control's spread between runs on the Intel VM: 0.94-1.00
SLOW = 0.25
BLOCKS, STEPS = 90, 10


def process_blocks(rng, step_seconds, drift, tau=TAU, slow=SLOW) -> list[dict]:
    effect = rng.normal(0, tau)
    slow_factor = 1 + (rng.uniform(0.15, 0.5) if rng.random() < slow else 0.0)
    blocks = [{"kind": "block", "index": 0, "turn": 1, "epoch": 1, "steps": STEPS, "seconds": 3.0}]
    for i in range(BLOCKS):
        epoch = 1 if i < BLOCKS // 2 else 2
        seconds = step_seconds * STEPS * drift[i] * np.exp(effect + rng.normal(0, 0.05))
        seconds *= (slow_factor if epoch == 1 else 1.0) * (2.0 if rng.random() < 0.02 else 1.0)
        blocks.append(
            {
                "kind": "block",
                "index": i + 1,
                "turn": i + 2,
                "epoch": epoch,
                "steps": STEPS,
                "seconds": float(seconds),
            }
        )
    return blocks


def simulated_rows(rng, replicates: int, **effects) -> list[dict]:
    rows = []
    for replicate in range(1, replicates + 1):
        drift = 1 + 0.2 * np.sin(np.linspace(0, 3 * np.pi, BLOCKS) + rng.uniform(0, 6))
        common = {"mode": "eager", "group": replicate, "replicate": replicate}
        rows.append(
            {
                **common,
                "variant": "raw_pytorch",
                "label": "raw_pytorch",
                "reference_job": True,
                "blocks": process_blocks(rng, 0.025, drift, **effects),
            }
        )
        for name, ratio in TRUE.items():
            rows.append(
                {
                    **common,
                    "variant": name.removesuffix("+A/A"),
                    "label": name,
                    "control": name.endswith("+A/A"),
                    "blocks": process_blocks(rng, 0.025 / ratio, drift, **effects),
                }
            )
    return rows


def coverage(runs: int, replicates: int = 2, **effects) -> tuple[float, float]:
    """How often the report's 95% interval, and the round-only interval of one pair of
    processes (the design before replicates), hold the true ratio."""
    rng = np.random.default_rng(1)
    pooled = rounds_only = count = 0
    for _ in range(runs):
        rows = simulated_rows(rng, replicates, **effects)
        reference = rows[0]
        for row in analysis.add_speed(rows):
            if row is reference:
                continue
            truth = TRUE[row["label"]]
            ratio = row["speed"]["ratio"]
            alone = speed.speed_ratio(reference["blocks"], row["blocks"])
            pooled += ratio["low"] <= truth <= ratio["high"]
            rounds_only += alone.low <= truth <= alone.high
            count += 1
    return pooled / count, rounds_only / count


@pytest.fixture
def fewer_resamples(monkeypatch):
    monkeypatch.setattr(speed, "RESAMPLES", 499)  # the coverage barely moves; 10x faster


def test_the_pooled_interval_covers_the_true_ratio(fewer_resamples):
    pooled, rounds_only = coverage(runs=100)
    print(f"coverage over 700 intervals: pooled {pooled:.1%}, round-only {rounds_only:.1%}")
    assert pooled >= 0.93
    # One pair of processes can't see its own random effect: most of its intervals miss.
    assert rounds_only < 0.6


def test_without_a_process_effect_both_designs_cover(fewer_resamples):
    pooled, rounds_only = coverage(runs=30, tau=0.0, slow=0.0)
    assert pooled >= 0.93 and rounds_only >= 0.85


def test_one_replicate_is_the_rounds_interval_and_says_so():
    interval = speed.Interval(0.9, 0.85, 0.97, 40)
    (pooled,) = speed.pool({"a": [interval]}).values()
    assert (pooled.point, pooled.low, pooled.high) == (0.9, 0.85, 0.97)
    assert pooled.as_dict()["process_variation"] is False


def test_replicates_that_disagree_widen_every_row():
    # Two rows; the first row's replicates read 0.9 and 1.0: process variation, which the
    # second row's (identical) replicates must be assumed to carry as well.
    apart = [speed.Interval(0.9, 0.89, 0.91, 40), speed.Interval(1.0, 0.99, 1.01, 40)]
    together = [speed.Interval(0.95, 0.94, 0.96, 40)] * 2
    pooled = speed.pool({"apart": apart, "together": together})
    assert pooled["together"].low < 0.90 and pooled["together"].high > 1.0
    assert pooled["apart"].df == 2 and pooled["apart"].replicates == (0.9, 1.0)
    # Never narrower than the rounds' own intervals: agreeing replicates of noisy rounds.
    noisy = [speed.Interval(1.0, 0.8, 1.25, 40)] * 2
    (alone,) = speed.pool({"noisy": noisy}).values()
    assert alone.low < 0.9 and alone.high > 1.1


def test_a_slow_first_epoch_is_found_and_left_out():
    rng = np.random.default_rng(3)
    flat = np.ones(BLOCKS)
    reference = process_blocks(rng, 0.025, flat, tau=0.0, slow=0.0)
    variant = process_blocks(rng, 0.025 / 0.9, flat, tau=0.0, slow=0.0)
    for block in variant:
        if block["epoch"] == 1 and block["index"] > 0:
            block["seconds"] *= 1.4  # 40% slower until its second epoch
    used, phases = speed.phases(reference, variant)
    assert phases.slow_phase and phases.split == "epoch"
    assert phases.early.high < phases.late.low
    assert speed.speed_ratio(reference, used).point == pytest.approx(0.9, abs=0.02)
    assert phases.as_dict()["used"] == "late"


def test_a_steady_pair_keeps_all_its_rounds():
    rng = np.random.default_rng(4)
    flagged = 0
    for _ in range(40):
        flat = 1 + 0.2 * np.sin(np.linspace(0, 3 * np.pi, BLOCKS))
        reference = process_blocks(rng, 0.025, flat, tau=0.0, slow=0.0)
        variant = process_blocks(rng, 0.03, flat, tau=0.0, slow=0.0)
        used, phases = speed.phases(reference, variant)
        flagged += phases.slow_phase
        assert used is variant or phases.slow_phase
    assert flagged <= 2  # two 95% intervals of one steady pair are rarely disjoint


def test_a_one_epoch_run_splits_its_rounds_in_halves():
    rng = np.random.default_rng(5)
    reference = process_blocks(rng, 0.025, np.ones(BLOCKS), tau=0.0, slow=0.0)
    variant = process_blocks(rng, 0.025, np.ones(BLOCKS), tau=0.0, slow=0.0)
    for block in reference + variant:
        block["epoch"] = 1
    _, phases = speed.phases(reference, variant)
    assert phases.split == "half" and not phases.slow_phase
