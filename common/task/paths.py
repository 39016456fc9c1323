"""Where things live: the repository's folders, run folders and the `latest` links.

Every module that needs a path takes it from here, so a run folder is named one way
(`<date>-<time>[-<kind>]`, with a number added when two runs start in the same second) and
the `latest` link is made one way.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "suites"
BENCHMARKS = ROOT / "benchmarks"
RESULTS = ROOT / "results"
RECORDS = ROOT / "docs" / "results"  # committed runs that the README shows

_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")


class RunFolderError(Exception):
    """No run folder could be made: the message says where and why."""


def safe_name(label: str) -> str:
    """A label (a variant id such as `keras[jax]`) as a file name: other characters become -."""
    return _UNSAFE.sub("-", label).strip("-")


def run_folder(out: Path, started: dt.datetime, kind: str | None = None) -> Path:
    """A new folder for this run alone: another run started in the same second gets its own
    (the name gains a number), never a share of this one's."""
    stamp = started.strftime("%Y%m%d-%H%M%S") + (f"-{kind}" if kind else "")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"cannot create a run folder there ({error.strerror})") from None
    for number in range(1, 1000):
        folder = out / (stamp if number == 1 else f"{stamp}-{number}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            raise RunFolderError(f"cannot create a run folder there ({error.strerror})") from None
        return folder
    raise RunFolderError(f"no free run folder name for {stamp}")


def latest_link(out: Path, kind: str | None = None) -> Path:
    """The link to the newest run of a kind: results/latest, results/latest-ddp, ..."""
    return out / ("latest" if kind is None else f"latest-{kind}")


def point_latest(folder: Path, kind: str | None = None) -> None:
    """Point the kind's `latest` link (beside the run folder) at this run, atomically: the new
    link is made under a name of its own and renamed over the old one, so a reader never finds
    none and two runs finishing at once never collide."""
    link = latest_link(folder.parent, kind)
    fresh = link.with_name(f".{link.name}.{os.getpid()}.{threading.get_ident()}")
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(folder.name)
    try:
        os.replace(fresh, link)
    except OSError:
        fresh.unlink(missing_ok=True)
        raise
