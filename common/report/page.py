"""index.html: one self-contained page (inline CSS, plots as data: URIs), no network."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from tabulate import tabulate

from common import files, metrics
from common.report.run import RunData, suite_loc, variants
from common.report.tables import (
    HEADERS,
    OVERHEAD_HEADERS,
    TTA_HEADERS,
    align,
    environment_facts,
    notes,
    overhead_rows,
    title,
    training_rows,
    tta_rows,
)

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
.sources{display:flex;gap:1rem;overflow-x:auto;align-items:flex-start;padding-bottom:.5rem}
.source{flex:0 0 38rem;border:1px solid #d0d7de;border-radius:6px;overflow:hidden}
.source h3{margin:0;padding:.5rem .75rem;background:#f6f8fa;font-size:1rem}
.source .highlight{max-height:80vh;overflow:auto;margin:0}
.source pre{margin:0;padding:.5rem .75rem;font-size:12px;line-height:1.4}
span.linenos{user-select:none}
"""


def _html_table(headers, rows) -> str:
    # tabulate's "html" format escapes every cell and header
    return tabulate(rows, headers, tablefmt="html", disable_numparse=True, colalign=align(headers))


def _sources(data: RunData) -> str:
    in_run = {r["suite"] for r in data.training} | {e["suite"] for e in data.incomplete}
    paths = {v.suite: v.path for v in variants() if v.suite in in_run}
    locs, formatter = suite_loc(data), HtmlFormatter(linenos="inline")
    columns = []
    for suite, path in paths.items():
        loc, measured = locs.get(suite) or (metrics.count_file_lines(path)["loc"], False)
        code = highlight(path.read_text(), PythonLexer(), formatter)
        columns.append(
            f'<div class="source"><h3>{html.escape(suite)} · {loc} LOC'
            f"{'' if measured else ' (counted now)'}</h3>{code}</div>"
        )
    return f'<div class="sources">{"".join(columns)}</div>'


def write_html(data: RunData, out: Path, plots: list[str]) -> Path:
    e = html.escape
    env = data.environment
    facts = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in environment_facts(data))
    versions = _html_table(("distribution", "version"), sorted(env.get("versions", {}).items()))
    checksums = _html_table(("file", "sha256"), sorted(env.get("data_checksums", {}).items()))
    figures = "".join(
        f'<figure><img alt="{e(name)}" src="data:image/svg+xml;base64,'
        f'{base64.b64encode((out / f"{name}.svg").read_bytes()).decode()}"></figure>'
        for name in plots
    )
    tta = (
        f"<h2>Time to accuracy</h2>{_html_table(TTA_HEADERS, tta_rows(data))}"
        if data.time_to_accuracy
        else ""
    )
    if data.overhead:
        tta = (
            "<h2>Framework overhead per training step</h2>"
            f"{_html_table(OVERHEAD_HEADERS, overhead_rows(data))}{tta}"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title(data))}</title>
<style>{CSS}{HtmlFormatter().get_style_defs(".highlight")}</style></head>
<body>
<h1>{e(title(data))}</h1>
<h2>Environment</h2><dl class="facts">{facts}</dl>
<details><summary>Versions</summary>{versions}</details>
<details><summary>Data checksums</summary>{checksums}</details>
<h2>Training</h2><div class="wide">{_html_table(HEADERS, training_rows(data))}</div>
<ul>{"".join(f"<li>{e(line)}</li>" for line in notes(data))}</ul>
{tta}
<h2>Plots</h2><div class="plots">{figures}</div>
<h2>Sources</h2>
<p>The suites' files as they are in the working tree now (the run was at commit
{e(env.get("git_commit", "unknown")[:12])}). Scroll sideways for more suites.</p>
{_sources(data)}
</body></html>
"""
    path = out / "index.html"
    files.write_text(path, page)
    return path
