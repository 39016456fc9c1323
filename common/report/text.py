"""Text that tables (summary.md), page (index.html) and plots share: numbers as the report
writes them, a run's title and facts, a row's mode, and what the report says of the suites'
code and where it comes from."""

from __future__ import annotations

import re

from common.report.run import Row, RunData
from common.task import code, registry

MEASURE = (
    "the code lines (not blank, not only a comment, not in a docstring) that difflib marks added "
    "(+) or removed (−) against raw_pytorch.py, section by section; the harness section is left "
    "out of the totals, as LOC leaves it out"
)
TODAYS_SOURCES = "Sources: today's suites/ (this run recorded none)."


# --- numbers and words -------------------------------------------------------------------------
def fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def plural(count, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def md_code(text: str) -> str:
    """Text from the data as Markdown code, so that <, *, _ in an error show as they are."""
    return "`" + text.replace("`", "'") + "`"


def interval_text(interval: dict | None, spec: str, scale: float = 1.0) -> str:
    if not interval:
        return "—"
    point, low, high = (interval[k] * scale for k in ("point", "low", "high"))
    return f"{point:{spec}} [{low:{spec}}, {high:{spec}}]"


def mode_text(row: Row) -> str:
    switch = row.get("switch", "default")
    return row["mode"] + (f" +{switch}" if switch != "default" else "")


def row_name(row: Row) -> str:
    """A table row's first cell: its label without the group it was copied to."""
    return row["label"].split("@")[0] + (" (copy)" if row.get("group_copy") else "")


# --- the run -----------------------------------------------------------------------------------
def short_cpu(environment: dict) -> str:
    cpu = re.sub(r"\((R|TM)\)|\bCPU\b|\s*@.*$", "", environment.get("cpu", "unknown CPU"))
    return " ".join(cpu.split())


def title(data: RunData) -> str:
    rows = [*data.training, *data.time_to_accuracy, *data.incomplete]
    count = len({r["variant"] for r in rows})
    size = data.setting("train_size")
    return (
        f"{str(data.setting('dataset')).upper()}: {plural(count, 'variant')}, "
        f"{plural(data.setting('epochs'), 'epoch')} on {fmt(size, ',') if size else 'all'} "
        f"training images"
    )


def subtitle(data: RunData) -> str:
    """The line every plot carries: dataset, epochs, CPU and threads."""
    size = data.setting("train_size")
    return (
        f"{str(data.setting('dataset')).upper()}, {plural(data.setting('epochs'), 'epoch')}"
        f" × {fmt(size, ',') if size else 'all'} images · {short_cpu(data.environment)}, "
        f"{data.setting('threads')} threads"
    )


def environment_facts(data: RunData) -> list[tuple[str, str]]:
    env, settings = data.environment, data.runs.get("settings", {})
    commit = env.get("git_commit", "unknown")[:12]
    test_size = data.training[0]["test_size"] if data.training else None
    finished = f"finished {data.runs['finished']}" if data.runs.get("finished") else "not finished"
    timing = (
        f"timed in interleaved blocks of {settings['block_steps']} steps"
        if settings.get("interleaved")
        else plural(settings.get("rounds", 1), "timed round")
    )
    return [
        (
            "Machine",
            f"{env.get('cpu', 'unknown CPU')}, {env.get('cores', '?')} cores, "
            f"{data.setting('threads')} threads ({env.get('system', '')}, "
            f"{env.get('machine', '')}, Python {env.get('python', '')})",
        ),
        ("Date", f"{env.get('date', data.runs.get('started', ''))} ({finished})"),
        (
            "Task",
            f"{data.setting('dataset')}, {plural(data.setting('epochs'), 'epoch')} on "
            f"{fmt(data.setting('train_size'), ',')} training images, {fmt(test_size, ',')} "
            f"test images, {timing}, mode {settings.get('mode', 'default')}",
        ),
        ("Commit", commit + (" with uncommitted changes" if env.get("git_dirty") else "")),
        ("Command", data.runs.get("command", "")),
    ]


# --- the suites' code --------------------------------------------------------------------------
def changed_text(data: RunData, suite: str) -> str:
    """The table's cell: code lines added and removed against the reference, as the diff shows
    (on the run's sources: the copies it recorded, else today's)."""
    if suite == registry.REFERENCE:
        return "0 (reference)"
    return lines_text(data.diffs.get(suite))


def lines_text(diffs) -> str:
    """A diff's code lines added and removed, "+a −r", or "—" where there is none."""
    if diffs is None:
        return "—"
    added, removed = code.lines_changed(list(diffs))
    return f"+{added} −{removed}"


def counted_on(data: RunData) -> str:
    """Where the lines +/− are counted, for the note under the table."""
    if data.sources_recorded:
        return "Counted on the files the run recorded as it started (its sources/)."
    return "Counted on the files as they are now."


def source_changed(data: RunData, suite: str, loc: int, counted: int) -> str:
    """The note on a suite whose measured LOC is not the LOC of the sources shown."""
    if data.sources_recorded:
        return (
            f"{suite}: LOC {loc} measured, {counted} in the file the run recorded; its lines "
            f"+/− and its code below are of the recorded file."
        )
    return (
        f"{suite} has changed since the run: LOC {loc} then, {counted} now; its lines +/− and "
        f"its code below are of the file as it is now."
    )


def counted_loc(data: RunData) -> str:
    """Where a LOC that the run did not measure was counted (the LOC plot's hatched bars)."""
    if data.sources_recorded:
        return "counted from the source the run recorded"
    return "counted from the source as it is now"
