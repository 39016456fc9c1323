"""Atomic writes: a file is either its old complete self or its new complete self, never half.

An interrupted run (Ctrl-C, a crash, a full disk) leaves at most a hidden `.NAME.*.part` file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(final: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call write(file) on a temporary file beside ``final``, then move it there in one step."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; results and data are meant to be read
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(final: Path, text: str) -> None:
    atomic_write(final, lambda f: f.write(text.encode()))


def write_json(final: Path, value) -> None:
    write_text(final, json.dumps(value, indent=2, default=str) + "\n")


class Reserve:
    """Space set aside in a results folder, given back when the disk fills up, so that a run can
    still record how it ended (runs.json: finished, and which variants were stopped)."""

    SIZE = 1 << 20  # a default comparison's runs.json is about 60 KB

    def __init__(self, folder: Path, size: int | None = None):
        self.path = Path(folder) / ".reserve"
        try:
            with open(self.path, "wb") as f:
                f.write(
                    bytes(self.SIZE if size is None else size)
                )  # written, not truncated: a sparse file would reserve nothing
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def read_json(path: Path):
    return json.loads(Path(path).read_text())
