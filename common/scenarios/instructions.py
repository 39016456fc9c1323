"""`python -m common instructions`: framework overhead per training step, counted in instructions.

Wall-clock time on a shared VM is noisy at every scale; an instruction count is not. Valgrind's
cachegrind counts every instruction a process executes, the same count for the same program and
inputs whatever else the machine is doing. Each suite trains the overhead scenario's tiny linear
model (batch 8, one thread, the same settings as `common compare --overhead`) twice under it, for
N and for 2N steps; everything else the process does (importing the framework, loading the data,
evaluating, saving) is the same in both runs, so the difference over N is the instructions of
one training step: the framework's loop and the kernels. A slower simulator, not a slower
machine: about 3 minutes a run here, mostly importing the framework.

    python -m common instructions                       # the torch family, N = 400, twice
    python -m common instructions --suite lightning --steps 200 --repeats 1

It is a regression check a maintainer can trust on any machine: two repeats must agree within
AGREEMENT, and the report says whether they did. Needs valgrind (Debian: apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import task
from common.measure.environment import collect
from common.scenarios import new_run_folder
from common.task import files, paths, registry

DEFAULT_SUITES = ("raw_pytorch", "ignite", "fastai", "lightning")
AGREEMENT = 0.03
SUMMARY = re.compile(r"^==\d+==\s+I\s+refs:\s+([\d,]+)", re.MULTILINE)


def count_from(valgrind_output: str) -> int:
    """The instruction count in cachegrind's closing summary ("==PID== I refs: 1,234")."""
    found = SUMMARY.findall(valgrind_output)
    if not found:
        raise ValueError("no 'I refs' line in valgrind's output")
    return int(found[-1].replace(",", ""))


def instructions_per_step(short: int, long: int, steps: int) -> float:
    """Instructions of one step: the 2N-step run less the N-step run, over N."""
    return (long - short) / steps


def command(suite: str, steps: int, seed: int = task.DEFAULT_SEED) -> list[str]:
    """The suite's own command line, training the tiny model for exactly `steps` steps."""
    return [
        sys.executable,
        "-m",
        f"suites.{suite}",
        "--model",
        "linear",
        "--batch-size",
        str(task.OVERHEAD_BATCH_SIZE),
        "--threads",
        "1",
        "--epochs",
        "1",
        "--train-size",
        str(steps * task.OVERHEAD_BATCH_SIZE),
        "--test-size",
        str(task.OVERHEAD_BATCH_SIZE),
        "--seed",
        str(seed),
    ]


def count(suite: str, steps: int, variant_env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={Path(folder) / 'out'}",
                *command(suite, steps),
            ],
            cwd=paths.ROOT,
            env={
                **os.environ,
                **variant_env,
                "PYTHONHASHSEED": "0",
                "OMP_NUM_THREADS": "1",
                "PYTHONDONTWRITEBYTECODE": "1",  # the same work in every run: no .pyc written
            },
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{suite} under valgrind exited {result.returncode}: {tail}")
    return count_from(result.stderr)


def count_suite(suite: str, steps: int, repeats: int, jobs: int, echo=print) -> dict:
    variant = next(v for v in registry.variants() if v.suite == suite)
    runs = [(r, n) for r in range(repeats) for n in (steps, 2 * steps)]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = {key: pool.submit(count, suite, key[1], variant.environment()) for key in runs}
        counts = {key: future.result() for key, future in futures.items()}
    per = [
        instructions_per_step(counts[r, steps], counts[r, 2 * steps], steps) for r in range(repeats)
    ]
    spread = (max(per) - min(per)) / min(per) if len(per) > 1 else None
    record = {
        "kind": "instruction-count",
        "suite": suite,
        "framework": variant.framework,
        "framework_version": variant.framework_version(),
        "steps": steps,
        "counts": [{"repeat": r, "steps": n, "instructions": counts[r, n]} for r, n in runs],
        "per_step": per,
        "spread": spread,
        "agree": spread is None or spread <= AGREEMENT,
    }
    echo(
        f"  {suite}: {', '.join(f'{p:,.0f}' for p in per)} instructions per step"
        + (f" (repeats differ by {spread:.2%})" if spread is not None else "")
    )
    return record


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m common instructions",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
    )
    registry.add_suite_option(parser.add_argument, default=", ".join(DEFAULT_SUITES))
    parser.add_argument("--steps", type=int, default=400, help="N: runs of N and 2N steps")
    parser.add_argument("--repeats", type=int, default=2, help="independent N/2N pairs")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="valgrind runs at once (counts are unaffected by load; wall time is)",
    )
    parser.add_argument("--out", type=Path, default=paths.RESULTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.exit(
            2,
            f"{parser.prog}: error: valgrind is not installed (Debian: apt-get install valgrind)\n",
        )
    if args.steps < 1 or args.repeats < 1 or args.jobs < 1:
        parser.error("--steps, --repeats and --jobs must be whole numbers >= 1")
    try:
        chosen = [v.suite for v in registry.select(args.suite or list(DEFAULT_SUITES))]
    except registry.SuiteError as error:
        parser.error(str(error))
    started = dt.datetime.now()
    run_dir = new_run_folder(parser, args.out, started, "instructions")
    print(f"instructions per step, N = {args.steps}, {args.repeats} repeat(s) -> {run_dir}")
    records = _count_all(list(dict.fromkeys(chosen)), args)
    files.write_json(run_dir / "environment.json", collect(1, "mnist"))
    files.write_json(
        run_dir / "instructions.json",
        {
            "kind": "instruction-counts",
            "started": started.isoformat(timespec="seconds"),
            "steps": args.steps,
            "repeats": args.repeats,
            "records": records,
        },
    )
    table = instructions_table(records)
    files.write_text(run_dir / "summary.md", table + "\n")
    print(table)
    failed = [r for r in records if "error" in r or not r.get("agree", True)]
    return 1 if failed else 0


def _count_all(suites: list[str], args) -> list[dict]:
    """Each suite's counts (a failure is recorded, the others go on), then each one's overhead
    against the reference's."""
    records = []
    try:
        for suite in suites:
            try:
                records.append(count_suite(suite, args.steps, args.repeats, args.jobs))
            except RuntimeError as error:
                records.append({"kind": "instruction-count", "suite": suite, "error": str(error)})
                print(f"  {suite} failed: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted: keeping what was counted", file=sys.stderr)
    reference = next(
        (r for r in records if r["suite"] == registry.REFERENCE and "per_step" in r), None
    )
    for record in records:
        if reference and "per_step" in record:
            record["overhead_vs_reference"] = min(record["per_step"]) - min(reference["per_step"])
    return records


def instructions_table(records: list[dict]) -> str:
    from tabulate import tabulate

    rows = []
    for r in records:
        if "error" in r:
            rows.append([r["suite"], "FAILED", r["error"][:60], "", ""])
            continue
        spread = "" if r["spread"] is None else f"{r['spread']:.2%}"
        overhead = r.get("overhead_vs_reference")
        rows.append(
            [
                r["suite"],
                " / ".join(f"{p:,.0f}" for p in r["per_step"]),
                spread + ("" if r["agree"] else " (over 3%)"),
                "reference"
                if r["suite"] == registry.REFERENCE
                else "—"
                if overhead is None
                else f"{overhead:+,.0f}",
                r.get("framework_version", ""),
            ]
        )
    headers = (
        "suite",
        "instructions per step (each repeat)",
        "repeats differ by",
        "beyond raw PyTorch",
        "version",
    )
    return tabulate(rows, headers, tablefmt="pipe", disable_numparse=True)


if __name__ == "__main__":
    raise SystemExit(main())
