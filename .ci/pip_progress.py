"""tox's install_command: pip, with its progress shown on the terminal while tox captures it.

tox 4 keeps an install's output to itself unless run with -vvv, so the first `tox` or
`tox -e compare` (about 6 GB of frameworks, minutes) looks stuck. This passes every argument to
pip unchanged, keeps pip's output for tox (which prints it if the install fails), and echoes
pip's own one-line steps ("Collecting torch==...", "Installing collected packages: ...") to the
controlling terminal, when there is one. Its exit status is pip's.
"""

import subprocess
import sys

STEPS = ("Collecting", "Downloading", "Installing", "Successfully", "Building", "ERROR")


def open_terminal():
    try:
        return open("/dev/tty", "w", buffering=1)  # noqa: SIM115 - kept open for the whole install
    except OSError:  # no controlling terminal (CI): tox's own log is all there is
        return None


def main(arguments: list[str]) -> int:
    terminal = open_terminal()
    command = [sys.executable, "-m", "pip", "install", *arguments]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as pip:
        for line in pip.stdout:
            sys.stdout.write(line)
            if terminal and line.lstrip().startswith(STEPS):
                terminal.write(f"  pip: {line.strip()[:120]}\n")
    return pip.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
