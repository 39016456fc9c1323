"""Speed figures with their uncertainty, from the timed blocks of an interleaved run.

Every process records its training as blocks of steps (measure.hooks), each with the turn it ran
in (measure.schedule). Within one group of a run, the n-th turn of every process belongs to the
same round, so the reference's block and a variant's block of one round ran minutes apart at
most, in an order shuffled per round. From these pairs:

- speed ratio to the reference: the median over rounds of the reference's block time over the
  variant's (> 1: the variant trains faster). The median, because a shared VM now and then
  stalls one block by a second or more (a neighbour, a page-cache flush): one such block moves
  a mean by several percent, the median not at all. Beside it, the all-in ratio (the two
  processes' seconds summed over all paired blocks) keeps every stall, the framework's own
  occasional costs among them (garbage collection, per-epoch work);
- overhead per step: the median over rounds of the variant's block time less the reference's,
  over the block's steps (microseconds);
- each with a 95% confidence interval from a paired bootstrap over rounds (scipy.stats.bootstrap,
  BCa), and a verdict: faster, slower or indistinguishable at that confidence;
- the slow phase (phases): a pair whose epoch-1 rounds and later rounds have disjoint intervals
  keeps its later rounds only, and the report says so;
- replicates (pool): each figure of a run with several replicates (fresh sets of processes) is
  their mean, with an interval that holds the process-to-process variation one pair of
  processes cannot see, however many rounds it runs;
- start-up apart from steady state: a process's first block holds what its first steps do once
  (Keras tracing its step, XLA or torch.compile compiling, oneDNN choosing kernels); its cost is
  that block's time beyond what the same steps take in steady state.

A run is flagged as noisy when the reference's own steady per-step times vary by more than
NOISY_CV, when the hypervisor stole more than NOISY_STEAL of the CPUs' time, or when the A/A
control (a second process of the reference, measured like a variant) does not read 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 4999
BOOTSTRAP_SEED = 0  # the intervals of a run are reproducible from its blocks
NOISY_CV = 0.10
NOISY_STEAL = 0.02
CONTROL_TOLERANCE = 0.03
# Minor page faults per step beyond which a process's steady blocks are flagged: with the
# allocator fixed (common/measure/allocator.py) every suite here takes 0-2 a step; a process whose
# malloc maps and unmaps its per-step buffers takes thousands.
FAULTY_STEP = 100


@dataclass(frozen=True)
class Bounds:
    """A figure and its 95% interval."""

    point: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def as_dict(self) -> dict:
        return {
            "point": self.point,
            "low": self.low,
            "high": self.high,
            "half_width": self.half_width,
        }


@dataclass(frozen=True)
class Interval(Bounds):
    """Over the rounds of one pair of processes."""

    pairs: int  # rounds that went into it

    def as_dict(self) -> dict:
        return {**super().as_dict(), "pairs": self.pairs}


def steady(blocks: list[dict]) -> list[dict]:
    """The blocks after the first: the first holds the one-time costs of the first steps."""
    return [b for b in blocks if b["index"] > 0]


def paired(reference: list[dict], variant: list[dict]) -> tuple[np.ndarray, ...]:
    """(reference seconds, variant seconds, steps) of the steady blocks that ran in the same
    round (the same turn) over the same number of steps."""
    by_turn = {b["turn"]: b for b in steady(reference) if b.get("turn") is not None}
    rows = [
        (by_turn[b["turn"]]["seconds"], b["seconds"], b["steps"])
        for b in steady(variant)
        if b.get("turn") in by_turn and by_turn[b["turn"]]["steps"] == b["steps"]
    ]
    if not rows:
        return np.empty(0), np.empty(0), np.empty(0)
    return tuple(np.array(column, dtype=float) for column in zip(*rows, strict=True))


def _interval(samples: tuple[np.ndarray, ...], statistic) -> Interval | None:
    pairs = len(samples[0])
    if pairs < 3:
        return None
    point = float(statistic(*samples, axis=-1))
    if np.allclose(samples[0], samples[0][0]) and np.allclose(samples[1], samples[1][0]):
        return Interval(point, point, point, pairs)  # no spread: nothing to resample
    result = stats.bootstrap(
        samples,
        statistic,
        paired=True,
        vectorized=True,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="BCa",
        random_state=np.random.default_rng(BOOTSTRAP_SEED),
    )
    low, high = result.confidence_interval
    if not (np.isfinite(low) and np.isfinite(high)):  # BCa degenerates on tiny samples
        low, high = np.percentile(result.bootstrap_distribution, [2.5, 97.5])
    return Interval(point, float(low), float(high), pairs)


def _median_ratio(reference, variant, steps, axis=-1):
    return np.median(reference / variant, axis=axis)


def _all_in_ratio(reference, variant, steps, axis=-1):
    return np.sum(reference, axis=axis) / np.sum(variant, axis=axis)


def _overhead_us(reference, variant, steps, axis=-1):
    return np.median((variant - reference) / steps, axis=axis) * 1e6


def speed_ratio(reference: list[dict], variant: list[dict]) -> Interval | None:
    """The variant's training speed relative to the reference (> 1: faster): the median of the
    rounds' ratios, with its interval."""
    return _interval(paired(reference, variant), _median_ratio)


def all_in_ratio(reference: list[dict], variant: list[dict]) -> Interval | None:
    """The ratio of the summed seconds of all paired blocks, stalls included."""
    return _interval(paired(reference, variant), _all_in_ratio)


def overhead_per_step(reference: list[dict], variant: list[dict]) -> Interval | None:
    """Microseconds per step that the variant spends beyond the reference (the median of the
    rounds' differences), with its interval."""
    return _interval(paired(reference, variant), _overhead_us)


# --- the slow phase ----------------------------------------------------------------------------
PHASE_MIN_PAIRS = 10  # rounds each phase needs before its interval is trusted


@dataclass(frozen=True)
class Phases:
    """A pair's early and late rounds, each with its speed ratio, and which of them the figures
    use: the late ones alone when the two intervals are disjoint (a slow phase), else all."""

    early: Interval | None
    late: Interval | None
    split: str  # "epoch" (epoch 1 against the later ones) or "half" (a one-epoch run)
    slow_phase: bool

    def as_dict(self) -> dict:
        return {
            "kind": "phase-check",
            "early": self.early.as_dict() if self.early else None,
            "late": self.late.as_dict() if self.late else None,
            "split": self.split,
            "slow_phase": self.slow_phase,
            "used": "late" if self.slow_phase else "all",
        }


def _late_turns(variant: list[dict]) -> tuple[set, str]:
    """The turns of the variant's later phase: epochs 2 onwards, or a one-epoch run's second
    half of its steady blocks."""
    chosen = [b for b in steady(variant) if b.get("turn") is not None]
    if len({b.get("epoch", 1) for b in chosen}) > 1:
        return {b["turn"] for b in chosen if b.get("epoch", 1) > 1}, "epoch"
    turns = sorted(b["turn"] for b in chosen)
    return set(turns[len(turns) // 2 :]), "half"


def phases(reference: list[dict], variant: list[dict]) -> tuple[list[dict], Phases | None]:
    """The phase rule. A process that runs slow for a while and then normal (its first epoch
    after a boot, say) moves its ratio by more than any interval over its rounds admits. The
    pair's rounds are split into early and late; when the two phases' intervals do not
    overlap, the figures use the late rounds alone, and the report says so. Returns the
    variant's blocks to use and the check (None when a phase has too few rounds to judge)."""
    late_turns, split = _late_turns(variant)
    late = [b for b in variant if b["index"] == 0 or b.get("turn") in late_turns]
    early = [b for b in variant if b["index"] == 0 or b.get("turn") not in late_turns]
    if min(len(steady(late)), len(steady(early))) < PHASE_MIN_PAIRS:
        return variant, None
    early_ratio, late_ratio = speed_ratio(reference, early), speed_ratio(reference, late)
    if early_ratio is None or late_ratio is None:
        return variant, None
    disjoint = early_ratio.high < late_ratio.low or late_ratio.high < early_ratio.low
    return (late if disjoint else variant), Phases(early_ratio, late_ratio, split, disjoint)


# --- replicates: process-to-process variation ---------------------------------------------------
@dataclass(frozen=True)
class Pooled(Bounds):
    """A figure over independent replicates (each a fresh set of processes, the reference's
    among them), with an interval that holds process-to-process variation as well as the
    rounds': see pool()."""

    replicates: tuple[float, ...]  # each replicate's own point
    df: int  # degrees of freedom of the between-replicate variance (0: rounds only)
    between_sd: float  # replicates' spread, on the figure's scale (log for ratios)

    def as_dict(self) -> dict:
        return {
            **super().as_dict(),
            "replicates": list(self.replicates),
            "df": self.df,
            "between_sd": self.between_sd,
            "process_variation": self.df > 0,
        }


def pool(figures: dict, log: bool = True) -> dict:
    """Per key (a row of the table), its replicates' intervals pooled into one.

    A replicate's figure is one draw of what is fixed for its processes' lifetime (memory
    layout, the allocator's state, where the host put its pages): Stabilizer's random effect
    (Curtsinger and Berger, ASPLOS 2013). On the log scale (ratios) or as they are
    (microseconds), per key: the mean of its R replicates, with the variance of that mean
    taken as the largest of (a) the replicates' sample variance pooled over every key of the
    run (a one-way random-effects estimate with sum(R - 1) degrees of freedom: every row's
    processes vary alike), (b) the key's own sample variance, (c) the replicates' mean
    within-replicate variance from their bootstrap intervals; over R, with Student's t at the
    pooled degrees of freedom. With one replicate it is that replicate's interval over rounds,
    and process_variation is False. tests/test_speed.py measures the coverage on simulated
    runs with a process effect and a slow phase."""
    forward, back = (np.log, np.exp) if log else (lambda x: np.asarray(x, float), lambda x: x)
    drawn = _draws(figures, forward)
    df = sum(len(p) - 1 for p, _, _ in drawn.values())
    shared = (
        sum(float(np.var(p, ddof=1)) * (len(p) - 1) for p, _, _ in drawn.values() if len(p) > 1)
        / df
        if df
        else 0.0
    )
    pooled = {}
    for key, (points, within, intervals) in drawn.items():
        own = float(np.var(points, ddof=1)) if len(points) > 1 else 0.0
        if df:
            variance = max(shared, own, within) / len(points)
            half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * variance**0.5
            centre = float(np.mean(points))
            low, high = float(back(centre - half)), float(back(centre + half))
        else:  # one replicate: its interval over rounds, as it is (BCa, not symmetric)
            centre = float(points[0])
            low, high = intervals[0].low, intervals[0].high
        pooled[key] = Pooled(
            point=float(back(centre)),
            low=low,
            high=high,
            replicates=tuple(i.point for i in intervals),
            df=df,
            between_sd=shared**0.5,
        )
    return pooled


def _draws(figures: dict, forward) -> dict:
    """Per key: its replicates' points on the scale, their mean within-replicate variance (from
    the bootstrap intervals' half-widths), and the intervals themselves."""
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    drawn = {}
    for key, intervals in figures.items():
        intervals = [i for i in intervals if i is not None]
        if not intervals:
            continue
        points = forward(np.array([i.point for i in intervals]))
        highs = forward(np.array([i.high for i in intervals]))
        lows = forward(np.array([i.low for i in intervals]))
        drawn[key] = (points, float(np.mean(((highs - lows) / (2 * z)) ** 2)), intervals)
    return drawn


def verdict(
    interval: Bounds | None,
    neutral: float = 1.0,
    above: str = "faster",
    below: str = "slower",
) -> str:
    """What the interval says at its confidence: above, below, or indistinguishable."""
    if interval is None:
        return "not measured"
    if interval.low > neutral:
        return above
    if interval.high < neutral:
        return below
    return "indistinguishable"


def per_step(blocks: list[dict]) -> Interval | None:
    """Steady-state seconds per step, with a bootstrap interval over blocks (absolute: it holds
    only with its machine, date and threads)."""
    chosen = steady(blocks)
    seconds = np.array([b["seconds"] for b in chosen], dtype=float)
    steps = np.array([b["steps"] for b in chosen], dtype=float)
    return _interval(
        (seconds, steps), lambda s, n, axis=-1: np.sum(s, axis=axis) / np.sum(n, axis=axis)
    )


def start_up(blocks: list[dict]) -> dict | None:
    """The first block, and what it cost beyond the same steps in steady state."""
    if not blocks:
        return None
    first, rest = blocks[0], steady(blocks)
    steady_step = sum(b["seconds"] for b in rest) / sum(b["steps"] for b in rest) if rest else None
    return {
        "first_block_seconds": first["seconds"],
        "first_block_steps": first["steps"],
        "start_up_seconds": first["seconds"] - first["steps"] * steady_step
        if steady_step is not None
        else None,
    }


def machine_state(blocks: list[dict]) -> dict:
    """The machine over a process's blocks: mean steal share, CPU per wall second, load."""
    if not blocks:
        return {}

    def mean(key):
        values = [b[key] for b in blocks if b.get(key) is not None]
        return float(np.mean(values)) if values else None

    return {
        "steal_share": mean("steal_share"),
        "steal_share_max": max(b.get("steal_share") or 0.0 for b in blocks),
        "cpu_per_wall": mean("cpu_per_wall"),
        "load_1min": mean("load_1min"),
    }


def variation(blocks: list[dict]) -> float | None:
    """Coefficient of variation of the steady blocks' seconds per step."""
    per = [b["seconds"] / b["steps"] for b in steady(blocks)]
    if len(per) < 2:
        return None
    return float(np.std(per, ddof=1) / np.mean(per))


def drift_share(blocks: list[dict]) -> float | None:
    """How much of the block-to-block variance is slow drift rather than block noise: 1 minus
    the ratio of half the mean squared successive difference to the variance (von Neumann).
    Near 0: independent noise; near 1: the level wanders slowly."""
    per = np.array([b["seconds"] / b["steps"] for b in steady(blocks)], dtype=float)
    if len(per) < 3 or np.var(per, ddof=1) == 0:
        return None
    successive = np.mean(np.diff(per) ** 2) / 2
    return float(1 - successive / np.var(per, ddof=1))


def control_failed(ratio: dict) -> bool:
    """An A/A control (the reference against a second process of itself) that does not read 1:
    its interval excludes 1, or its point is CONTROL_TOLERANCE or more away."""
    return not ratio["low"] <= 1 <= ratio["high"] or abs(ratio["point"] - 1) >= CONTROL_TOLERANCE


def noise_flags(reference: list[dict], everyone: list[list[dict]]) -> list[str]:
    """Why this run's figures should be read with care; empty when nothing was noticed."""
    flags = []
    cv = variation(reference)
    if cv is not None and cv > NOISY_CV:
        flags.append(
            f"the reference's own steady blocks vary by {cv:.0%} (coefficient of variation; "
            f"flagged above {NOISY_CV:.0%})"
        )
    steal = [b.get("steal_share") or 0.0 for blocks in everyone for b in blocks]
    if steal and float(np.mean(steal)) > NOISY_STEAL:
        flags.append(
            f"the hypervisor stole {np.mean(steal):.1%} of the CPUs' time during timed blocks "
            f"(flagged above {NOISY_STEAL:.0%})"
        )
    return flags
