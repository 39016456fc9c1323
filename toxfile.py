"""tox's plugin for this project (tox loads `toxfile.py` from the project root by itself).

Every tox env here but lint (tests, compare, the scenarios) shares one environment, built by uv
(through tox-uv: several times faster than pip for the ~6 GB of frameworks; see
docs/running.md). This adds the runner `shared-uv-venv`:

- it is tox-uv's runner, except that the env's name is left out of what tox compares before it
  reuses an environment, so `tox` and then `tox -e compare` (or the reverse) reuse one install
  (the same filter as tox-ignore-env-name-mismatch, which does it for pip's runner);
- its installs run through `.ci/install_progress.py`, which shows uv's steps and a line every
  10 seconds where tox writes (a terminal or CI's log), because tox keeps an install's output to
  itself unless run with -vv;
- uv reads no pip.conf: where pip has its own indexes or constraints configured (a mirror, a
  folder of wheels, a cap on a version), uv is given the same ones, so both installers see the
  same packages;
- uv compiles the bytecode as pip does (UV_COMPILE_BYTECODE): without it an install here took
  31-38 s instead of 108 s, but the first run after it compiled each framework at import,
  inside the processes being measured.

A UV_* variable already set wins.
"""

import os
import subprocess
import sys
from pathlib import Path

PROGRESS = Path(__file__).resolve().parent / ".ci" / "install_progress.py"

# pip's settings and the uv variable that means the same
PIP_TO_UV = {
    "index-url": "UV_INDEX_URL",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "constraint": "UV_CONSTRAINT",
}
INDEXES = ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS")

try:  # tox-uv is there once tox has provisioned itself with tox.ini's `requires`
    from tox.config.types import Command
    from tox.plugin import impl
    from tox_ignore_env_name_mismatch import FilteredInfo
    from tox_uv._installer import UvInstaller
    from tox_uv._run import UvVenvRunner
except ImportError:  # the first tox, before it provisions: nothing to register yet
    UvVenvRunner = None


def pip_config() -> str:
    """What `pip config list` prints for the Python that runs tox (empty where pip is absent)."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    return listed.stdout if listed.returncode == 0 else ""


def uv_settings(listed: str) -> dict[str, str]:
    """The UV_* variables that give uv what pip is configured with, from `pip config list`."""
    found: dict[str, str] = {}
    # pip's PIP_* variables (listed as `:env:.setting`) override its files, so they are read last
    for line in sorted(listed.splitlines(), key=lambda line: line.startswith(":env:")):
        key, _, value = line.partition("=")
        setting = key.rpartition(".")[2]
        if setting in PIP_TO_UV and value:
            found[PIP_TO_UV[setting]] = " ".join(value.strip("'\"").split())
    # pip takes the best match over all its indexes; uv's default is the first index that has one
    if any(variable in found for variable in INDEXES):
        found["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    return found


if UvVenvRunner is not None:

    class ProgressUvInstaller(UvInstaller):
        def default_install_command(self, conf, env_name):  # noqa: ANN001 - tox's signature
            uv = super().default_install_command(conf, env_name)
            return Command([sys.executable, "-I", str(PROGRESS), *uv.args])

    class SharedUvVenvRunner(UvVenvRunner):
        @staticmethod
        def id() -> str:
            return "shared-uv-venv"

        @property
        def cache(self):  # noqa: ANN201 - tox's Info
            return FilteredInfo(self.env_dir, filter_keys=["name"], filter_section="ToxEnv")

        @property
        def installer(self):  # noqa: ANN201 - tox's Installer
            if self._installer is None:
                self._installer = ProgressUvInstaller(self)
            return self._installer

    @impl
    def tox_register_tox_env(register) -> None:  # noqa: ANN001 - tox's ToxEnvRegister
        for variable, value in {**uv_settings(pip_config()), "UV_COMPILE_BYTECODE": "1"}.items():
            os.environ.setdefault(variable, value)
        register.add_run_env(SharedUvVenvRunner)
