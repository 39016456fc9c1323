"""A suite's code as the report shows it: lines of code, the sections, the diffs between suites.

Every suite's file is counted by one ruler (radon, docstrings left out) and split at its section
markers (`# --- model ---`), so two suites' sections line up and diff section by section.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from radon.raw import analyze

from common.task import files, paths, records


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
            end = first.end_lineno or first.lineno
            lines[first.lineno - 1 : end] = [""] * (end - first.lineno + 1)
    return "\n".join(lines) + "\n"


HARNESS_MARKER = "# --- harness"  # a suite's last section: what exists only for the comparison


def count_file_lines(path: Path) -> records.LineCounts:
    """loc: the example, the file above its harness section (the headline figure); harness_loc:
    that section; file_loc: the whole file."""
    return count_source_lines(Path(path).read_text())


def count_source_lines(source: str) -> records.LineCounts:
    """count_file_lines of a suite's text (a copy a run recorded, say), not of its file."""
    example, marker, harness = source.partition("\n" + HARNESS_MARKER)
    counts = count_lines(example)
    whole = count_lines(source)
    return {
        "loc": counts["loc"],
        "sloc": counts["sloc"],
        "harness_loc": count_lines(marker + harness)["loc"] if marker else 0,
        "file_loc": whole["loc"],
    }


# --- sections, and the lines a suite adds and removes against the reference ---------------------
# A suite's file is cut into sections by marker comments, `# --- <name> ---` or
# `# --- <name>: <what it holds> ---`; the text above the first marker (the module docstring) is
# the section PREAMBLE. The same sections in every suite let a reader line them up.
SECTION_MARKER = re.compile(r"^# --- (?P<name>[^:]+?)(?::.*?)?\s*-{3,}\s*$")
PREAMBLE = "preamble"
HARNESS = "harness"  # the section that exists only for the comparison: not in LOC, nor in the diff


def sections(source: str) -> dict[str, tuple[int, int]]:
    """Each section's line span [start, end) in source.splitlines(), marker line excluded, in file
    order. A name that comes twice keeps its first span."""
    lines = source.splitlines()
    marks = [
        (i, m["name"].strip()) for i, line in enumerate(lines) if (m := SECTION_MARKER.match(line))
    ]
    spans = {PREAMBLE: (0, marks[0][0] if marks else len(lines))}
    for (start, name), (end, _) in zip(marks, [*marks[1:], (len(lines), "")], strict=True):
        spans.setdefault(name, (start + 1, end))
    return spans


def code_lines(source: str) -> dict[str, list[str]]:
    """Each section's code lines: the lines that are not blank, not only a comment and not in a
    docstring (trailing comments stay). These are the lines the diff against the reference
    shows and counts."""
    stripped = _without_docstrings(source).splitlines()
    return {
        name: [
            line
            for line in stripped[start:end]
            if line.strip() and not line.lstrip().startswith("#")
        ]
        for name, (start, end) in sections(source).items()
    }


@dataclass(frozen=True)
class SectionDiff:
    kind = "section-diff"
    section: str
    added: int
    removed: int
    diff: tuple[
        str, ...
    ]  # difflib's unified diff of the section's code lines, whole section as context


def diff_sections(
    reference: str, source: str, names: tuple[str, str] = ("a", "b")
) -> list[SectionDiff]:
    """source's sections against the reference's, section by section (the reference's order, then
    sections only source has): difflib's unified diff of their code_lines, with the number of
    lines it marks + and -."""
    ours, theirs = code_lines(reference), code_lines(source)
    result = []
    for section in [*ours, *(name for name in theirs if name not in ours)]:
        before, after = ours.get(section, []), theirs.get(section, [])
        diff = tuple(
            difflib.unified_diff(
                before,
                after,
                f"{names[0]}: {section}",
                f"{names[1]}: {section}",
                n=max(len(before), len(after)),
                lineterm="",
            )
        )
        body = diff[2:]  # after the ---/+++ header: one line per line of code, or a @@ hunk header
        result.append(
            SectionDiff(
                section,
                sum(line.startswith("+") for line in body),
                sum(line.startswith("-") for line in body),
                diff,
            )
        )
    return result


def lines_changed(diffs: list[SectionDiff]) -> tuple[int, int]:
    """(added, removed) over the example's sections: the harness section is left out, as LOC
    leaves it out."""
    example = [d for d in diffs if d.section != HARNESS]
    return sum(d.added for d in example), sum(d.removed for d in example)


# --- the sources a run measured -----------------------------------------------------------------
SOURCES = "sources"  # a run folder's copy of suites/*.py, taken as the run starts


def record_sources(folder: Path) -> None:
    """Copies every suite's file (suites/*.py, byte for byte) into folder/sources/, so that the
    run's report counts, cuts and diffs the code the run measured, not the code as it is later."""
    for path in sorted(paths.SUITES.glob("*.py")):
        _copy(path, Path(folder) / SOURCES / path.name)


def _copy(source: Path, target: Path) -> None:
    content = source.read_bytes()
    files.atomic_write(target, lambda f: f.write(content))
