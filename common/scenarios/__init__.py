"""The entry points, one module per scenario family (asv's `commands/` manner).

`python -m common <command>` runs one: compare (the comparison and its scenarios, as
declared in catalog.py), ddp, instructions, report, figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from common.task import paths


def write_run(run_dir: Path, kind: str, name: str, record: dict, read) -> str:
    """A counting scenario's end: its record and environment.json in the run folder, the kind's
    `latest` link, and its section of the report (read(run_dir)) as summary.md, which it
    returns."""
    from common.measure.environment import collect
    from common.report import write_section
    from common.task import files

    files.write_json(run_dir / "environment.json", collect(1, "mnist"))
    files.write_json(run_dir / name, record)
    paths.point_latest(run_dir, kind)
    section = read(run_dir)
    assert section is not None, f"{run_dir / name}: not a {kind} record"
    return write_section(section, run_dir).read_text()


def new_run_folder(
    parser: argparse.ArgumentParser, out: Path, started: dt.datetime, kind: str | None = None
) -> Path:
    """The run's own folder under --out, or the parser's one-line error when none can be made."""
    try:
        return paths.run_folder(out, started, kind)
    except paths.RunFolderError as error:
        parser.error(f"--out {out}: {error}")
