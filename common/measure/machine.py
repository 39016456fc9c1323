"""The machine's state over a timed block: what else was taking the CPU while a variant trained.

Read beside every block, so that a report can flag a run whose figures the machine disturbed:
the share of the CPUs' time the hypervisor stole (/proc/stat's steal column), the process's CPU
time against its wall time (a process given 2 threads that gets 2 cores reads about 2.0), the
load average, and the process's page faults per step: on a VM whose host backs guest memory
lazily (and takes back what the guest frees, virtio-balloon's free page reporting), a fault on
a fresh page costs several times what it costs on bare metal, and the guest sees that time as
its own CPU time, so only the count reveals it (see common/measure/speed.py, the phase rule).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from common.task import records

PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class Snapshot:
    wall: float  # time.perf_counter()
    cpu: float  # this process's user + system seconds, all its threads
    steal: int  # jiffies stolen from all CPUs since boot (0 where /proc/stat is absent)
    total: int  # all jiffies of all CPUs since boot
    faults: int  # this process's minor page faults since it started


def _cpu_jiffies() -> tuple[int, int]:
    try:
        first = PROC_STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return 0, 0
    counts = [int(x) for x in first[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    steal = counts[7] if len(counts) > 7 else 0
    return steal, sum(counts[:8])


def snapshot() -> Snapshot:
    steal, total = _cpu_jiffies()
    times = os.times()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    return Snapshot(time.perf_counter(), times.user + times.system, steal, total, faults)


def between(start: Snapshot, end: Snapshot) -> records.MachineState:
    """The machine's state from one snapshot to the next."""
    wall = end.wall - start.wall
    jiffies = end.total - start.total
    return {
        "steal_share": (end.steal - start.steal) / jiffies if jiffies > 0 else 0.0,
        "cpu_per_wall": (end.cpu - start.cpu) / wall if wall > 0 else 0.0,
        "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "page_faults": end.faults - start.faults,
    }
