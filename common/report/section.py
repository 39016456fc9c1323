"""A scenario's section of the report (data-parallel, attribution, releases): paragraphs, tables
and plots, which summary.md and index.html each render from the same parts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure


def read_record(run_dir: Path, name: str, kind: str) -> dict | None:
    """A scenario's record in a run folder (None: absent, or not of that kind), with the
    folder's environment.json as its "environment" where the record has none."""
    path = Path(run_dir) / name
    if not path.exists():
        return None
    run = json.loads(path.read_text())
    if not isinstance(run, dict) or run.get("kind") != kind:
        return None
    environment = Path(run_dir) / "environment.json"
    if "environment" not in run and environment.exists():
        run["environment"] = json.loads(environment.read_text())
    return run


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: list[list[str]]
    caption: str = ""  # a paragraph before the table

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n\n".join([*([self.caption] if self.caption else []), "\n".join(lines)])


@dataclass
class Section:
    """paragraphs: markdown's **bold** and `code` inline. plots: by file name (without suffix),
    written beside summary.md as PNG and embedded in index.html as SVG."""

    title: str
    paragraphs: list[str]
    tables: list[Table]
    plots: dict[str, Figure] = field(default_factory=dict)

    def markdown(self) -> str:
        parts = [f"## {self.title}", *self.paragraphs, *(t.markdown() for t in self.tables)]
        parts += [f"![{name}]({name}.png)" for name in self.plots]
        return "\n\n".join(parts) + "\n"
