"""The install (toxfile.py, .ci/install_progress.py): uv sees what pip is configured with, and an
install shows its steps and a line every 10 seconds where tox writes."""

from __future__ import annotations

import subprocess
import sys

from common.task import paths

sys.path.insert(0, str(paths.ROOT))  # toxfile.py lies at the root, outside any package
import toxfile  # noqa: E402 - after the root is on the path

PROGRESS = paths.ROOT / ".ci" / "install_progress.py"

# what `pip config list` printed on this project's build machine
PIP_CONFIG = """\
:env:.disable-pip-version-check='1'
:env:.find-links='/opt/wheels-from-env'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple
file:///opt/pypi-more/simple'
global.find-links='/opt/wheels'
"""


def test_uv_is_given_pips_indexes_and_constraints() -> None:
    settings = toxfile.uv_settings(PIP_CONFIG.replace("simple\nfile", "simple file"))
    assert settings == {
        "UV_CONSTRAINT": "/etc/xdg/pip/constraints.txt",
        "UV_EXTRA_INDEX_URL": "file:///opt/pypi/simple file:///opt/pypi-more/simple",
        # a PIP_* variable overrides pip's files, whatever the order pip lists them in
        "UV_FIND_LINKS": "/opt/wheels-from-env",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
    }


def test_no_pip_settings_leave_uv_alone() -> None:
    assert toxfile.uv_settings("") == {}
    assert toxfile.uv_settings("global.constraint='/c.txt'\n") == {"UV_CONSTRAINT": "/c.txt"}


def test_install_progress_shows_steps_and_time_where_its_parent_writes(tmp_path, capfd) -> None:
    # A fake installer: two steps, 12 s of silence between them (one periodic line), then fails.
    installer = tmp_path / "installer.py"
    installer.write_text(
        "import sys, time\n"
        "print('Resolved 3 packages in 5ms', flush=True)\n"
        "print('a detail line', flush=True)\n"
        "time.sleep(12)\n"
        "print('Installed 3 packages in 1ms', flush=True)\n"
        "sys.exit(3)\n"
    )
    kept = tmp_path / "kept.txt"
    # This test's process stands for tox: its standard output (captured by capfd) is where the
    # steps must go, and the installer's own output (kept.txt) is what tox keeps.
    with kept.open("w") as output:
        done = subprocess.run(
            [sys.executable, "-I", PROGRESS, sys.executable, installer], stdout=output, timeout=120
        )
    assert done.returncode == 3  # the installer's exit status
    assert kept.read_text().splitlines() == [
        "Resolved 3 packages in 5ms",
        "a detail line",
        "Installed 3 packages in 1ms",
    ]
    shown = capfd.readouterr().out
    lines = shown.splitlines()
    assert lines[0] == "  install: Resolved 3 packages in 5ms"
    assert lines[-1] == "  install: Installed 3 packages in 1ms"
    assert any(
        line.endswith("s so far (last step: Resolved 3 packages in 5ms)") for line in lines[1:-1]
    ), lines
    assert "a detail line" not in shown
