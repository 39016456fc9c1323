"""The suites' code in index.html: a section-aligned view (one row per section, one column per
suite, the reader picks the columns) and each suite's diff against the reference, section by
section. Both show one run's sources (RunData.sources: the copies it recorded, else today's
suites/) and the diffs analysis.py made of them with task/code.py, the one place that computes
them for the table as well."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

from common.report.run import RunData, known_variants
from common.task import code, registry

SHOWN = 2  # columns the aligned view shows before the reader picks: the first suites in order

# Wide enough for 100 characters and the line numbers at any column width (container units): 100
# + 4 characters of a monospace font at 0.6 em are 62.4 em. Narrower than 9 px, lines wrap
# rather than scroll.
SOURCES_CSS = """
.picker{display:flex;flex-wrap:wrap;gap:.3rem 1rem;margin:.5rem 0;position:sticky;top:0;
background:#fff;z-index:2;padding:.4rem 0;border-bottom:1px solid #d0d7de}
.aligned{display:grid;grid-template-columns:repeat(var(--cols),minmax(0,1fr));gap:0 .5rem}
.aligned>h3{grid-column:1/-1;margin:1rem 0 .3rem;font-size:1rem;border-bottom:1px solid #d0d7de}
.aligned>h3 small{font-weight:normal;color:#59636e}
.cell{container-type:inline-size;min-width:0;border:1px solid #e5e7eb;border-radius:4px}
.cell>.suite{font:600 12px system-ui,sans-serif;padding:.2rem .4rem;background:#f6f8fa}
.cell pre,.diff pre{margin:0;padding:.3rem .4rem;line-height:1.35;white-space:pre-wrap;
overflow-wrap:anywhere;font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace}
.cell pre{font-size:clamp(9px,calc(100cqi / 63),13px)}
.diff pre{font-size:12px}
.diff .gi{background:#e6ffec}.diff .gd{background:#ffebe9}
.diff details{margin:.3rem 0 .3rem 1rem}.diff>details{margin-left:0}
.diff summary{cursor:pointer}
span.linenos{user-select:none;color:#8c959f;font-size:.85em}
[hidden]{display:none!important}
"""

# Picks the aligned view's columns: the cells of the checked suites are shown, the grid has as
# many columns as there are checked suites. Without it the first SHOWN suites are shown.
SCRIPT = """
for (const picker of document.querySelectorAll(".picker")) {
  const view = document.getElementById(picker.dataset.view);
  picker.addEventListener("change", () => {
    const on = new Set([...picker.querySelectorAll("input:checked")].map((i) => i.value));
    for (const cell of view.querySelectorAll("[data-suite]")) {
      cell.hidden = !on.has(cell.dataset.suite);
    }
    view.style.setProperty("--cols", Math.max(on.size, 1));
  });
}
"""


def suites_in(runs: Sequence[RunData], shown: RunData) -> list[str]:
    """The suites any of the runs holds that the shown run's sources have, in registry order
    (the reference first)."""
    named = {r["suite"] for data in runs for r in [*data.training, *data.incomplete]}
    found = (v.suite for v in known_variants() if v.suite in named and v.suite in shown.sources)
    return list(dict.fromkeys(found))


def column_headings(runs: Sequence[RunData], shown: RunData) -> dict[str, str]:
    """{suite: "suite · N LOC"} for the suites the runs hold: LOC as the first run measured it,
    else counted on the shown run's sources, and then said so."""
    measured: dict[str, int] = {}
    for data in runs:
        for suite, (loc, in_run) in data.suite_loc.items():
            if in_run:
                measured.setdefault(suite, loc)
    counted = "counted on the recorded file" if shown.sources_recorded else "counted now"
    return {
        suite: f"{suite} · {measured[suite]} LOC"
        if suite in measured
        else f"{suite} · {shown.source_loc.get(suite)} LOC ({counted})"
        for suite in suites_in(runs, shown)
    }


def aligned_view(data: RunData, suites: dict[str, str]) -> str:
    """suites: {suite: its column heading}. One row per section, in the reference's order, of
    the run's sources."""
    spans = {suite: code.sections(data.sources[suite]) for suite in suites}
    names = list(dict.fromkeys(name for found in spans.values() for name in found))
    shown = list(suites)[:SHOWN]
    e = html.escape
    boxes = "".join(
        f'<label><input type="checkbox" value="{e(suite)}"{" checked" * (suite in shown)}> '
        f"{e(heading)}</label>"
        for suite, heading in suites.items()
    )
    rows = []
    for name in names:
        cells = []
        for suite in suites:
            lines = data.sources[suite].splitlines()
            start, end = spans[suite].get(name, (0, 0))
            text = "\n".join(lines[start:end]).strip("\n")
            formatter = HtmlFormatter(linenos="inline", linenostart=start + 1)
            body = (
                highlight(text, PythonLexer(), formatter)
                if text
                else "<pre><i>(no such section)</i></pre>"
            )
            cells.append(
                f'<div class="cell" data-suite="{e(suite)}"{" hidden" * (suite not in shown)}>'
                f'<div class="suite">{e(suite)} · lines {start + 1}–{end}</div>{body}</div>'
            )
        anchor = "section-" + "-".join(re.findall(r"\w+", name))
        rows.append(f'<h3 id="{e(anchor)}">{e(name)}</h3>{"".join(cells)}')
    return (
        f'<div class="picker" data-view="aligned">Show (two or three fit side by side): '
        f'{boxes}</div><div class="aligned" id="aligned" style="--cols:{len(shown)}">'
        f"{''.join(rows)}</div>"
    )


def diff_view(data: RunData, suites: dict[str, str]) -> str:
    """Each suite against the reference, and against its nearest relative where it declares
    one: its totals, then each section's diff with its counts."""
    pairs = [
        (suite, base, diffs)
        for suite in suites
        for base, diffs in (
            (registry.REFERENCE, data.diffs.get(suite)),
            data.relative_diffs.get(suite, (None, None)),
        )
        if base is not None and diffs is not None
    ]
    return _diff_blocks(pairs)


def _diff_blocks(pairs: list[tuple[str, str, tuple[code.SectionDiff, ...]]]) -> str:
    e = html.escape
    blocks = []
    for number, (suite, base, diffs) in enumerate(pairs):
        added, removed = code.lines_changed(list(diffs))
        parts = []
        for diff in diffs:
            body = (
                highlight("\n".join(diff.diff), DiffLexer(), HtmlFormatter())
                if diff.diff
                else "<pre><i>no code line differs (docstrings, comments not compared)</i></pre>"
            )
            apart = " (harness: not in the totals)" if diff.section == code.HARNESS else ""
            parts.append(
                f'<details open data-section="{e(diff.section)}"><summary><b>{e(diff.section)}'
                f"</b> +{diff.added} −{diff.removed}{apart}</summary>{body}</details>"
            )
        blocks.append(
            f'<details class="suite-diff" data-suite="{e(suite)}" data-base="{e(base)}"'
            f"{' open' * (number == 0)}>"
            f"<summary><b>{e(suite)}</b> against {e(base)}: +{added} −{removed} "
            f"code lines</summary>{''.join(parts)}</details>"
        )
    return f'<div class="diff">{"".join(blocks)}</div>'
