"""The comparison's scenarios, declared once each: what a scenario expands every variant into,
which benchmarks it runs, whether it runs the A/A control, and how many replicates it pools.

`python -m common compare` looks the chosen scenario up here; nothing else branches on it. The
command line's scenario options are made from these declarations (add_arguments).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from common import task
from common.task import RunConfig, SettingError, registry

# Every scenario's size preset: a first look, about 3 s of training per suite on a laptop's CPU.
QUICK = {"epochs": 1, "train_size": 4000}
TRAINING = "test_training.py"  # the timed training, in every scenario but time-to-accuracy
TRAINING_ONLY = (TRAINING,)  # what the A/A control runs: its ratio is all it is for


def _as_written(variant: registry.Variant, run: RunConfig, args) -> list[RunConfig]:
    return [run]


def _each_mode(variant: registry.Variant, run: RunConfig, args) -> list[RunConfig]:
    return [run.with_(mode=mode) for mode in (variant.modes or ("default",))]


def _each_switch(variant: registry.Variant, run: RunConfig, args) -> list[RunConfig]:
    return [run.with_(switch=switch) for switch in ("default", *variant.switches)]


def _each_seed(variant: registry.Variant, run: RunConfig, args) -> list[RunConfig]:
    return [run.with_(seed=run.seed + number) for number in range(args.seeds)]


def _no_options(run: RunConfig, args) -> list[str]:
    return []


def _unchanged(run: RunConfig, args) -> RunConfig:
    return run


def _target(run: RunConfig, args) -> RunConfig:
    if not 0 < args.target_accuracy <= 1:
        raise SettingError(f"target accuracy must be in (0, 1], got {args.target_accuracy}")
    if args.max_epochs < 1:
        raise SettingError(f"max epochs must be a whole number >= 1, got {args.max_epochs}")
    return run.with_(epochs=args.max_epochs)  # the cap: a suite stops at the target


def _target_options(run: RunConfig, args) -> list[str]:
    return ["--target-accuracy", str(args.target_accuracy), "--max-epochs", str(run.epochs)]


def _two_seeds_or_more(run: RunConfig, args) -> RunConfig:
    if args.seeds < 2:
        raise SettingError(f"seeds must be a whole number >= 2, got {args.seeds}")
    return run


@dataclass(frozen=True)
class Scenario:
    name: str  # as runs.json records it
    option: str | None  # the command-line option that chooses it; None: the default comparison
    argument: Mapping = field(default_factory=dict)  # the option's add_argument keywords
    expand: Callable[[registry.Variant, RunConfig, argparse.Namespace], list[RunConfig]] = (
        _as_written  # the runs (one process each) a variant becomes
    )
    tests: tuple[str, ...] = TRAINING_ONLY  # the benchmarks of benchmarks/ each process runs
    options: Callable[[RunConfig, argparse.Namespace], list[str]] = _no_options  # their options
    settings: Mapping = field(default_factory=dict)  # run knobs it sets, before the user's own
    configure: Callable[[RunConfig, argparse.Namespace], RunConfig] = _unchanged  # checks, last
    control: bool = True  # a second process of the reference, whose ratio must read 1
    replicates: int = 1  # independent sets of processes pooled into each interval, by default
    replicable: bool = True  # whether --replicates may add more
    seeded: bool = False  # a job's label names its seed
    more: tuple[tuple[str, Mapping], ...] = ()  # options that belong to it (--max-epochs)

    @property
    def dest(self) -> str | None:
        """The option's attribute on the parsed arguments (--target-accuracy: target_accuracy)."""
        return self.option.removeprefix("--").replace("-", "_") if self.option else None

    def value(self, args: argparse.Namespace):
        """What the command line gave its option (None or False where it did not)."""
        return getattr(args, self.dest) if self.dest else None

    def given(self, args: argparse.Namespace) -> bool:
        value = self.value(args)
        return value is not None and value is not False  # --seeds 0 is given, and wrong


SCENARIOS = (
    # the default: every variant as written, 2 epochs on full MNIST, with the reference's
    # feeding floor and the data-loading benchmark; two replicates, so that an interval holds
    # what differs between processes
    Scenario(
        "comparison",
        None,
        tests=(TRAINING, "test_feeding_floor.py", "test_data_loading.py"),
        replicates=2,
    ),
    Scenario(
        "modes",
        "--modes",
        {
            "action": "store_true",
            "help": "every suite in each of its execution modes (eager, graph, xla, compile)",
        },
        expand=_each_mode,
    ),
    # the tiny linear model at a small batch on one thread, one epoch of full MNIST (7,500
    # steps), where what a step costs is the framework's own work (common/task)
    Scenario(
        "overhead",
        "--overhead",
        {
            "action": "store_true",
            "help": "framework overhead per step: the tiny linear model, batch "
            f"{task.OVERHEAD_BATCH_SIZE}, 1 thread, each suite as written and with each switch",
        },
        expand=_each_switch,
        settings={
            "model": "linear",
            "batch_size": task.OVERHEAD_BATCH_SIZE,
            "threads": 1,
            "epochs": 1,
        },
    ),
    Scenario(
        "time-to-accuracy",
        "--target-accuracy",
        {
            "type": float,
            "help": "time to reach this test accuracy, e.g. 0.99 (checked after every epoch)",
        },
        tests=("test_time_to_accuracy.py",),
        options=_target_options,
        configure=_target,
        control=False,
        replicable=False,
        more=(
            (
                "--max-epochs",
                {"type": int, "default": 15, "help": "time-to-accuracy: epoch cap (default 15)"},
            ),
        ),
    ),
    # accuracy, not speed, is the point: no A/A control, one reference at the base seed
    Scenario(
        "seeds",
        "--seeds",
        {
            "type": int,
            "help": "accuracy over seeds: each variant trained with N seeds "
            "(--seed, --seed + 1, ...)",
        },
        expand=_each_seed,
        configure=_two_seeds_or_more,
        control=False,
        replicable=False,
        seeded=True,
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
CHOSEN_BY_OPTION = [scenario for scenario in SCENARIOS if scenario.option]


def add_arguments(group: argparse._ArgumentGroup) -> None:
    """Each scenario's option, and the options that belong to one (--max-epochs)."""
    for scenario in CHOSEN_BY_OPTION:
        group.add_argument(str(scenario.option), **scenario.argument)
        for option, keywords in scenario.more:
            group.add_argument(option, **keywords)


def chosen(args: argparse.Namespace) -> Scenario:
    """The scenario the command line chose (the default comparison when none); more than one
    is a SettingError."""
    given = [scenario for scenario in CHOSEN_BY_OPTION if scenario.given(args)]
    if len(given) > 1:
        *others, last = [str(s.option) for s in CHOSEN_BY_OPTION]
        raise SettingError(f"choose one scenario: {', '.join(others)} or {last}")
    return given[0] if given else BY_NAME["comparison"]
