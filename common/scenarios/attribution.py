"""`python -m common attribution`: where each framework's per-step cost goes, in exact counts.

For each suite, on the overhead scenario's tiny model (or --model convnet), the probe
(common.measure.probe) trains N and then 2N steps under each counter: Python calls by package,
torch operators, and callgrind's instructions by shared object and C function. Everything
outside the loop is the same in both runs, so the difference over N is one step; the harness's
own calls are left out. Counts do not depend on the machine's load: two repeats must agree
within AGREEMENT on every count, and the run says whether they did. A last pass times N and 2N
steps without any counter, for the wall-clock microseconds a step's counts stand for.

    python -m common attribution                          # the torch family and Keras, linear
    python -m common attribution --suite lightning --steps 100 --repeats 1
    python -m common attribution --python /path/to/venv/bin/python   # another environment
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from common import task
from common.measure import counting
from common.scenarios import new_run_folder, write_run
from common.task import files, paths, registry

DEFAULT_SUITES = ("raw_pytorch", "lightning", "fabric", "ignite", "fastai", "keras")
COUNT_KINDS = ("calls", "operators", "instructions")
AGREEMENT = 0.01  # the bar: two independent runs agree within 1% on every count
# A group under this share of its count's total (a shared object that runs 2% of a step) is
# held to the same bar as a share of the total: its relative difference is the noise of a
# few hundred instructions (a malloc that lands differently), not a different count.
FLOOR = 0.01
TOP = 25  # functions shown per count in the record's top lists
# Functions whose per-step counts a record keeps, the largest first, for the gate to name what
# grew (every one of several thousand C functions made a record of several MB).
KEPT = 300
# The wall-clock pass's N: enough steps that a step's microseconds stand above a process's noise.
TIME_STEPS = {"linear": 2000, "convnet": 100}


class ProbeFailed(RuntimeError):
    """A probe process exited non-zero: the message is its last line."""


def probe_command(
    kind: str, variant: registry.Variant, steps: int, out: Path, model: str, python: str
) -> list[str]:
    """The probe's command line: the suite trains exactly `steps` steps of the overhead task."""
    batch = task.OVERHEAD_BATCH_SIZE if model == "linear" else task.BATCH_SIZE
    return [
        python,
        *("-m", "common.measure.probe", kind, "--out", str(out), "--suite", variant.suite),
        *("--model", model, "--batch-size", str(batch), "--threads", "1", "--epochs", "1"),
        *("--train-size", str(steps * batch), "--test-size", str(task.OVERHEAD_BATCH_SIZE)),
        *("--seed", str(task.DEFAULT_SEED)),
    ]


def run_probe(kind: str, variant: registry.Variant, steps: int, model: str, python: str) -> dict:
    """One probe process; for instructions, under callgrind with its window."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "counts.json"
        command = probe_command(kind, variant, steps, out, model, python)
        if kind == "instructions":
            grind = Path(folder) / "callgrind.out"
            command = ["valgrind", *counting.CALLGRIND_OPTIONS, f"--callgrind-out-file={grind}"]
            command += probe_command(kind, variant, steps, out, model, python)
        started = time.perf_counter()
        result = subprocess.run(
            command,
            cwd=paths.ROOT,
            env={
                **os.environ,
                **variant.environment(),
                "PYTHONHASHSEED": "0",
                "OMP_NUM_THREADS": "1",
                "PYTHONDONTWRITEBYTECODE": "1",  # the same work in every run: no .pyc written
            },
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not out.exists():
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ProbeFailed(f"{variant.id} {kind} probe exited {result.returncode}: {tail}")
        found = files.read_json(out)
        found["process_seconds"] = time.perf_counter() - started
        if kind == "instructions":
            found["total"], costs = counting.exclusive_costs(Path(f"{grind}.1").read_text())
            found["costs"] = {f"{obj}\t{fn}": n for (obj, fn), n in costs.items()}
    return found


# --- arithmetic: one step, and what repeats and suites differ by ------------------------------
def one_step(short: Mapping, long: Mapping, steps: int) -> dict:
    """Each count of one step: the 2N-step run's less the N-step run's, over N (zeros dropped)."""
    return {
        key: value
        for key in {*short, *long}
        if (value := (long.get(key, 0) - short.get(key, 0)) / steps)
    }


def grouped(counts: Mapping[str, float], group: Callable[[str], str]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for key, value in counts.items():
        totals[group(key)] = totals.get(group(key), 0.0) + value
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def _made(found: Mapping) -> dict[str, float]:
    return {"\t".join((r["group"], r["module"], r["function"])): r["calls"] for r in found["made"]}


def _call_key(row: Mapping) -> str:
    return "\t".join((row["behalf"], row["group"], row["module"], row["function"]))


def step_counts(kind: str, short: dict, long: dict, steps: int) -> dict:
    """One repeat's per-step counts of one kind: totals, groups and every key."""
    if kind == "calls":
        keyed = one_step(
            {_call_key(r): r["calls"] for r in short["calls"]},
            {_call_key(r): r["calls"] for r in long["calls"]},
            steps,
        )
        groups = grouped(keyed, lambda key: key.split("\t", 1)[0])
        made = one_step(_made(short), _made(long), steps)
        return {"total": sum(keyed.values()), "groups": groups, "keys": keyed, "made": made}
    elif kind == "operators":
        if short["operators"] is None:
            return {"total": None, "groups": {}, "keys": {}}
        keyed = one_step(short["operators"], long["operators"], steps)
        groups = keyed
    else:
        keyed = one_step(short["costs"], long["costs"], steps)
        groups = grouped(keyed, lambda key: object_label(key.split("\t", 1)[0]))
    return {"total": sum(keyed.values()), "groups": groups, "keys": keyed}


def object_label(path: str) -> str:
    """A shared object as `package: file` (`torch: libtorch_cpu.so`)."""
    group = counting.object_group(path)
    name = Path(path).name
    return group if group.startswith("system: ") else f"{group}: {name}"


def disagreement(repeats: list[dict]) -> dict:
    """How far the repeats are apart: the largest relative difference over the total and every
    group of at least FLOOR of it (and which count that is); for the smaller groups, the
    largest difference as a share of the total. All 0.0 for a single repeat."""
    worst = {"relative": 0.0, "count": "total", "small_groups": 0.0}
    for first, other in zip(repeats, repeats[1:], strict=False):
        if first["total"] is None:
            continue
        scale = max(abs(first["total"]), abs(other["total"]), 1.0)
        pairs = [("total", first["total"], other["total"])] + [
            (key, first["groups"].get(key, 0.0), other["groups"].get(key, 0.0))
            for key in {*first["groups"], *other["groups"]}
        ]
        for key, a, b in pairs:
            if max(abs(a), abs(b)) >= FLOOR * scale:
                relative = abs(a - b) / max(abs(a), abs(b))
                if relative > worst["relative"]:
                    worst.update(relative=relative, count=key)
            else:
                worst["small_groups"] = max(worst["small_groups"], abs(a - b) / scale)
    return worst


def largest(keys: Mapping[str, float], n: int = KEPT) -> dict[str, float]:
    """The n keys of largest magnitude, with their values."""
    return dict(sorted(keys.items(), key=lambda item: -abs(item[1]))[:n])


def top(keys: Mapping[str, float], n: int = TOP) -> list[list]:
    """The n largest keys, split back into their fields, with their per-step value."""
    ranked = sorted(keys.items(), key=lambda item: -abs(item[1]))[:n]
    return [[*key.split("\t"), value] for key, value in ranked]


# --- one suite ---------------------------------------------------------------------------------
def attribute_suite(variant: registry.Variant, args, echo=print) -> dict:
    """Every count of one suite, N and 2N steps, each repeat; then one step's figures."""
    runs = [(k, r, n) for k in args.counts for r in range(args.repeats) for n in (1, 2)]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            key: pool.submit(
                run_probe, key[0], variant, key[2] * args.steps, args.model, args.python
            )
            for key in runs
        }
        found = {key: future.result() for key, future in futures.items()}
    seconds: collections.Counter = collections.Counter()
    for (kind, _, _), probe in found.items():
        seconds[kind] += probe["process_seconds"]
    record: dict = {
        "kind": "attribution-suite",
        "suite": variant.suite,
        "variant": variant.id,
        "framework": variant.framework,
        # the version in the environment that ran it (--python), where a probe ran
        "framework_version": next(
            (probe["framework_version"] for probe in found.values()), variant.framework_version()
        ),
        "model": args.model,
        "steps": args.steps,
        "process_seconds": dict(seconds),
    }
    for kind in args.counts:
        repeats = [
            step_counts(kind, found[kind, r, 1], found[kind, r, 2], args.steps)
            for r in range(args.repeats)
        ]
        spread = disagreement(repeats)
        record[kind] = {
            "per_step": repeats[0]["total"],
            "repeats": [r["total"] for r in repeats],
            "groups": repeats[0]["groups"],
            "repeat_groups": [r["groups"] for r in repeats],
            "top": top(repeats[0]["keys"]),
            "keys": largest(repeats[0]["keys"]),
            **({"made": largest(repeats[0]["made"])} if "made" in repeats[0] else {}),
            "disagreement": spread["relative"],
            "disagreement_at": spread["count"],
            "small_groups_disagreement": spread["small_groups"],
            "agree": spread["relative"] <= AGREEMENT,
        }
    echo(f"  {variant.id}: " + ", ".join(_said(record, kind) for kind in args.counts))
    return record


def _said(record: dict, kind: str) -> str:
    counts = record[kind]
    if counts["per_step"] is None:
        return f"no {kind}"
    agree = "" if counts["agree"] else f" (repeats differ by {counts['disagreement']:.2%})"
    return f"{counts['per_step']:,.0f} {kind}{agree}"


def microseconds(
    variant: registry.Variant, args, model: str | None = None, steps: int | None = None
) -> float:
    """Wall-clock microseconds of one step, N and 2N steps without a counter, after the probe's
    warm-up (one pair: a clock, not a count; the overhead scenario measures it with intervals).
    model and steps: args.model's and its TIME_STEPS unless given."""
    model = model or args.model
    steps = steps or TIME_STEPS[model]
    short, long = (
        run_probe("time", variant, n * steps, model, args.python)["seconds"] for n in (1, 2)
    )
    return (long - short) / steps * 1e6


def overhead(record: dict, reference: dict) -> dict:
    """A suite's counts less the reference's (raw PyTorch on the same model), per step: each
    count's total and groups, and the keys that grew most."""
    result: dict = {}
    for kind in COUNT_KINDS:
        mine, theirs = record.get(kind), reference.get(kind)
        if not mine or not theirs or mine["per_step"] is None or theirs["per_step"] is None:
            continue
        groups = {
            key: mine["groups"].get(key, 0.0) - theirs["groups"].get(key, 0.0)
            for key in {*mine["groups"], *theirs["groups"]}
        }
        keys = {
            key: mine["keys"].get(key, 0.0) - theirs["keys"].get(key, 0.0)
            for key in {*mine["keys"], *theirs["keys"]}
        }
        result[kind] = {
            "per_step": mine["per_step"] - theirs["per_step"],
            "groups": dict(sorted(groups.items(), key=lambda item: -abs(item[1]))),
            "top": top({k: v for k, v in keys.items() if v}),
        }
        if "made" in mine and "made" in theirs:
            made = {
                key: mine["made"].get(key, 0.0) - theirs["made"].get(key, 0.0)
                for key in {*mine["made"], *theirs["made"]}
            }
            result[kind]["made_top"] = top({k: v for k, v in made.items() if v})
    return result


def add_overheads(records: list[dict]) -> None:
    """Each record's overhead over the reference's, where the reference was counted."""
    reference = next((r for r in records if r["suite"] == registry.REFERENCE), None)
    for record in records:
        if reference is not None and record is not reference and "error" not in record:
            record["overhead"] = overhead(record, reference)
            if "microseconds_per_step" in record and "microseconds_per_step" in reference:
                record["overhead"]["microseconds"] = (
                    record["microseconds_per_step"] - reference["microseconds_per_step"]
                )


# --- the command --------------------------------------------------------------------------------
def _parser(prog: str, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n")[0].split(": ", 1)[1], parents=parents
    )
    registry.add_suite_option(parser.add_argument, default=", ".join(DEFAULT_SUITES))
    parser.add_argument("--model", choices=("linear", "convnet"), default="linear")
    parser.add_argument("--steps", type=int, default=400, help="N: runs of N and 2N steps")
    parser.add_argument("--repeats", type=int, default=2, help="independent N/2N pairs")
    parser.add_argument(
        "--counts",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        default=list(COUNT_KINDS),
        help=f"which counts (default: {', '.join(COUNT_KINDS)})",
    )
    parser.add_argument("--no-time", action="store_true", help="skip the wall-clock pass")
    parser.add_argument("--jobs", type=int, default=2, help="probe processes at once")
    parser.add_argument(
        "--python", default=sys.executable, help="the environment's interpreter (a version's)"
    )
    parser.add_argument("--out", type=Path, default=paths.RESULTS)
    return parser


def _checked(parser: argparse.ArgumentParser, argv: list[str] | None):
    args = parser.parse_args(argv)
    unknown = sorted(set(args.counts) - set(COUNT_KINDS))
    if unknown:
        parser.error(
            f"--counts: unknown {', '.join(unknown)}; choose from {', '.join(COUNT_KINDS)}"
        )
    if args.steps < 1 or args.repeats < 1 or args.jobs < 1:
        parser.error("--steps, --repeats and --jobs must be whole numbers >= 1")
    if "instructions" in args.counts and shutil.which("valgrind") is None:
        parser.exit(
            2,
            f"{parser.prog}: error: valgrind is not installed (Debian: apt-get install valgrind)"
            "; or leave instructions out: --counts calls,operators\n",
        )
    if shutil.which(args.python) is None and not Path(args.python).exists():
        parser.error(f"--python {args.python}: no such interpreter")
    try:
        args.variants = registry.select(args.suite or list(DEFAULT_SUITES))
        if "instructions" in args.counts:
            counting.window_library()  # built once, here, before the probes race to build it
    except registry.SuiteError as error:
        parser.error(str(error))
    except counting.CompilerMissing as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    return args


def count_all(args, echo=print) -> list[dict]:
    """Every chosen variant's counts (a failure is recorded, the others go on), its wall-clock
    microseconds, and each one's overhead over the reference."""
    records = []
    try:
        for variant in args.variants:
            try:
                records.append(attribute_suite(variant, args, echo))
            except ProbeFailed as error:
                records.append(
                    {
                        "kind": "attribution-suite",
                        "suite": variant.suite,
                        "variant": variant.id,
                        "error": str(error),
                    }
                )
                echo(f"  {variant.id} failed: {error}")
        if not args.no_time:
            for record in records:
                if "error" not in record:
                    variant = next(v for v in args.variants if v.id == record["variant"])
                    record["microseconds_per_step"] = microseconds(variant, args)
    except KeyboardInterrupt:
        echo("interrupted: keeping what was counted")
    add_overheads(records)
    return records


def main(
    argv: list[str] | None = None,
    prog: str = "python -m common attribution",
    kind: str = "attribution",
    parents: list[argparse.ArgumentParser] | None = None,
) -> int:
    """The scenario; `python -m common instructions` is it with --counts instructions, in run
    folders of its own kind, its gate's options shown in its help (parents)."""
    parser = _parser(prog, parents or [])
    args = _checked(parser, argv)
    started = dt.datetime.now()
    run_dir = new_run_folder(parser, args.out, started, kind)
    print(
        f"attribution per step ({', '.join(args.counts)}), {args.model} model, N = {args.steps},"
        f" {args.repeats} repeat(s) -> {run_dir}"
    )
    records = count_all(args)
    from common.report import attributed

    record = {
        "kind": "attribution",
        "started": started.isoformat(timespec="seconds"),
        "seconds": (dt.datetime.now() - started).total_seconds(),
        "model": args.model,
        "batch_size": task.OVERHEAD_BATCH_SIZE if args.model == "linear" else task.BATCH_SIZE,
        "steps": args.steps,
        "repeats": args.repeats,
        "python": args.python,
        "records": records,
    }
    print(write_run(run_dir, kind, "attribution.json", record, attributed.read_attribution))
    failed = [
        r
        for r in records
        if "error" in r or not all(r[kind]["agree"] for kind in args.counts if kind in r)
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
