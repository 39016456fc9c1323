"""The suites' sources a run records (code.record_sources) for its report to read back."""

from __future__ import annotations

from common.task import code, paths


def test_record_sources_copies_every_suite_byte_for_byte(tmp_path):
    code.record_sources(tmp_path)
    suites = sorted(p.name for p in paths.SUITES.glob("*.py"))
    assert suites and sorted(p.name for p in (tmp_path / code.SOURCES).iterdir()) == suites
    for name in suites:
        assert (tmp_path / code.SOURCES / name).read_bytes() == (paths.SUITES / name).read_bytes()
