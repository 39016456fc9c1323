"""`python -m common compare`: the whole comparison, each suite and backend in its own process.

Every variant (a suite, on one backend where it has several) runs the benchmarks in a pytest
process of its own, so thread pools, memory peaks and imports never bleed from one framework into
the next, and Keras can pick its backend at import. Each process writes its own pytest-benchmark
JSON; after every variant the merged JSON and the run's status are rewritten atomically, so a
failure or a Ctrl-C loses nothing already measured. Output goes to results/<date-time>/:

    benchmark.json     all variants, one pytest-benchmark file (`pytest-benchmark compare` reads it)
    environment.json   CPU, threads, versions, commit, date, data checksums
    runs.json          per variant: ok / failed / skipped / interrupted, the error, the wall time
    raw/, logs/        each process's own JSON and full output
    report/            summary.md, plots (PNG and SVG), index.html
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from common import task
from common.measure import runner, schedule
from common.measure.environment import describe_environment
from common.scenarios import new_run_folder
from common.task import RunConfig, SettingError, files, paths, registry

CONTROL = "+A/A"  # the label's mark of the reference's second process (see _batches)
REPLICATE = "#r"  # the label's mark of a replicate after the first: lightning#r2
# Independent sets of processes per scenario (measure/speed.py, pool): two, so that an interval
# holds what differs between processes; one where a scenario's own design repeats nothing.
REPLICATES = {"comparison": 2, "modes": 1, "overhead": 1, "time-to-accuracy": 1, "seeds": 1}
QUICK = {"epochs": 1, "train_size": 4000}  # a first look: about 3 s of training per suite here
# The overhead scenario: the tiny linear model at a small batch on one thread, one epoch of full
# MNIST (7,500 steps), where what a step costs is the framework's own work (common/task).
OVERHEAD = {"model": "linear", "batch_size": task.OVERHEAD_BATCH_SIZE, "threads": 1, "epochs": 1}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m common compare",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
    )
    add = parser.add_argument
    add(
        "--suite",
        action="append",
        default=[],
        metavar="NAME",
        help="only this suite or variant (repeatable; default: all)",
    )
    add(
        "--quick",
        action="store_true",
        help=f"{QUICK['epochs']} epoch on {QUICK['train_size']:,} images per suite",
    )
    knobs = parser.add_argument_group("run knobs (the same as every suite's command line)")
    RunConfig.add_arguments(knobs.add_argument)
    scenarios = parser.add_argument_group("scenarios")
    scenarios.add_argument(
        "--modes",
        action="store_true",
        help="every suite in each of its execution modes (eager, graph, xla, compile)",
    )
    scenarios.add_argument(
        "--overhead",
        action="store_true",
        help="framework overhead per step: the tiny linear model, batch "
        f"{task.OVERHEAD_BATCH_SIZE}, 1 thread, each suite as written and with each switch",
    )
    scenarios.add_argument(
        "--target-accuracy",
        type=float,
        help="time to reach this test accuracy, e.g. 0.99 (checked after every epoch)",
    )
    scenarios.add_argument(
        "--max-epochs", type=int, default=15, help="time-to-accuracy: epoch cap (default 15)"
    )
    scenarios.add_argument(
        "--seeds",
        type=int,
        help="accuracy over seeds: each variant trained with N seeds (--seed, --seed + 1, ...)",
    )
    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--block-steps",
        type=int,
        help="training steps per timed block (default: "
        + ", ".join(f"{steps} for the {model}" for model, steps in runner.BLOCK_STEPS.items())
        + ")",
    )
    timing.add_argument(
        "--replicates",
        type=int,
        help="independent sets of processes, one after another, pooled into each interval "
        "(default: "
        + ", ".join(f"{n} for {name}" for name, n in REPLICATES.items() if n > 1)
        + ", 1 for the other scenarios)",
    )
    timing.add_argument(
        "--order-seed",
        type=int,
        default=None,
        help="seed of the shuffled order of turns in each round (default: from the clock)",
    )
    add("--out", type=Path, default=paths.RESULTS, help="results folder (default: results/)")
    return parser


def _settings(args: argparse.Namespace) -> RunConfig:
    run = RunConfig()
    if args.quick:
        run = run.with_(**QUICK)
    if args.overhead:
        run = run.with_(**OVERHEAD)
    run = run.updated(vars(args))
    if args.target_accuracy is not None:
        if not 0 < args.target_accuracy <= 1:
            raise SettingError(f"target accuracy must be in (0, 1], got {args.target_accuracy}")
        if args.max_epochs < 1:
            raise SettingError(f"max epochs must be a whole number >= 1, got {args.max_epochs}")
        run = run.with_(epochs=args.max_epochs)
    if args.block_steps is not None and args.block_steps < 1:
        raise SettingError(f"block steps must be a whole number >= 1, got {args.block_steps}")
    if args.seeds is not None and args.seeds < 2:
        raise SettingError(f"seeds must be a whole number >= 2, got {args.seeds}")
    chosen = (args.modes, args.overhead, args.target_accuracy is not None, args.seeds is not None)
    if sum(chosen) > 1:
        raise SettingError("choose one scenario: --modes, --overhead, --target-accuracy or --seeds")
    if args.replicates is None:
        args.replicates = REPLICATES[scenario(args)]
    elif args.replicates < 1:
        raise SettingError(f"replicates must be a whole number >= 1, got {args.replicates}")
    elif args.replicates > 1 and scenario(args) in ("time-to-accuracy", "seeds"):
        raise SettingError(f"--replicates does not apply to the {scenario(args)} scenario")
    return run


def _jobs(chosen: list[registry.Variant], run: RunConfig, args) -> list[tuple]:
    """(variant, run) pairs, one process each; the reference (raw PyTorch as written) first."""
    if args.modes:
        pairs = [(v, run.with_(mode=m)) for v in chosen for m in (v.modes or ("default",))]
    elif args.overhead:
        pairs = [(v, run.with_(switch=s)) for v in chosen for s in ("default", *v.switches)]
    elif args.seeds:
        pairs = [(v, run.with_(seed=run.seed + i)) for v in chosen for i in range(args.seeds)]
    else:
        pairs = [(v, run) for v in chosen]
    for variant, job_run in pairs:
        variant.check(job_run)
    return pairs


def label(variant: registry.Variant, run: RunConfig, seeded: bool = False) -> str:
    """A job's name: the variant, then its mode and switch where they are not the default, and
    its seed where a scenario runs several."""
    name = variant.id
    if run.mode != "default":
        name += f"-{run.mode}"
    if run.switch != "default":
        name += f"+{run.switch}"
    if seeded:
        name += f"#seed{run.seed}"
    return name


def is_reference(variant: registry.Variant, run: RunConfig) -> bool:
    default_mode = (variant.modes or ("default",))[0]
    return (
        variant.suite == registry.REFERENCE
        and run.mode in ("default", default_mode)
        and run.switch == "default"
    )


def _paths(log: Path) -> tuple[Path, Path, Path]:
    """A process's pytest-benchmark JSON while it runs, once done, and its JUnit XML."""
    final = log.parent.parent / "raw" / f"{log.stem}.json"
    return final.with_name(f".{final.name}.running"), final, log.with_suffix(".xml")


def _pytest_command(
    variant, run: RunConfig, args: argparse.Namespace, log: Path, control: bool = False
) -> list[str]:
    json_path, _, junit = _paths(log)
    if args.target_accuracy is not None:
        tests = ["test_time_to_accuracy.py"]
        options = ["--target-accuracy", str(args.target_accuracy), "--max-epochs", str(run.epochs)]
    elif args.modes or args.overhead or args.seeds or control:
        tests, options = ["test_training.py"], []
    else:  # the default comparison, with the reference's floor and the data-loading benchmark
        tests = ["test_training.py", "test_feeding_floor.py", "test_data_loading.py"]
        options = []
    if args.block_steps is not None:
        options += ["--block-steps", str(args.block_steps)]
    return [
        sys.executable,
        "-m",
        "pytest",
        *(str(paths.BENCHMARKS / t) for t in tests),
        *options,
        "--benchmark-only",
        "--benchmark-quiet",
        "-q",
        "-rfEs",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:warnings",  # third-party deprecation notices, by the thousand on some backends
        "--suite",
        variant.id,
        *run.to_arguments(),
        f"--benchmark-json={json_path}",
        f"--junitxml={junit}",
    ]


def junit_outcome(path: Path) -> tuple[list[str], list[str]]:
    """The first line of each failure or error, and each skip's reason, from pytest's JUnit XML:
    structured, so a long message is never cut to the terminal's width."""
    if not path.exists():
        return [], []
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError:
        return [], []
    failures, skips = [], []
    for case in root.iter("testcase"):
        for element in case:
            message = (element.get("message") or element.text or "").strip()
            first = message.splitlines()[0] if message else element.tag
            if element.tag in ("failure", "error"):
                failures.append(first)
            elif element.tag == "skipped":
                skips.append(re.sub(r"^Skipped: ", "", first))
    return failures, skips


def _outcome(returncode: int, junit: Path, benchmarks: list[dict], log: Path):
    """ok / failed / skipped, and the reason, from the structured records the child left."""
    failures, skips = junit_outcome(junit)
    if failures:
        return "failed", failures[0]
    if returncode not in (0, 5):
        tail = _last_line(log)
        return "failed", f"exit status {returncode}" + (f": {tail}" if tail else "")
    if any("epoch_history" in b.get("extra_info", {}) for b in benchmarks):
        return "ok", None
    return "skipped", skips[0] if skips else "no benchmark ran"


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _read_benchmarks(path: Path, name: str) -> tuple[list[dict], str | None]:
    """A child's pytest-benchmark records, or why they could not be read."""
    if not path.exists():
        return [], None
    try:
        return json.loads(path.read_text())["benchmarks"], None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        return [], f"its benchmark JSON {name} is unreadable ({type(error).__name__})"


def merge(run_dir: Path, runs: list[dict]) -> None:
    """All variants' pytest-benchmark JSON as one file of the same format."""
    merged = None
    for entry in runs:
        if entry["status"] != "ok" or not (run_dir / entry["json"]).exists():
            continue
        path = run_dir / entry["json"]
        data = json.loads(path.read_text())
        if merged is None:
            merged = {**data, "benchmarks": []}
        merged["benchmarks"] += data["benchmarks"]
    if merged is not None:
        files.write_json(run_dir / "benchmark.json", merged)


def harness_split(benchmarks: list[dict], wall_seconds: float) -> dict:
    """Wall time split into the suites' own work and the harness's: process starts, pytest,
    data loading and the driver itself (everything not measured inside a suite)."""
    parts = dict.fromkeys(("training", "evaluation", "imports", "checkpoints", "warm_up"), 0.0)
    for bench in benchmarks:
        info = bench.get("extra_info", {})
        if "epoch_history" in info:
            parts["training"] += info["train_seconds"] * info["rounds"]
            parts["evaluation"] += info["eval_seconds"] + info["predict_seconds"]
            parts["imports"] += info["import_seconds"]
            parts["checkpoints"] += info.get("checkpoint_seconds", 0.0)  # older records lack it
            parts["warm_up"] += info.get("warm_up_seconds", 0.0)
        else:  # the feeding floor and the cache load: measurements too
            parts["training"] += bench["stats"]["total"]
    harness = wall_seconds - sum(parts.values())
    return {
        "wall_seconds": wall_seconds,
        **{f"{k}_seconds": v for k, v in parts.items()},
        "suites_seconds": sum(parts.values()),
        "harness_seconds": harness,
        "harness_share": harness / wall_seconds if wall_seconds else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        run = _settings(args)
        pairs = _jobs(registry.select(args.suite), run, args)
    except (SettingError, registry.SuiteError) as error:
        parser.error(str(error))
    started = dt.datetime.now()
    order_seed = args.order_seed if args.order_seed is not None else int(started.timestamp())
    run_dir = new_run_folder(parser, args.out, started)
    (run_dir / "raw").mkdir()
    try:
        reserve = files.Reserve(run_dir)
    except OSError as error:  # nothing has run: leave no folder that is not a run
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"error: cannot write to {args.out}: {error.strerror or error}", file=sys.stderr)
        return 1
    try:
        return _run(args, argv, run, pairs, run_dir, started, order_seed, reserve)
    finally:
        reserve.release()


def scenario(args: argparse.Namespace) -> str:
    """Which scenario the command line chose (the default comparison when none)."""
    chosen = {
        "modes": args.modes,
        "overhead": args.overhead,
        "time-to-accuracy": args.target_accuracy is not None,
        "seeds": args.seeds is not None,
    }
    return next((name for name, given in chosen.items() if given), "comparison")


def _job(args, run: RunConfig, variant, job_run, control: bool, replicate: int, run_dir: Path):
    name = label(variant, job_run, bool(args.seeds)) + (CONTROL if control else "")
    name += f"{REPLICATE}{replicate}" if replicate > 1 else ""
    safe = paths.safe_name(name)
    job = schedule.Job(
        label=name,
        command=lambda log, v=variant, r=job_run, c=control: _pytest_command(v, r, args, log, c),
        environment={
            **os.environ,
            **variant.environment(),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": str(job_run.threads),
        },
        log_path=run_dir / "logs" / f"{safe}.log",
        # one reference per replicate, at the base seed: the others are variants like any other
        reference=is_reference(variant, job_run) and not control and job_run.seed == run.seed,
    )
    job.result = {
        "kind": "variant-run",
        "label": name,
        "variant": variant.id,
        "suite": variant.suite,
        "mode": job_run.mode,
        "switch": job_run.switch,
        "reference": job.reference,
        "control": control,
        "replicate": replicate,
        "status": "pending",
    }
    return job


def _batches(args, run: RunConfig, pairs, run_dir: Path) -> list[list[schedule.Job]]:
    """The groups of processes, one replicate after another: each replicate is a fresh set of
    processes (its own reference and A/A control among them), split into groups of at most
    schedule.MAX_ALIVE, each led by the replicate's reference."""
    if scenario(args) in ("comparison", "modes", "overhead"):
        # The A/A control: a second process of the reference, measured against the first like
        # any variant. Its ratio must read 1: it checks that the intervals hold what differs
        # between two processes of the same code.
        pairs = [*pairs, *((v, r, True) for v, r in pairs if is_reference(v, r))]
    batches = []
    for replicate in range(1, args.replicates + 1):
        jobs = [
            _job(args, run, variant, job_run, bool(control), replicate, run_dir)
            for variant, job_run, *control in pairs
        ]
        # The reference leads every group, and its A/A control follows it into the first.
        jobs.sort(key=lambda j: (not j.reference, not j.result["control"]))
        batches += schedule.groups(jobs)
    for number, group in enumerate(batches, 1):
        for job in group:
            job.group = number
    return batches


def _run(args, argv, run, pairs, run_dir, started, order_seed, reserve) -> int:
    batches = _batches(args, run, pairs, run_dir)
    everyone = [job for group in batches for job in group]
    status = {
        "kind": "comparison-run",
        "started": started.isoformat(timespec="seconds"),
        "finished": None,
        "command": " ".join(["python -m common compare", *(argv or sys.argv[1:])]),
        "scenario": scenario(args),
        "settings": {
            **dataclasses.asdict(run),
            "quick": args.quick,
            "modes": args.modes,
            "overhead": args.overhead,
            "target_accuracy": args.target_accuracy,
            "seeds": args.seeds,
            "block_steps": args.block_steps or runner.BLOCK_STEPS[run.model],
            "replicates": args.replicates,
            "interleaved": True,
        },
        "schedule": {"order_seed": order_seed, "max_alive": schedule.MAX_ALIVE, "rounds": []},
        "variants": [job.result for job in everyone],
    }
    try:
        environment = describe_environment(run.threads, run.dataset)
        files.write_json(run_dir / "environment.json", environment)
        files.write_json(run_dir / "runs.json", status)
    except OSError as error:
        print(f"error: cannot write to {run_dir}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(
        f"{len(everyone)} processes in {len(batches)} interleaved group(s), {run.epochs} epochs "
        f"on {run.train_size or 'all'} images, {run.threads} threads -> {run_dir}",
        flush=True,
    )

    def on_message(job: schedule.Job, message: dict) -> None:
        if message.get("kind") == "ready":
            print(f"  {job.label}: ready", flush=True)
        elif message.get("kind") == "turn" and message.get("epoch"):
            epoch = message["epoch"]
            print(
                f"  {job.label}: epoch {epoch['epoch']}  loss {epoch['train_loss']:.4f}  test "
                f"accuracy {epoch['test_accuracy']:.2%}  {epoch['train_seconds']:.1f} s",
                flush=True,
            )

    def on_finished(job: schedule.Job, returncode: int) -> None:
        running, final, junit = _paths(job.log_path)
        final.parent.mkdir(exist_ok=True)
        benchmarks, unreadable = _read_benchmarks(running, final.name)
        if running.exists():
            running.replace(final)
        state, error = _outcome(returncode, junit, benchmarks, job.log_path)
        if unreadable and state != "failed":
            state, error = "failed", unreadable
        job.result.update(
            status=state,
            error=error,
            group=job.group,
            json=str(final.relative_to(run_dir)),
            log=str(job.log_path.relative_to(run_dir)),
        )
        note = f": {error}" if error else ""
        print(f"{job.label} {state}{note}", flush=True)
        merge(run_dir, status["variants"])
        files.write_json(run_dir / "runs.json", status)

    clock = time.perf_counter()
    interrupted = None
    try:
        for number, group in enumerate(batches, 1):
            if len(batches) > 1:
                print(f"group {number}/{len(batches)}: {', '.join(j.label for j in group)}")
            rounds = schedule.run_interleaved(
                group,
                cwd=paths.ROOT,
                seed=order_seed + number - 1,
                on_message=on_message,
                on_finished=on_finished,
            )
            for entry in rounds:
                entry["group"] = number
            status["schedule"]["rounds"] += rounds
    except (KeyboardInterrupt, schedule.Interrupted) as error:
        interrupted = getattr(error, "signal_number", 2)
        _mark_pending(status, "interrupted")
        print("interrupted: keeping what was measured", file=sys.stderr)
    except OSError as error:  # the results folder's disk is full or gone: every child is ended
        reserve.release()  # room for runs.json to say how the run ended
        where = f" ({error.filename})" if error.filename else ""
        _mark_pending(status, "interrupted", f"stopped: {error.strerror or error}{where}")
        print(
            f"error: cannot write the results in {run_dir}: {error.strerror or error}{where}; "
            f"stopped, and "
            f"every file written before is whole (atomic writes)",
            file=sys.stderr,
        )
        _finish_quietly(status, run_dir, args.out)
        return 1
    status["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    merged = run_dir / "benchmark.json"
    benchmarks = json.loads(merged.read_text())["benchmarks"] if merged.exists() else []
    status["split"] = harness_split(benchmarks, time.perf_counter() - clock)
    try:
        files.write_json(run_dir / "runs.json", status)
        reserve.release()  # what it kept for runs.json is the report's now
        _write_report(run_dir)
        paths.point_latest(run_dir)
    except OSError as error:
        print(
            f"error: cannot write the report: {error.strerror or error}; the measurements are "
            f"whole in {run_dir}: `python -m common report {run_dir}` once there is room",
            file=sys.stderr,
        )
        return 1
    unfinished = [e for e in status["variants"] if e["status"] in ("failed", "interrupted")]
    if unfinished:
        print(f"not completed: {', '.join(e['label'] for e in unfinished)}", file=sys.stderr)
    if interrupted is not None:
        return 128 + interrupted
    return 1 if unfinished else 0


def _mark_pending(status: dict, state: str, error: str | None = None) -> None:
    for entry in status["variants"]:
        if entry["status"] == "pending":
            entry.update(status=state, error=error)


def _finish_quietly(status: dict, run_dir: Path, out: Path) -> None:
    """After a failed write: record the run as finished where the disk still allows it."""
    status["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    try:
        files.write_json(run_dir / "runs.json", status)
        paths.point_latest(run_dir)
    except OSError:
        pass  # runs.json keeps its last whole version


def _write_report(run_dir: Path) -> None:
    try:
        from common.report import write_report
    except ImportError as error:
        print(f"no report: {error} (pip install -e '.[report]')", file=sys.stderr)
        return
    summary = write_report(run_dir)
    print(f"report: {summary.parent / 'index.html'}\n")
    print(summary.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
