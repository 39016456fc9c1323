"""Stopping a process and everything it started, the one way every scenario does it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

GRACE_SECONDS = 10.0  # after SIGTERM, before SIGKILL


def descendants(pid: int) -> list[int]:
    """Every process below pid (Linux /proc), children first found first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def started(pid: int) -> int | None:
    """When pid started (clock ticks after boot), None when it is gone: with its pid, it names
    one process, even after the pid is given to another."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def below(pid: int) -> dict[int, int | None]:
    """Every process below pid now, with when it started: what stop() is given as `seen`."""
    return {child: started(child) for child in descendants(pid)}


def exists(pid: int) -> bool:
    """Whether pid is a live process (a zombie has exited; its parent reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop(
    process: subprocess.Popen,
    grace: float = GRACE_SECONDS,
    seen: dict[int, int | None] | None = None,
) -> None:
    """SIGTERM a process started in a session of its own, its process group and every process
    below it (torchrun starts its ranks in sessions of their own, so the group alone does not
    reach them), then SIGKILL what is left after grace seconds. `seen` (from below()) names
    processes once below it: a rank whose torchrun was killed is re-parented, out of its reach,
    and goes too if it is still the process that was seen."""
    found = descendants(process.pid)
    found += [pid for pid, start in (seen or {}).items() if pid not in found and start is not None
              and started(pid) == start]  # fmt: skip
    if process.poll() is None:
        found.append(process.pid)
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal_number)  # what was orphaned in its group goes too
        alive = [pid for pid in found if _signal(pid, signal_number)]
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            process.poll()  # reaps the process once it has exited
            alive = [pid for pid in alive if exists(pid)]
            time.sleep(0.1)
        if not alive:
            break
    process.poll()


def _signal(pid: int, signal_number: int) -> bool:
    try:
        os.kill(pid, signal_number)
        return True
    except ProcessLookupError:
        return False
