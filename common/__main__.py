"""python -m common <command> [options]: the project's entry points, one per scenario family.

compare        the comparison and its scenarios (--quick, --modes, --overhead, --seeds, ...)
ddp            the data-parallel suites against their single-process suites
instructions   overhead per step in instructions, under valgrind; --compare A B: the gate
attribution    where the per-step overhead goes: calls by package, operators, instructions
versions       each framework's per-step cost across its releases, in uv-built environments
report RUN     the report of a run folder (summary.md, index.html, plots)
figures RUN..  runs side by side from their figures records (docs/results.md's three-run table)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "compare": "common.scenarios.compare",
    "ddp": "common.scenarios.distributed",
    "instructions": "common.scenarios.instructions",
    "attribution": "common.scenarios.attribution",
    "versions": "common.scenarios.versions",
    "report": "common.report",
    "figures": "common.report.figures",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, *rest = argv
    if command not in COMMANDS:
        print(
            f"error: unknown command {command!r}; choose one of {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    sys.argv[0] = f"python -m common {command}"  # argparse's usage line names the command
    try:
        return importlib.import_module(COMMANDS[command]).main(rest)
    except KeyboardInterrupt:  # before a command's own handling starts, or after it ends
        print(f"python -m common {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
