"""tox's install command (see toxfile.py): the installer, with its progress shown where tox writes.

tox keeps an install's output to itself unless run with -vv, so the first `tox` or `tox -e
compare` (about 6 GB of frameworks) would look stuck, in a terminal and in CI's log alike. This
runs the installer given as its arguments (uv, as `uv pip install ...`) unchanged, keeps its whole
output for tox (which prints it if the install fails), and writes the installer's one-line steps
("Resolved 160 packages", "Prepared ...", "Installed ...", "Bytecode compiled ...") and, every 10
seconds, the time so far to tox's own output: a terminal or CI's log. Its exit status is the
installer's.
"""

import os
import subprocess
import sys
import threading
import time

STEPS = (
    "Resolved",
    "Prepared",
    "Installed",
    "Uninstalled",
    "Building",
    "Built",
    "Bytecode",
    "error",
)
EVERY_S = 10


def open_output():
    """tox's own standard output (the terminal or CI's log); the terminal where /proc is absent."""
    for path in (f"/proc/{os.getppid()}/fd/1", "/dev/tty"):
        try:
            return open(path, "a", buffering=1)  # noqa: SIM115 - kept open for the whole install
        except OSError:
            continue
    return None


def main(command: list[str]) -> int:
    output = open_output()
    last = ["starting"]

    def show(line: str) -> None:
        if output:
            output.write(f"  install: {line}\n")

    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as installer:

        def relay() -> None:
            for line in installer.stdout:
                sys.stdout.write(line)
                if line.lstrip().startswith(STEPS):
                    last[0] = line.strip()[:120]
                    show(last[0])

        reader = threading.Thread(target=relay, daemon=True)
        reader.start()
        started = time.monotonic()
        while installer.poll() is None:
            try:
                installer.wait(timeout=EVERY_S)
            except subprocess.TimeoutExpired:
                show(f"{time.monotonic() - started:.0f} s so far (last step: {last[0]})")
        reader.join()
    return installer.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
