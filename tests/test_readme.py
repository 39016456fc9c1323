"""Every path README.md and the pages of docs/ link to or show as an image is in the
repository: present, tracked by git and not ignored, so that a fresh clone (and a code-hosting
page) shows it. A link to a heading, within a page or on another page, points at one."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]  # docs/results/ holds run records
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:...
README_LINES = 150  # the README answers first; the rest is on the pages it links to


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def _without_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.DOTALL)


def _targets(page: Path) -> list[str]:
    return LINK.findall(_without_code(page.read_text()))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings(page: Path) -> set[str]:
    text = _without_code(page.read_text())
    return {_slug(h) for h in re.findall(r"^#+\s+(.*)$", text, flags=re.MULTILINE)}


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def test_the_pages_have_links_to_check():
    local = [t for page in PAGES for t in _targets(page) if not EXTERNAL.match(t)]
    assert len(PAGES) >= 5 and len(local) >= 10 and any(t.endswith(".png") for t in local)


def test_the_readme_answers_in_a_screen_or_two():
    assert len(README.read_text().splitlines()) <= README_LINES


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_linked_path_is_tracked_and_not_ignored(page):
    if _git("rev-parse", "--is-inside-work-tree").returncode != 0:
        pytest.skip("not a git checkout: can't tell tracked from untracked files")
    problems = []
    for target in _targets(page):
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        try:
            relative = (page.parent / path).resolve().relative_to(ROOT).as_posix()
        except ValueError:
            problems.append(f"{target}: outside the repository")
            continue
        if not (ROOT / relative).exists():
            problems.append(f"{target}: missing")
        elif _git("check-ignore", "-q", "--", relative).returncode == 0:
            problems.append(f"{target}: ignored by .gitignore")
        elif not _git("ls-files", "--", relative).stdout.strip():
            problems.append(f"{target}: not tracked by git, so not in a clone")
    assert not problems, f"{_name(page)} links to: " + "; ".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_link_to_a_heading_points_at_one(page):
    wrong = []
    for target in _targets(page):
        if EXTERNAL.match(target) or "#" not in target:
            continue
        path, anchor = target.split("#", 1)
        other = (page.parent / path).resolve() if path else page
        if other.suffix == ".md" and anchor not in _headings(other):
            wrong.append(target)
    assert wrong == []
