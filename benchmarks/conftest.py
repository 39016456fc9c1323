"""Fixtures shared by the benchmarks: run settings from the command line, progress lines, and
one measuring step that every training benchmark goes through."""

from __future__ import annotations

import pytest

from common.measure import runner
from common.measure.turns import process_turns
from common.task import RunConfig, SettingError
from conftest import task_data_for


@pytest.fixture
def progress(request):
    """One line per epoch on the terminal, even while pytest captures output."""
    plugins = request.config.pluginmanager
    terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def write(line: str) -> None:
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"  {request.node.callspec.id}: {line}")

    return write


@pytest.fixture
def measure(benchmark, suite, request, progress):
    """measure(run, group, **options): train the suite under pytest-benchmark's pedantic timing
    and put the whole record into extra_info (so the JSON output is the complete record)."""

    def measure_suite(run: RunConfig, group: str, **options) -> dict:
        try:
            suite.variant.check(run)
        except SettingError as error:
            pytest.skip(str(error))
        data, data_seconds = task_data_for(run)
        benchmark.group = group
        record = runner.measure_variant(
            suite,
            run,
            data,
            pedantic=benchmark.pedantic,
            log=progress,
            rounds=request.config.getoption("--rounds"),
            data_seconds=data_seconds,
            warm_up=True,
            block_steps=request.config.getoption("--block-steps"),
            turns=process_turns(),
            **options,
        )
        benchmark.extra_info.update(record)
        return record

    return measure_suite
