"""Speed figures from timed blocks: intervals on synthetic block times whose true ratio is known,
verdicts, start-up apart from steady state, and the flags of a noisy run."""

from __future__ import annotations

import numpy as np
import pytest

from common.measure import speed


def blocks(seconds, steps=50, first=None) -> list[dict]:
    """Block records as common.measure.hooks writes them: turn n holds block n - 1."""
    times = [first if first is not None else seconds[0], *seconds]
    return [
        {"kind": "block", "index": i, "turn": i + 1, "steps": steps, "seconds": float(t)}
        for i, t in enumerate(times)
    ]


def drifting_pair(true_ratio: float, rounds: int = 40, noise: float = 0.05, seed: int = 1):
    """The machine's speed wanders by +-30% over the run; both processes see the same drift in
    a round, and each block has its own noise. true_ratio = reference time / variant time."""
    rng = np.random.default_rng(seed)
    drift = 1.4 + 0.3 * np.sin(np.linspace(0, 3 * np.pi, rounds))
    reference = drift * (1 + noise * rng.standard_normal(rounds))
    variant = drift / true_ratio * (1 + noise * rng.standard_normal(rounds))
    return blocks(reference), blocks(variant)


@pytest.mark.parametrize("true_ratio", [0.8, 1.0, 1.25])
def test_the_interval_holds_the_true_ratio(true_ratio):
    reference, variant = drifting_pair(true_ratio)
    interval = speed.speed_ratio(reference, variant)
    assert interval.low <= true_ratio <= interval.high
    assert interval.pairs == 40
    # Pairing cancels the drift: the interval is about as wide as the per-block noise allows,
    # far narrower than the +-30% the drift alone would give unpaired.
    assert interval.half_width < 0.05


def test_verdicts_follow_the_interval():
    slower = speed.speed_ratio(*drifting_pair(0.8))
    same = speed.speed_ratio(*drifting_pair(1.0))
    faster = speed.speed_ratio(*drifting_pair(1.25))
    assert [speed.verdict(i) for i in (slower, same, faster)] == [
        "slower",
        "indistinguishable",
        "faster",
    ]
    assert speed.verdict(None) == "not measured"


def test_overhead_per_step_is_the_paired_difference():
    reference = blocks([0.050] * 10)  # 1,000 us a step over 50 steps
    variant = blocks([0.060] * 10)
    interval = speed.overhead_per_step(reference, variant)
    assert interval.point == pytest.approx(200.0)
    assert speed.verdict(interval, 0.0, "more overhead", "less overhead") == "more overhead"


def test_the_first_block_is_start_up_not_steady_state():
    compiled = blocks([1.0] * 10, first=6.0)  # a compile in the first block costs 5 s
    start = speed.start_up(compiled)
    assert start["start_up_seconds"] == pytest.approx(5.0)
    assert speed.per_step(compiled).point == pytest.approx(1.0 / 50)
    # The start-up block is not paired: the ratio is the steady state's.
    assert speed.speed_ratio(blocks([1.0] * 10), compiled).point == pytest.approx(1.0)


def test_only_blocks_of_the_same_round_and_size_are_paired():
    reference = blocks([1.0] * 5)
    variant = blocks([2.0] * 5)
    variant[3]["turn"] = 99  # ran in another round
    variant[4]["steps"] = 7  # a shorter block: an epoch's tail
    ref_seconds, var_seconds, steps = speed.paired(reference, variant)
    assert len(ref_seconds) == 3 and set(var_seconds) == {2.0} and set(steps) == {50}


def test_too_few_rounds_give_no_interval():
    assert speed.speed_ratio(blocks([1.0, 1.0]), blocks([1.0, 1.0])) is None


def test_a_quiet_run_is_not_flagged():
    reference, variant = drifting_pair(1.0, noise=0.02)
    for block in reference + variant:
        block["steal_share"] = 0.001
    # Its drift is slow: most of the variation is drift, not block noise.
    assert speed.drift_share(reference) > 0.8
    quiet = blocks(1 + 0.02 * np.random.default_rng(0).standard_normal(30))
    assert speed.noise_flags(quiet, [quiet]) == []


def test_a_noisy_reference_and_stolen_cpu_are_flagged():
    noisy = blocks(1 + 0.2 * np.random.default_rng(0).standard_normal(30).clip(-3, 3))
    (flag,) = speed.noise_flags(noisy, [noisy])
    assert "vary by" in flag and "flagged above 10%" in flag
    stolen = blocks([1.0] * 10)
    for block in stolen:
        block["steal_share"] = 0.08
    (flag,) = speed.noise_flags(stolen, [stolen])
    assert "stole 8.0%" in flag
    # Independent block noise has no drift.
    assert speed.drift_share(noisy) < 0.5


def test_an_aa_control_that_does_not_read_one_fails():
    assert not speed.control_failed({"point": 1.01, "low": 0.98, "high": 1.04})
    assert speed.control_failed({"point": 0.80, "low": 0.75, "high": 0.85})  # excludes 1
    assert speed.control_failed({"point": 1.05, "low": 0.90, "high": 1.20})  # too far off
