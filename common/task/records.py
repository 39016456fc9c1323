"""The records this project writes, typed: each says what it is with an explicit `kind`.

A training record is what one process measured of one variant (pytest-benchmark's extra_info
holds it); runs.json is a comparison's record of its processes; the figures record
(report/figures.json) is what the report renders from. Readers index these keys directly: a
key marked NotRequired is one that older records or some scenarios lack.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class MachineState(TypedDict):
    """The machine over a stretch of time (common/measure/machine.py)."""

    steal_share: float  # of all CPUs' time, taken by the hypervisor
    cpu_per_wall: float  # this process's CPU seconds per wall second
    load_1min: float | None
    page_faults: int  # this process's minor page faults


class Block(MachineState):
    """One timed block of training steps (common/measure/hooks.py)."""

    kind: Literal["block"]
    index: int
    epoch: int
    steps: int
    seconds: float
    turn: int | None  # the turn it ran in, in an interleaved comparison


class Epoch(TypedDict):
    kind: Literal["epoch"]
    epoch: int  # from 1
    train_loss: float
    test_accuracy: float
    train_seconds: float
    eval_seconds: float


class LineCounts(TypedDict):
    """A suite's lines of code (common/task/code.py): radon's logical lines, docstrings out."""

    loc: int  # the example: the file above its harness section (the headline figure)
    sloc: int  # the example's physical source lines
    harness_loc: int
    file_loc: int


class TimeToAccuracy(TypedDict):
    """The time-to-accuracy scenario's result (DAWNBench-style)."""

    target_accuracy: float
    reached: bool
    epoch_reached: int | None
    epochs_cap: int
    seconds_to_target: float | None
    eval_seconds_to_target: float


class RunIdentity(TypedDict):
    """Which variant ran, with which settings."""

    suite: str
    variant: str
    framework: str
    framework_version: str
    mode: str
    model: str
    batch_size: int
    switch: str
    seed: int
    init: str
    allocator: dict  # what measure/allocator.py set, or why nothing
    threads: int
    dataset: str


class TrainingFigures(TypedDict):
    """What the timed training did."""

    train_size: int
    test_size: int
    epochs: int
    rounds: int
    epoch_history: list[Epoch]
    train_seconds: float
    eval_seconds: float
    images_per_second: float
    peak_rss_mb: float
    warm_up_seconds: float
    blocks: list[Block]


class Evaluation(TypedDict):
    """The trained model's test accuracy, and its save and reload."""

    backend: str
    device: str
    parameters: int
    test_accuracy: float
    predict_seconds: float  # both predictions: the trained and the reloaded model
    predict_images_per_second: float
    checkpoint_bytes: int
    checkpoint_seconds: float  # save and load
    roundtrip_identical: bool


class TrainingRecord(RunIdentity, TrainingFigures, Evaluation, LineCounts):
    """One variant trained, evaluated, saved and reloaded in one process (measure/runner.py);
    pytest-benchmark's extra_info holds it."""

    kind: Literal["training-record"]
    import_seconds: float
    data_seconds: float | None
    block_steps: int
    interleaved: bool
    python: str
    # the time-to-accuracy scenario's (TimeToAccuracy)
    target_accuracy: NotRequired[float]
    reached: NotRequired[bool]
    epoch_reached: NotRequired[int | None]
    epochs_cap: NotRequired[int]
    seconds_to_target: NotRequired[float | None]
    eval_seconds_to_target: NotRequired[float]


Status = Literal["pending", "ok", "failed", "skipped", "interrupted"]


class VariantRun(TypedDict):
    """A process's entry in runs.json: which variant, how it ended, where its files are."""

    kind: Literal["variant-run"]
    label: str
    variant: str
    suite: str
    mode: str
    switch: str
    reference: bool
    control: bool
    replicate: int
    status: Status
    error: NotRequired[str | None]
    group: NotRequired[int]
    json: NotRequired[str]
    log: NotRequired[str]
    seconds_alive: NotRequired[float]
    turns: NotRequired[int]
    blocks: NotRequired[list[Block]]  # what a process that did not finish had reported


class ComparisonRun(TypedDict):
    """runs.json: a comparison, its settings, its schedule and every process."""

    kind: Literal["comparison-run"]
    started: str
    finished: str | None
    command: str
    scenario: str
    settings: dict
    schedule: dict
    variants: list[VariantRun]
    split: NotRequired[dict]


class RowFigures(TypedDict):
    """One row of the report's table: a variant in a mode (and switch), its speed figures."""

    kind: Literal["row-figures"]
    label: str
    variant: str
    mode: str
    switch: str
    control: bool  # the A/A control: a second process of the reference
    group_copy: bool  # the reference's copy that leads a later group
    speed: dict  # ratio, all-in, µs per step...: each a point with its interval, and a verdict


class RunFigures(TypedDict):
    """One run's figures, per row pooled over its replicates, with the run's flags."""

    kind: Literal["run-figures"]
    run: str
    scenario: str
    started: str | None
    machine: dict
    replicates: int
    confidence: float
    rows: list[RowFigures]
    flags: list
    phase_notes: list


class ComparisonFigures(TypedDict):
    """report/figures.json: every speed figure the report prints, of one run or several."""

    kind: Literal["comparison-figures"]
    runs: list[RunFigures]
