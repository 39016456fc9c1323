"""Measurements that are the same for every suite: accuracy, lines of code, memory, throughput.

The harness, not the suite, computes these, so that every suite is judged by one ruler: accuracy
from predicted class ids on the same test images, lines counted by radon on the suite's file.
"""

from __future__ import annotations

import ast
import contextlib
import resource
import sys
from pathlib import Path

import numpy as np
from radon.raw import analyze


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    predictions = np.asarray(predictions)
    if predictions.shape != labels.shape:
        raise ValueError(f"predict returned shape {predictions.shape}, expected {labels.shape}")
    return float(np.mean(predictions == labels))


def count_lines(source: str) -> dict[str, int]:
    """radon's counts with docstrings left out: loc = logical lines (one per statement, however
    many physical lines it spans), sloc = physical source lines; comments and blanks excluded.

    radon counts a docstring as a statement, so docstrings are blanked out first."""
    raw = analyze(_without_docstrings(source))
    return {"loc": raw.lloc, "sloc": raw.sloc}


def _without_docstrings(source: str) -> str:
    lines = source.splitlines()
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, documented) and ast.get_docstring(node, clean=False) is not None:
            first = node.body[0]
            lines[first.lineno - 1 : first.end_lineno] = [""] * (
                first.end_lineno - first.lineno + 1
            )
    return "\n".join(lines) + "\n"


HARNESS_MARKER = "# --- harness"  # a suite's last section: what exists only for the comparison


def count_file_lines(path: Path) -> dict[str, int]:
    """loc: the example, the file above its harness section (the headline figure); harness_loc:
    that section; file_loc: the whole file."""
    source = Path(path).read_text()
    example, marker, harness = source.partition("\n" + HARNESS_MARKER)
    counts = count_lines(example)
    whole = count_lines(source)
    return {
        **counts,
        "harness_loc": count_lines(marker + harness)["loc"] if marker else 0,
        "file_loc": whole["loc"],
    }


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
