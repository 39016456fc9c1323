"""`python -m common instructions`: framework overhead per training step, counted in instructions.

Wall-clock time on a shared VM is noisy at every scale; an instruction count is not. Callgrind
counts every instruction a process executes, the same count for the same program and inputs
whatever else the machine is doing. Each suite trains the overhead scenario's tiny linear model
(batch 8, one thread, the settings of `common compare --overhead`) for N and for 2N steps, with
callgrind collecting inside train() only; everything else is the same in both runs, so the
difference over N is the instructions of one training step. It is the attribution scenario
(common.scenarios.attribution) with its instruction count alone, and the regression gate:

    python -m common instructions                       # the torch family and Keras, N = 100, twice
    python -m common instructions --suite lightning --steps 200 --repeats 1
    python -m common instructions --compare results/<before> results/<after>   # the gate

The gate (common.scenarios.gate) reads two runs' counts and exits 1 when a variant's count grew
by more than --factor, naming the functions that grew most. Needs valgrind and a C compiler
(Debian: apt-get install valgrind gcc).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.scenarios import attribution, gate


def _gate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m common instructions", add_help=False)
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BASELINE", "NEW"),
        help="the regression gate: compare two runs' counts (folders or JSON files) and exit 1 "
        "when NEW exceeds BASELINE by more than --factor; counts nothing",
    )
    parser.add_argument(
        "--factor",
        type=float,
        default=gate.FACTOR,
        help=f"the gate's limit on NEW / BASELINE (default {gate.FACTOR})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _gate_parser()
    known, rest = parser.parse_known_args(argv)
    if known.compare is None:
        return attribution.main(
            ["--counts", "instructions", *rest],
            prog=parser.prog,
            kind="instructions",
            parents=[parser],
        )
    if rest:
        parser.error(f"--compare counts nothing: {' '.join(rest)} does not go with it")
    if not known.factor > 1:
        parser.error(f"--factor must be above 1, got {known.factor}")
    try:
        baseline, new = known.compare
        return gate.check(baseline, new, known.factor)
    except gate.GateError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")


if __name__ == "__main__":
    raise SystemExit(main())
