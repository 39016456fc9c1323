"""Taking turns: how the processes of an interleaved comparison share the machine.

Every variant trains in its own process, and all of them are alive at once. The driver
(measure.schedule) hands out turns: a process trains one block of steps, reports it, and waits
until its next turn, so that no two timed blocks overlap and slow drift of the machine falls on
every variant alike. The two ends talk over a pair of pipes whose descriptors the driver passes
in the environment variable below; a process started without it (a plain pytest run, a suite's
own command line) never waits.

Messages, one JSON object per line, each with its kind:
    worker -> driver  {"kind": "ready"}                       set up, waiting for its first turn
                      {"kind": "turn", "turn": n, "blocks": [...], "epoch": {...} or null}
    driver -> worker  "go"                                    train until the next block ends
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

ENVIRONMENT = "MNIST_COMPARE_TURNS"


class Turns:
    """The worker's end: report, then wait for the driver's go."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read = os.fdopen(read_fd, "r", buffering=1)
        self._write = os.fdopen(write_fd, "w", buffering=1)
        self.taken = 0

    @classmethod
    def from_environment(cls) -> Turns | None:
        value = os.environ.pop(ENVIRONMENT, None)  # popped: one owner per process
        if not value:
            return None
        read_fd, write_fd = (int(fd) for fd in value.split(","))
        return cls(read_fd, write_fd)

    def send(self, message: dict) -> None:
        self._write.write(json.dumps(message) + "\n")
        self._write.flush()

    def wait(self) -> None:
        """Blocks until the driver says go. The driver closing its end means it has gone."""
        line = self._read.readline()
        if line.strip() != "go":
            raise SystemExit("the comparison driver has gone: stopping")
        self.taken += 1

    def ready(self) -> None:
        self.send({"kind": "ready"})
        self.wait()

    def yield_turn(self, blocks: Sequence[Mapping], epoch: Mapping | None) -> None:
        self.send({"kind": "turn", "turn": self.taken, "blocks": blocks, "epoch": epoch})
        self.wait()


_process_turns: Turns | None = None
_looked = False


def process_turns() -> Turns | None:
    """This process's turns, when a driver started it; None otherwise."""
    global _process_turns, _looked
    if not _looked:
        _process_turns, _looked = Turns.from_environment(), True
    return _process_turns
