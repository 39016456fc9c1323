"""Interleaved measurement: every variant's process alive at once, training in turns.

Each variant trains in a process of its own (its imports, thread pools and memory stay its own),
but the processes take turns on the machine: in every round each live process trains one block
of steps (common.measure.hooks) while the others wait, in an order shuffled afresh each round from a
recorded seed. No two timed blocks overlap, and the machine's drift over minutes falls on every
variant alike, so a ratio computed from blocks of the same round compares like with like.

Start-up is kept apart: the processes start one after another, and each imports its framework,
loads the data and warms up alone, before any block is timed. A round that would hold more than
MAX_ALIVE processes (the modes and overhead scenarios) is split into groups that run one after
another, and every group holds the reference job, so each ratio still pairs blocks of one round.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from common.measure import processes
from common.measure.turns import ENVIRONMENT
from common.task import records

MAX_ALIVE = 8  # processes alive at once: about 1.5 GB each with the convnet


@dataclass
class Job:
    """One process of a comparison: a variant in one mode or switch, in one group."""

    label: str
    command: Callable[[Path], list[str]]  # the process's command line, given its log's path
    environment: dict[str, str]
    log_path: Path
    group: int = 1
    reference: bool = False
    # the scenario's record of this process, updated as it runs (runs.json's entry)
    result: records.VariantRun = field(default_factory=lambda: cast(records.VariantRun, {}))


# What ends a run as Ctrl-C does: SIGHUP is a closed terminal or ssh session.
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    """SIGINT or SIGTERM reached the driver; `signal_number` says which."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number


def groups(
    jobs: list[Job], max_alive: int = MAX_ALIVE, family: Callable[[Job], str] | None = None
) -> list[list[Job]]:
    """Jobs split into groups of at most max_alive, each led by the reference job (the first
    job). Each group's copy of the reference is a job of its own, with its own log. Jobs of one
    family (adjacent in jobs: a suite and those compared with it) share a group where they fit
    in one, so that their ratios to each other pair blocks of one round too."""
    if len(jobs) <= max_alive or not jobs[0].reference:
        for job in jobs:
            job.group = 1
        return [jobs]
    reference, others = jobs[0], jobs[1:]
    size = max_alive - 1
    chunks: list[list[Job]] = []
    for _, members in itertools.groupby(others, family or id):
        kin = list(members)
        if chunks and len(chunks[-1]) + len(kin) <= size:
            chunks[-1] += kin
        else:
            chunks += [kin[i : i + size] for i in range(0, len(kin), size)]
    split = []
    for number, chunk in enumerate(chunks, 1):
        lead = reference
        if number > 1:
            lead = Job(
                label=f"{reference.label}@{number}",
                command=reference.command,
                environment=dict(reference.environment),
                log_path=reference.log_path.with_name(
                    f"{reference.log_path.stem}@{number}{reference.log_path.suffix}"
                ),
                reference=True,
                result={**reference.result, "label": f"{reference.label}@{number}"},
            )
        for job in (lead, *chunk):
            job.group = number
        split.append([lead, *chunk])
    return split


class Worker:
    """A job's process, with the two pipes of its turns (common.measure.turns)."""

    def __init__(self, job: Job, cwd: Path) -> None:
        self.job = job
        go_read, go_write = os.pipe()
        message_read, message_write = os.pipe()
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(job.log_path, "w")  # noqa: SIM115 - closed in finish()
        environment = {**job.environment, ENVIRONMENT: f"{go_read},{message_write}"}
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            job.command(job.log_path),
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=(go_read, message_write),
            start_new_session=True,  # the driver, not the terminal, ends it (see stop())
        )
        os.close(go_read)
        os.close(message_write)
        self._go = os.fdopen(go_write, "w", buffering=1)
        self._messages = os.fdopen(message_read, "r")
        self.turns = 0

    def message(self) -> dict | None:
        """The next message, or None when the process has closed its end (it has finished or
        crashed). A line that is not a message is reported as such, never raised."""
        line = self._messages.readline()
        if not line:
            return None
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            return {"kind": "garbled", "text": line[:200]}
        return message if isinstance(message, dict) else {"kind": "garbled", "text": line[:200]}

    def go(self) -> bool:
        try:
            self._go.write("go\n")
            self._go.flush()
        except (BrokenPipeError, ValueError):
            return False
        self.turns += 1
        return True

    def finish(self, timeout: float | None = None) -> int:
        for stream in (self._go, self._messages):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            code = self.process.wait(timeout)
        finally:
            self.log.close()
        self.job.result["seconds_alive"] = time.perf_counter() - self.started
        self.job.result["turns"] = self.turns
        return code

    def stop(self, grace: float = 5.0) -> None:
        """Ends the process and everything it started: SIGTERM, then SIGKILL after grace."""
        processes.stop(self.process, grace)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.finish(timeout=grace)


def _raise_interrupted(signal_number, frame):
    raise Interrupted(signal_number)


@contextlib.contextmanager
def interruptible():
    """Within it, SIGINT, SIGTERM and SIGHUP raise Interrupted (the handlers are put back). A
    signal the process was started with ignored stays ignored: `nohup` ignores SIGHUP so that a
    run outlives its terminal, and a shell's `cmd &` ignores SIGINT."""
    stopping = [s for s in STOPPING if signal.getsignal(s) != signal.SIG_IGN]
    previous = {s: signal.signal(s, _raise_interrupted) for s in stopping}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Group:
    """The processes of one group as they start, take their turns and exit."""

    def __init__(self, on_message, on_finished) -> None:
        self.on_message, self.on_finished = on_message, on_finished
        self.started: list[Worker] = []
        self.live: list[Worker] = []

    def start(self, job: Job, cwd: Path) -> None:
        """Starts a process and serves it until it waits for its first turn (or has exited)."""
        worker = Worker(job, cwd)
        self.started.append(worker)
        if self.serve(worker):
            self.live.append(worker)

    def serve(self, worker: Worker) -> bool:
        """Reads until the process waits for a turn (True) or has exited (False)."""
        while (message := worker.message()) is not None:
            self.on_message(worker.job, message)
            if message.get("kind") in ("ready", "turn"):
                return True
        self.on_finished(worker.job, worker.finish())
        return False

    def play(self, order: list[Worker]) -> None:
        """One round: each process in the order takes one turn."""
        for worker in order:
            if not worker.go():
                self.on_finished(worker.job, worker.finish())
                self.live.remove(worker)
            elif not self.serve(worker):
                self.live.remove(worker)

    def stop(self) -> None:
        for worker in self.started:
            if worker.process.poll() is None:
                worker.stop()


def run_interleaved(
    group: list[Job],
    *,
    cwd: Path,
    seed: int,
    on_message: Callable[[Job, dict], None],
    on_finished: Callable[[Job, int], None],
    schedule: list[dict] | None = None,
    stamp: dict | None = None,
) -> list[dict]:
    """Runs one group: start-up one process at a time, then rounds of turns until every process
    has exited. Returns the schedule, one record per round (appended to `schedule` as each
    starts, so an interrupted group keeps the rounds it ran; each with `stamp`'s keys). SIGINT,
    SIGTERM and SIGHUP end every process of the group and raise Interrupted; nothing is left
    running."""
    schedule = [] if schedule is None else schedule
    workers = _Group(on_message, on_finished)
    try:
        with interruptible():
            for job in group:  # start-up: one process at a time, nothing timed meanwhile
                workers.start(job, cwd)
            order_rng = random.Random(seed)
            while workers.live:
                order = list(workers.live)
                order_rng.shuffle(order)
                schedule.append(
                    {
                        "kind": "round",
                        "round": len(schedule) + 1,
                        "started": time.time(),
                        "order": [w.job.label for w in order],
                        **(stamp or {}),
                    }
                )
                workers.play(order)
    except BaseException:
        workers.stop()
        raise
    return schedule
