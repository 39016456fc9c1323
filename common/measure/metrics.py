"""Measurements that are the same for every suite: accuracy and memory.

The harness, not the suite, computes these, so that every suite is judged by one ruler: accuracy
from predicted class ids on the same test images (lines of code: common/task/code.py).
"""

from __future__ import annotations

import contextlib
import resource
import sys
from pathlib import Path

import numpy as np


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    predictions = np.asarray(predictions)
    if predictions.shape != labels.shape:
        raise ValueError(f"predict returned shape {predictions.shape}, expected {labels.shape}")
    return float(np.mean(predictions == labels))


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_rss() -> None:
    """Restart the peak-memory mark (Linux), so a peak belongs to the phase that follows."""
    # Elsewhere the peak covers the whole process, which is still an upper bound.
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")


def peak_rss_mb() -> float:
    """Peak resident memory since reset_peak_rss() (Linux: VmHWM), else of the whole process."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
