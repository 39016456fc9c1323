"""The entry points, one module per scenario family (asv's `commands/` manner).

`python -m common <command>` runs one: compare (the comparison and its scenarios, as
declared in catalog.py), ddp, instructions, report, figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from common.task import paths


def new_run_folder(
    parser: argparse.ArgumentParser, out: Path, started: dt.datetime, kind: str | None = None
) -> Path:
    """The run's own folder under --out, or the parser's one-line error when none can be made."""
    try:
        return paths.run_folder(out, started, kind)
    except paths.RunFolderError as error:
        parser.error(f"--out {out}: {error}")
