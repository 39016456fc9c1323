"""The report's page in a real browser: headless Chromium (Debian's `chromium` package) loads
index.html written from the test fixture, with a small script added that picks two suites as a
reader would and writes what the browser laid out into the page; --dump-dom reads it back.

Skipped, with the reason, where Chromium is not installed (.ci/run installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from common import report
from common.task import code, paths, registry

FIXTURE = Path(__file__).parent / "fixtures" / "run"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1366, 768
PICKED = ("raw_pytorch", "lightning")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install chromium)"
)

# Runs after the page's own script. It ticks the PICKED suites and nothing else, as a reader
# would, then measures every shown cell with its lines kept whole (white-space: pre): a cell
# wider inside than it is on screen would cut or wrap a line.
MEASURE = r"""
<script>
const picked = new Set(%s);
const picker = document.querySelector(".picker");
for (const box of picker.querySelectorAll("input")) box.checked = picked.has(box.value);
picker.dispatchEvent(new Event("change"));
const view = document.getElementById("aligned");
const cells = [];
for (const cell of view.querySelectorAll(".cell")) {
  if (cell.hidden || cell.offsetWidth === 0) continue;
  const pre = cell.querySelector("pre");
  pre.style.whiteSpace = "pre";
  cells.push({
    suite: cell.dataset.suite,
    left: Math.round(cell.getBoundingClientRect().left),
    width: cell.clientWidth,
    needs: pre.scrollWidth,
    has: pre.clientWidth,
    font: parseFloat(getComputedStyle(pre).fontSize),
  });
  pre.style.whiteSpace = "";
}
const sections = [...view.querySelectorAll("h3")].map((h) => h.textContent);
const diffs = {};
for (const block of document.querySelectorAll(".suite-diff")) {
  block.open = true;
  diffs[block.dataset.suite] = [...block.querySelectorAll("details[data-section]")].map(
    (d) => [d.dataset.section, d.querySelector("pre").offsetHeight]);
}
const out = document.createElement("pre");
out.id = "measurements";
out.textContent = JSON.stringify({
  cells, sections, diffs,
  cols: getComputedStyle(view).getPropertyValue("--cols").trim(),
  viewport: window.innerWidth,
  page_scrolls_sideways: document.documentElement.scrollWidth > window.innerWidth,
  // text a reader sees outside code that is markdown, not rendered: a table's |---| row
  raw_markdown: [...document.querySelectorAll("pre, div, p, li, td")]
    .filter((node) => !node.closest(".highlight, code"))
    .some((node) => [...node.childNodes].some(
      (child) => child.nodeType === 3 && /\|\s*-{3,}\s*\|/.test(child.textContent))),
  images: [...document.images].map((img) => [img.alt, img.naturalWidth, img.naturalHeight]),
  glance: (() => {
    const box = document.getElementById("glance"), edge = box.getBoundingClientRect();
    return {top: edge.top + window.scrollY, bottom: edge.bottom + window.scrollY,
            right: edge.right, needs: box.scrollWidth, has: box.clientWidth,
            verdicts: [...box.querySelectorAll("td:nth-child(6)")].map((td) => td.textContent)};
  })(),
});
document.body.append(out);
</script>
"""


class Measurements(HTMLParser):
    def __init__(self, dom: str):
        super().__init__()
        self.inside, self.text = False, ""
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        self.inside = self.inside or ("id", "measurements") in attrs

    def handle_data(self, data):
        if self.inside:
            self.text += data

    def handle_endtag(self, tag):
        self.inside = self.inside and tag != "pre"


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("run")
    shutil.copytree(FIXTURE, run_dir, dirs_exist_ok=True)
    page = (report.write_report(run_dir).parent / "index.html").read_text()
    probe = run_dir / "probe.html"
    probe.write_text(page.replace("</body>", MEASURE % json.dumps(PICKED) + "</body>"))
    profile = tmp_path_factory.mktemp("chromium-profile")
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    text = Measurements(dom).text
    assert text, f"the page's measuring script wrote nothing; the DOM starts {dom[:300]!r}"
    return json.loads(text)


def test_sections_render_in_rows(measured):
    reference = (paths.SUITES / f"{registry.REFERENCE}.py").read_text()
    assert measured["sections"][: len(code.sections(reference))] == list(code.sections(reference))


def test_two_picked_suites_share_the_width_side_by_side(measured):
    cells = measured["cells"]
    assert measured["viewport"] == WIDTH and measured["cols"] == "2"
    assert {c["suite"] for c in cells} == set(PICKED)
    sections = len(measured["sections"])
    assert len(cells) == len(PICKED) * sections
    lefts = sorted({c["left"] for c in cells})
    assert len(lefts) == 2 and lefts[1] > WIDTH / 3  # two columns, not stacked
    assert not measured["page_scrolls_sideways"]


def test_lines_of_100_characters_fit_without_scrolling(measured):
    longest = max(
        len(line)
        for suite in PICKED
        for line in (paths.SUITES / f"{suite}.py").read_text().splitlines()
        if not code.SECTION_MARKER.match(line)
    )
    assert longest <= 100  # the suites' own limit (ruff): what this test vouches for
    for cell in measured["cells"]:
        assert cell["needs"] <= cell["has"], cell  # every line whole on screen
        assert cell["font"] >= 9, cell


def test_every_suite_diff_renders_section_by_section(measured):
    reference = list(code.sections((paths.SUITES / "raw_pytorch.py").read_text()))
    diffs = measured["diffs"]
    assert sorted(diffs) == ["fastai", "ignite", "keras", "lightning"]
    for suite, sections in diffs.items():
        assert [name for name, _ in sections][: len(reference)] == reference, suite
        assert all(height > 0 for _, height in sections), suite


def test_the_first_screen_is_the_verdict(measured):
    """At 1366x768, above the fold and without scrolling sideways: each variant's LOC, its ratio
    with interval and verdict, and its accuracy."""
    glance = measured["glance"]
    assert glance["bottom"] <= HEIGHT, glance
    assert glance["right"] <= measured["viewport"] and glance["needs"] <= glance["has"], glance
    assert len(glance["verdicts"]) >= 5 and any(v.strip() for v in glance["verdicts"])


def test_every_section_is_rendered_and_every_plot_loads(measured):
    assert not measured["raw_markdown"]  # the data-parallel section once showed its table as text
    assert measured["images"] and all(w > 0 and h > 0 for _, w, h in measured["images"])
