"""index.html: one self-contained page (inline CSS, plots as data: URIs), no network."""

from __future__ import annotations

import base64
import html
import re

from pygments.formatters import HtmlFormatter
from tabulate import tabulate

from common.report import sources
from common.report.run import RunData
from common.report.section import Section
from common.report.tables import (
    ACCURACY_HEADERS,
    GLANCE_HEADERS,
    HEADERS,
    LOC_HEADERS,
    LOC_NOTE,
    OVERHEAD_HEADERS,
    RELATIVE_HEADERS,
    RELATIVE_NOTE,
    SIDE_BY_SIDE_NOTE,
    TTA_HEADERS,
    accuracy_note,
    accuracy_rows,
    align,
    glance_rows,
    loc_rows,
    notes,
    overhead_rows,
    relative_rows,
    runs_rows,
    side_by_side_rows,
    training_rows,
    tta_rows,
)
from common.report.text import MEASURE, environment_facts, title

Svgs = dict[str, bytes]  # a run's plots by name (their file names, without .svg), as SVG

# --- index.html --------------------------------------------------------------------------------
CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1500px;padding:0 1rem;
color:#1f2328}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;font-size:13px;margin:.5rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e5e7eb;white-space:nowrap}
thead th{background:#f6f8fa}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
.wide{overflow-x:auto}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(820px,1fr));gap:1rem}
figure{margin:0}figure img{width:100%;max-width:960px;height:auto;border:1px solid #e5e7eb}
"""


def _html_table(headers, rows) -> str:
    # tabulate's "html" format escapes every cell and header
    return tabulate(rows, headers, tablefmt="html", disable_numparse=True, colalign=align(headers))


def _figure(name: str, svg: bytes) -> str:
    return (
        f'<figure><img alt="{html.escape(name)}" src="data:image/svg+xml;base64,'
        f'{base64.b64encode(svg).decode()}"></figure>'
    )


def _run_section(data: RunData, plots: Svgs, depth: int = 2) -> str:
    """One run: its environment, tables, notes and plots, under headings of the given depth."""
    e, h = html.escape, f"h{depth}"
    env = data.environment
    facts = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in environment_facts(data))
    versions = _html_table(("distribution", "version"), sorted(env.get("versions", {}).items()))
    checksums = _html_table(("file", "sha256"), sorted(env.get("data_checksums", {}).items()))
    figures = "".join(_figure(name, svg) for name, svg in plots.items())
    tta = (
        f"<{h}>Time to accuracy</{h}>{_html_table(TTA_HEADERS, tta_rows(data))}"
        if data.time_to_accuracy
        else ""
    )
    if data.training:
        tta = (
            f"<{h}>Lines of code</{h}>{_html_table(LOC_HEADERS, loc_rows(data))}"
            f"<p>{e(LOC_NOTE)}</p>{tta}"
        )
    if data.accuracy:
        tta = (
            f"<{h}>Accuracy over seeds</{h}>{_html_table(ACCURACY_HEADERS, accuracy_rows(data))}"
            f"<p>{e(accuracy_note(data))}</p>{tta}"
        )
    if relative := relative_rows(data):
        tta = (
            f"<{h}>Against its nearest relative</{h}>{_html_table(RELATIVE_HEADERS, relative)}"
            f"<p>{e(RELATIVE_NOTE)}</p>{tta}"
        )
    if data.overhead:
        tta = (
            f"<{h}>Framework overhead per training step</{h}>"
            f"{_html_table(OVERHEAD_HEADERS, overhead_rows(data))}{tta}"
        )
    glance = (
        f'<{h}>At a glance</{h}><div id="glance">{_html_table(GLANCE_HEADERS, glance_rows(data))}'
        f"</div>"
        if data.training
        else ""
    )
    return f"""{glance}<{h}>Environment</{h}><dl class="facts">{facts}</dl>
<details><summary>Versions</summary>{versions}</details>
<details><summary>Data checksums</summary>{checksums}</details>
<{h}>Training</{h}><div class="wide">{_html_table(HEADERS, training_rows(data))}</div>
<ul>{"".join(f"<li>{e(line)}</li>" for line in notes(data))}</ul>
{tta}
<{h}>Plots</{h}><div class="plots">{figures}</div>"""


def _section_html(section: Section, svgs: Svgs) -> str:
    """A scenario's section (summary.md has it as markdown), as HTML, its plots inline."""
    tables = "".join(
        (f"<p>{_inline(table.caption)}</p>" if table.caption else "")
        + tabulate(
            [[_inline(cell) for cell in row] for row in table.rows],
            table.columns,
            tablefmt="unsafehtml",
            disable_numparse=True,
        )
        for table in section.tables
    )
    figures = "".join(_figure(name, svgs[name]) for name in section.plots if name in svgs)
    return (
        f'<div class="wide"><h2>{html.escape(section.title)}</h2>'
        + "".join(f"<p>{_inline(paragraph)}</p>" for paragraph in section.paragraphs)
        + tables
        + (f'<div class="plots">{figures}</div>' if figures else "")
        + "</div>"
    )


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` in one escaped line."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def html_page(
    runs: list[tuple[str, RunData, Svgs]], extra: tuple[Section, ...] = (), svgs: Svgs | None = None
) -> str:
    """index.html's text: runs is [(label, data, its plots)]; one run reads as before, several
    get a table of runs and a side-by-side table first, then a section each. The sources and
    diffs are the first run's."""
    e = html.escape
    if len(runs) == 1:
        heading = title(runs[0][1])
        body = _run_section(runs[0][1], runs[0][2])
    else:
        pairs = [(label, data) for label, data, _ in runs]
        heading = f"{len(runs)} runs side by side"
        body = (
            f'<h2>Runs</h2><div class="wide">{_html_table(*runs_rows(pairs))}</div>'
            f'<h2>Side by side</h2><div class="wide">{_html_table(*side_by_side_rows(pairs))}'
            f"</div><p>{e(SIDE_BY_SIDE_NOTE)}</p>"
        ) + "".join(
            f"<h2>{e(label)} ({e(data.name)}): {e(title(data))}</h2>"
            + _run_section(data, plots, depth=3)
            for label, data, plots in runs
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(heading)}</title>
<style>{CSS}{sources.SOURCES_CSS}{HtmlFormatter().get_style_defs(".highlight")}</style></head>
<body>
<h1>{e(heading)}</h1>
{body}
{"".join(_section_html(section, svgs or {}) for section in extra)}
{_sources_section([data for _, data, _ in runs])}
<script>{sources.SCRIPT}</script>
</body></html>
"""


def _sources_section(datas: list[RunData]) -> str:
    """The suites' sources side by side and their diffs, from the first run's sources."""
    e, shown = html.escape, datas[0]
    columns = sources.column_headings(datas, shown)
    commits = ", ".join(dict.fromkeys(d.environment.get("git_commit", "?")[:12] for d in datas))
    where = (
        f"as {'the first run' if len(datas) > 1 else 'the run'} recorded them as it started "
        f"(its sources/; commit {e(commits)})"
        if shown.sources_recorded
        else f"as they are in the working tree now (the run was at commit\n{e(commits)})"
    )
    totals = 'The table\'s "lines +/− vs raw PyTorch" column gives the\nsame totals.'
    if any(data.sources != shown.sources for data in datas[1:]):
        totals += " The other runs' tables count on their own sources, which differ."
    intro = (
        f"<p>The suites' files {where}, cut at their <code># --- section ---</code> comments: "
        "one row per section,\none column per suite. Pick the suites to put side by side.</p>"
    )
    return (
        f'<h2 id="sources">Sources, section by section</h2>\n{intro}\n'
        f"{sources.aligned_view(shown, columns)}\n"
        '<h2 id="diffs">What each suite changes against raw PyTorch (and its nearest relative)'
        "</h2>\n"
        f"<p>Counts: {e(MEASURE)}. {totals}</p>\n"
        f"{sources.diff_view(shown, columns)}"
    )
