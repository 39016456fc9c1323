"""What a result was measured on: machine, software versions, commit, date and data checksums."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import tomllib
from pathlib import Path

import cpuinfo

from common.task import paths, registry
from common.task.data import DATASETS


def _requirements() -> tuple[str, list[str]]:
    """The project's name and every requirement pyproject.toml lists, the extras' included."""
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    extras: list[str] = sum(project["optional-dependencies"].values(), [])
    return project["name"], [*project["dependencies"], *extras]


def project_distributions() -> list[str]:
    """Every distribution pyproject.toml names, the frameworks and their backends included."""
    name, requirements = _requirements()
    names = {re.split(r"[^A-Za-z0-9_.-]", r, maxsplit=1)[0].lower() for r in requirements}
    return sorted(names - {name})


def project_pins() -> dict[str, str]:
    """{distribution: version} of every exact pin (==) in pyproject.toml."""
    found = (_PIN.match(r) for r in _requirements()[1])
    return {m.group("name").lower(): m.group("version") for m in found if m}


_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(\[[^\]]*\])?==(?P<version>[^;,\s]+)")


def pin_mismatches(environment: dict) -> list[str]:
    """Each installed distribution whose version is not the one pinned when the run started:
    the comparison's claims are about the pinned versions. Runs from before pins were recorded
    have none."""
    installed = environment.get("versions", {})
    return [
        f"{name} {installed[name]} (pinned {pin})"
        for name, pin in sorted(environment.get("pins", {}).items())
        if installed.get(name) not in (pin, "not installed", None)
    ]


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=paths.ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def uptime_seconds() -> float | None:
    """Seconds since the machine booted: the first run after a boot meets memory the host has
    not backed yet (common/measure/allocator.py)."""
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def collect(threads: int, dataset: str = "mnist") -> dict:
    return {
        "uptime_seconds": uptime_seconds(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpuinfo.get_cpu_info().get("brand_raw", platform.processor() or "unknown"),
        "cores": os.cpu_count(),
        "threads": threads,
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {name: registry.installed_version(name) for name in project_distributions()},
        "pins": project_pins(),
        "git_commit": _git("rev-parse", "HEAD") or "unknown",
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "dataset": dataset,
        "data_checksums": DATASETS[dataset].sha256,
    }
