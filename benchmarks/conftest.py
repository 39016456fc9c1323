"""Fixtures shared by the benchmarks."""

import pytest


@pytest.fixture
def progress(request):
    """One line per epoch on the terminal, even while pytest captures output."""
    plugins = request.config.pluginmanager
    terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def write(line: str) -> None:
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"  {request.node.callspec.id}: {line}")

    return write
