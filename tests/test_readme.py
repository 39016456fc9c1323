"""Every path README.md links to or shows as an image is in the repository: present, tracked by
git and not ignored, so that a fresh clone (and a code-hosting page) shows it. Links within the
page point at one of its headings."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:...


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def _targets() -> list[str]:
    text = re.sub(r"```.*?```", "", README.read_text(), flags=re.DOTALL)  # not code blocks
    return LINK.findall(text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_has_links_to_check():
    local = [t for t in _targets() if not EXTERNAL.match(t) and not t.startswith("#")]
    assert len(local) >= 10 and any(t.endswith(".png") for t in local)


def test_every_linked_path_is_tracked_and_not_ignored():
    if _git("rev-parse", "--is-inside-work-tree").returncode != 0:
        pytest.skip("not a git checkout: can't tell tracked from untracked files")
    problems = []
    for target in _targets():
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        relative = (README.parent / path).resolve().relative_to(ROOT).as_posix()
        if not (ROOT / relative).exists():
            problems.append(f"{target}: missing")
        elif _git("check-ignore", "-q", "--", relative).returncode == 0:
            problems.append(f"{target}: ignored by .gitignore")
        elif not _git("ls-files", "--", relative).stdout.strip():
            problems.append(f"{target}: not tracked by git, so not in a clone")
    assert not problems, "README.md links to: " + "; ".join(problems)


def test_links_within_the_page_point_at_a_heading():
    text = README.read_text()
    headings = {_slug(h) for h in re.findall(r"^#+\s+(.*)$", text, flags=re.MULTILINE)}
    anchors = [t[1:] for t in _targets() if t.startswith("#")]
    assert [a for a in anchors if a not in headings] == []
