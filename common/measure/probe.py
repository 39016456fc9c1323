"""`python -m common.measure.probe KIND --out FILE --suite NAME [run options]`.

Trains a suite as the benchmarks do (common.measure.runner: a warm-up on a few images first,
so that what a process does once is not counted) with one counter of common.measure.counting
around the timed train() call and nothing else: `calls` (Python calls by
package), `operators` (torch operators), `instructions` (opens callgrind's window: run it under
`valgrind` with counting.CALLGRIND_OPTIONS) or `time` (train()'s wall-clock seconds). Writes
the counts to FILE as JSON. The attribution scenario runs it for N and for 2N steps.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from common.measure import counting, runner
from common.task import RunConfig, SettingError, files, load_task_data, registry
from common.task.data import DataError

KINDS = ("calls", "operators", "instructions", "time")


@contextlib.contextmanager
def _calls(found: dict) -> Iterator[None]:
    counter = counting.CallCounter()
    with counter.counting():
        yield
    found["calls"] = counter.rows()
    found["made"] = counter.made_rows()


@contextlib.contextmanager
def _operators(found: dict) -> Iterator[None]:
    if "torch" not in sys.modules:  # a suite whose framework does not compute with torch
        found["operators"] = None
        yield
        return
    with counting.count_operators() as counts:
        yield
    found["operators"] = dict(sorted(counts.items()))


@contextlib.contextmanager
def _instructions(found: dict) -> Iterator[None]:
    window = counting.CallgrindWindow(counting.window_library())
    window.open()
    try:
        yield
    finally:
        window.close()
    found["window"] = "closed"


@contextlib.contextmanager
def _time(found: dict) -> Iterator[None]:
    start = time.perf_counter()
    yield
    found["seconds"] = time.perf_counter() - start


COUNTERS: dict[str, Callable[[dict], contextlib.AbstractContextManager]] = {
    "calls": _calls,
    "operators": _operators,
    "instructions": _instructions,
    "time": _time,
}


def counted_train(train: Callable, kind: str, found: dict) -> Callable:
    """train() with the counter of `kind` around its second call: the first is the warm-up."""

    @functools.wraps(train)
    def wrapper(*args, **kwargs):
        found["trainings"] = found.get("trainings", 0) + 1
        if found["trainings"] != 2:
            return train(*args, **kwargs)
        with COUNTERS[kind](found):
            return train(*args, **kwargs)

    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.measure.probe", description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--out", type=Path, required=True, help="the counts, as JSON")
    parser.add_argument("--suite", required=True, help="a suite's name (raw_pytorch, ...)")
    RunConfig.add_arguments(parser.add_argument)
    args = parser.parse_args(argv)
    variant = next(
        (v for v in registry.variants(None) if v.suite == args.suite and not v.missing()), None
    )
    if variant is None:
        parser.error(
            f"--suite {args.suite}: no such suite runs here (python -m common compare --list)"
        )
    found: dict = {"kind": f"probe-{args.kind}", "suite": args.suite, "variant": variant.id}
    try:
        run = RunConfig().updated(vars(args))
        suite = registry.load(variant)
        suite.module.train = counted_train(suite.module.train, args.kind, found)  # type: ignore[attr-defined]
        record = runner.measure_variant(suite, run, load_task_data(run), warm_up=True)
    except (SettingError, DataError, registry.SuiteError, counting.CompilerMissing) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    found["steps"] = sum(block["steps"] for block in record["blocks"])
    found["framework_version"] = record["framework_version"]
    files.write_json(args.out, found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
