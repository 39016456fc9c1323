"""How far a comparison has come, while it runs: one live line in a terminal (a tqdm bar over
every process's turns, with the time left), a plain line every 10 seconds elsewhere (CI, a log).

Each process takes one turn per timed block, so the turns a run will take are known before it
starts: processes x epochs x blocks per epoch (for time to accuracy, the epoch cap's: an upper
bound). The epoch lines the driver prints stay as they are.
"""

from __future__ import annotations

import math
import sys
import threading
import time

from tqdm import tqdm

from common.task import TRAIN_IMAGES, RunConfig

EVERY_SECONDS = 10.0  # a plain line at least this often where there is no terminal


def expected_turns(run: RunConfig, processes: int, block_steps: int) -> int:
    steps = math.ceil((run.train_size or TRAIN_IMAGES) / run.batch_size)
    return processes * run.epochs * math.ceil(steps / block_steps)


class Heartbeat:
    """Counts the turns the processes report and shows how far the run is."""

    def __init__(self, total: int, live: bool | None = None) -> None:
        self.total, self.turns, self.finished = total, 0, 0
        self.started = time.monotonic()
        live = sys.stderr.isatty() if live is None else live
        self.bar = tqdm(total=total, unit="turn", file=sys.stderr, leave=False) if live else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        if self.bar is not None:
            self.bar.close()

    def tick(self) -> None:
        self.turns += 1
        if self.bar is not None:
            self.bar.update(1)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        done = min(self.turns / self.total, 1.0) if self.total else 0.0
        left = f", about {_clock(elapsed * (1 - done) / done)} left" if done > 0 else ""
        return (
            f"  progress: {done:.0%} of the turns ({self.turns:,}/{self.total:,}), "
            f"{_clock(elapsed)} elapsed{left}"
        )

    def _beat(self) -> None:
        while not self._stop.wait(EVERY_SECONDS):
            if self.bar is not None:
                self.bar.refresh()  # its elapsed time moves on between turns too
            else:
                print(self.line(), flush=True)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"
