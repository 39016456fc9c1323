"""The versions scenario's section: each framework's per-step cost across its releases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from matplotlib.figure import Figure

from common.report.section import Section, Table, read_record

VERSIONS_TITLE = "Across releases (versions scenario)"
RELEASE_COLUMNS = (
    "framework release (PyPI date)",
    "instructions / step (beyond raw PyTorch)",
    "Python calls / step (beyond)",
    "µs / step, clock",
    "convnet step, speed vs raw PyTorch (ms a step)",
    "environment built in",
    "gate against the release before",
)


def _gate(record: dict) -> str:
    found = record.get("gate")
    if not found:
        return "— (first)"
    verdict = "**regressed**" if found["regressed"] else "ok"
    grown = "; ".join(f"`{name}` {delta:+,.0f}" for name, delta in found["grown"][:2])
    return f"{verdict}: {found['ratio']:.3f}x {found['against']}" + (f" ({grown})" if grown else "")


def _row(record: dict) -> list[str]:
    release = record["release"]
    name = f"{release['distribution']} {release['version']} ({release['released']})"
    if release.get("over_torch_bound"):
        name += ", over its torch bound"
    if "error" in record:
        return [name, f"FAILED: {record['error'][:100]}", *[""] * (len(RELEASE_COLUMNS) - 2)]
    extra = record.get("overhead") or {}

    def counted(kind: str) -> str:
        beyond = extra.get(kind, {}).get("per_step")
        shown = f"{record[kind]['per_step']:,.0f}"
        return shown if beyond is None else f"{shown} ({beyond:+,.0f})"

    if "convnet" not in record:  # counted, not timed
        clock = f"not timed: {record.get('clock_error', 'no clock pass')[:80]}"
        return [name, counted("instructions"), counted("calls"), clock, "", "", _gate(record)]
    convnet = record["convnet"]
    return [
        name,
        counted("instructions"),
        counted("calls"),
        f"{record['microseconds_per_step']:,.0f}",
        f"{convnet['ratio']:.2f}x ({convnet['suite_us'] / 1e3:.1f} / "
        f"{convnet['reference_us'] / 1e3:.1f})",
        f"{record['build_seconds']:.1f} s",
        _gate(record),
    ]


def versions_section(run: dict, elsewhere: str | None = None) -> Section:
    records, reference = run["records"], run["reference"]
    environment = run.get("environment", {})
    builds = [r["build_seconds"] for r in records if "build_seconds" in r]
    paragraphs = [
        *([f"**Not this run's**: {elsewhere}"] if elsewhere else []),
        "Each release in an environment of its own, built by uv (the project's torch in every "
        f"one; {min(builds, default=0):.0f}-{max(builds, default=0):.0f} s each with "
        "uv's cache warm, bytecode compiled), the suite unchanged. Counts of one step of the tiny "
        f"model (N = {run['steps']} and 2N steps, as in the attribution scenario), beyond raw "
        f"PyTorch's {reference['instructions']['per_step']:,.0f} instructions and "
        f"{reference['calls']['per_step']:,.0f} calls; the µs column is a clock, and so is the "
        f"convnet's time per step ({run['convnet_steps']} and 2x as many steps of batch 128, one "
        "thread, after a warm-up) beside raw PyTorch's in the same environment, one process "
        f"at a time. {environment.get('cpu', '?')}, {run['started']}; "
        f"the scenario took {run['seconds'] / 60:.0f} min"
        + (
            f"; its clocks were measured again, on a quiet machine, at {run['clocked']} "
            "(`--clocks-again`)."
            if run.get("clocked")
            else "."
        ),
        "The gate fails a release whose instructions per step exceed the release before it by "
        "more than its factor, and names the functions that grew most "
        "(`python -m common instructions --compare A B` on any two runs).",
    ]
    return Section(
        VERSIONS_TITLE,
        paragraphs,
        [Table(RELEASE_COLUMNS, [_row(r) for r in records])],
        plots={"versions_instructions": plot(records)},
    )


def plot(records: list[dict]) -> Figure:
    """Instructions per step against the release date, a line per framework."""
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.subplots()
    by_variant: dict[str, list[dict]] = {}
    for record in records:
        if "error" not in record:
            by_variant.setdefault(record["release"]["variant"], []).append(record)
    for variant, found in by_variant.items():
        dates = [dt.date.fromisoformat(r["release"]["released"]) for r in found]
        values = [r["instructions"]["per_step"] / 1e6 for r in found]
        ax.plot(dates, values, marker="o", label=variant)
        for date, value, record in zip(dates, values, found, strict=True):
            ax.annotate(record["release"]["version"], (date, value), fontsize="x-small",
                        textcoords="offset points", xytext=(3, 4))  # fmt: skip
    ax.set_ylabel("instructions per training step (millions)")
    ax.set_title("Per-step instructions across releases (tiny model, batch 8)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return fig


def read_versions(run_dir: Path, elsewhere: str | None = None) -> Section | None:
    """The section of a versions run folder, or None when it holds no versions.json."""
    run = read_record(run_dir, "versions.json", "versions")
    return None if run is None else versions_section(run, elsewhere)
