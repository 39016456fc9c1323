"""The harness's side of the training loop: what a suite reports while it trains.

Every suite calls the same four methods from its framework's own callback mechanism (a Keras
Callback, a Lightning Callback, Ignite events, a fastai Callback, or plain lines in a loop), so
the harness can time training alone, record per-epoch history, and stop a run early.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from common import task
from common.measure import machine
from common.measure.turns import Turns
from common.task import records


def epoch_line(epoch: Mapping, epochs: int | None = None) -> str:
    """The line printed after each epoch, by a suite's own run and by the driver alike."""
    number = f"{epoch['epoch']}/{epochs}" if epochs else f"{epoch['epoch']}"
    return (
        f"epoch {number}  loss {epoch['train_loss']:.4f}  test accuracy "
        f"{epoch['test_accuracy']:.2%}  {epoch['train_seconds']:.1f} s"
    )


class TrainingClock:
    """perf_counter that stands still while paused: validation inside fit is not training time.

    pytest-benchmark times with it through `training_clock` below
    (`--benchmark-timer common.measure.hooks.training_clock`).
    """

    def __init__(self) -> None:
        self.paused_seconds = 0.0
        self._paused_at: float | None = None

    def __call__(self) -> float:
        now = time.perf_counter()
        pending = now - self._paused_at if self._paused_at is not None else 0.0
        return now - self.paused_seconds - pending

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.perf_counter()

    def resume(self) -> None:
        if self._paused_at is not None:
            self.paused_seconds += time.perf_counter() - self._paused_at
            self._paused_at = None


TRAINING_CLOCK = TrainingClock()


def training_clock() -> float:
    """The process's training clock, as a plain function for pytest-benchmark's timer option."""
    return TRAINING_CLOCK()


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite, or the model ended at chance accuracy."""


def check_trained(test_accuracy: float, steps: int) -> None:
    """Raises TrainingDiverged for a model at chance after enough steps to have learned."""
    if steps >= task.UNTRAINED_STEPS and test_accuracy < task.UNTRAINED_BELOW:
        raise TrainingDiverged(
            f"test accuracy {test_accuracy:.2%} after {steps:,} steps is chance "
            f"(1 in {task.NUM_CLASSES}): the model did not train"
        )


@dataclass
class TrainingHooks:
    """Passed to a suite's train(); collects what it reports.

    target_accuracy: stop after the first epoch whose test accuracy reaches it.
    record_steps: keep every step's loss (for the equivalence tests; off in benchmarks).
    log: where to write one line per epoch (None: silent).
    block_steps: split training into timed blocks of this many steps (a block also ends with its
        epoch's training); each block is recorded in `blocks` with the machine's state over it.
    turns: in an interleaved comparison, wait for a turn after every block (common.measure.turns).
    """

    epochs: int
    clock: TrainingClock = field(default_factory=lambda: TRAINING_CLOCK)
    target_accuracy: float | None = None
    record_steps: bool = False
    log: Callable[[str], None] | None = None
    block_steps: int | None = None
    turns: Turns | None = None
    history: list[records.Epoch] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    blocks: list[records.Block] = field(default_factory=list)
    steps: int = 0

    def __post_init__(self) -> None:
        self._epoch_started = self.clock()
        self._eval_started = 0.0
        self._eval_seconds = 0.0
        self._unreported: list[records.Block] = []
        self._start_block()

    # --- timed blocks ------------------------------------------------------------------------
    def _start_block(self) -> None:
        self._block_steps = 0
        self._block_clock = self.clock()
        self._block_machine = machine.snapshot()

    def _end_block(self) -> None:
        if self._block_steps == 0:
            return
        float(self._last_loss)  # waits for the last step where a backend runs ahead of Python
        seconds = self.clock() - self._block_clock
        block: records.Block = {
            "kind": "block",
            "index": len(self.blocks),
            "epoch": len(self.history) + 1,
            "steps": self._block_steps,
            "seconds": seconds,
            "turn": self.turns.taken if self.turns else None,
            **machine.between(self._block_machine, machine.snapshot()),
        }
        self.blocks.append(block)
        self._unreported.append(block)
        self._block_steps = 0

    def _take_turn(self, epoch: records.Epoch | None = None) -> None:
        if self.turns is not None:
            self.clock.pause()
            self.turns.yield_turn(self._unreported, epoch)
            self.clock.resume()
        self._unreported = []
        self._start_block()

    # --- what a suite calls --------------------------------------------------------------------
    def batch_end(self, loss) -> None:
        """After each optimizer step, with that step's loss (a float or a 0-d tensor)."""
        self.steps += 1
        self._block_steps += 1
        self._last_loss = loss
        if self.record_steps:
            self.step_losses.append(float(loss))
        if self.block_steps and self._block_steps >= self.block_steps:
            self._end_block()
            self._take_turn()

    def validation_start(self) -> None:
        self._end_block()
        self.clock.pause()
        self._eval_started = time.perf_counter()

    def validation_end(self) -> None:
        self._eval_seconds += time.perf_counter() - self._eval_started
        self.clock.resume()

    def epoch_end(self, epoch: int, train_loss: float, test_accuracy: float) -> bool:
        """After each epoch's evaluation. epoch counts from 1. Returns True when training should
        stop (the target accuracy was reached)."""
        now = self.clock()
        train_loss, test_accuracy = float(train_loss), float(test_accuracy)
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"training loss is {train_loss} after epoch {epoch}")
        self.history.append(
            {
                "kind": "epoch",
                "epoch": epoch,
                "train_loss": train_loss,
                "test_accuracy": test_accuracy,
                "train_seconds": now - self._epoch_started,
                "eval_seconds": self._eval_seconds,
            }
        )
        self._epoch_started, self._eval_seconds = now, 0.0
        if self.log:
            self.log(epoch_line(self.history[-1], self.epochs))
        self._end_block()  # a suite that validates outside validation_start/end
        self._take_turn(self.history[-1])
        self._epoch_started = self.clock()
        return self.target_accuracy is not None and test_accuracy >= self.target_accuracy

    @property
    def train_seconds(self) -> float:
        return sum(h["train_seconds"] for h in self.history)

    @property
    def eval_seconds(self) -> float:
        return sum(h["eval_seconds"] for h in self.history)
