"""`python -m common.compare`: the whole comparison, each suite and backend in its own process.

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
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from common import files, registry
from common.environment import describe_environment
from common.task import RunConfig, SettingError

ROOT = Path(__file__).resolve().parent.parent
QUICK = {"epochs": 1, "train_size": 4000}  # a first look: about 3 s of training per suite here


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m common.compare", description=__doc__.split("\n")[0].split(": ", 1)[1]
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
    add("--epochs", type=int, help="epochs per suite (default 2)")
    add("--train-size", type=int, help="training images (default all 60,000)")
    add("--mode", default="default", help="execution mode for every suite (default: each one's)")
    add(
        "--modes",
        action="store_true",
        help="scenario: every suite in each of its execution modes (eager, graph, xla, compile)",
    )
    add(
        "--target-accuracy",
        type=float,
        help="scenario: time to reach this test accuracy, e.g. 0.99 (checked after every epoch)",
    )
    add("--max-epochs", type=int, default=15, help="time-to-accuracy: epoch cap (default 15)")
    add("--rounds", type=int, default=1, help="timed rounds per suite")
    add("--threads", type=int, default=RunConfig().threads)
    add("--out", type=Path, default=ROOT / "results", help="results folder (default: results/)")
    return parser


def _settings(args: argparse.Namespace) -> RunConfig:
    run = RunConfig(threads=args.threads, mode=args.mode)
    if args.quick:
        run = run.with_(**QUICK)
    if args.epochs is not None:
        run = run.with_(epochs=args.epochs)
    if args.train_size is not None:
        run = run.with_(train_size=args.train_size)
    if args.target_accuracy is not None:
        if not 0 < args.target_accuracy <= 1:
            raise SettingError(f"target accuracy must be in (0, 1], got {args.target_accuracy}")
        run = run.with_(epochs=args.max_epochs)
    if args.rounds < 1:
        raise SettingError(f"rounds must be a whole number >= 1, got {args.rounds}")
    return run


def _jobs(chosen: list[registry.Variant], run: RunConfig, every_mode: bool):
    """(variant, run) pairs: one process each."""
    if not every_mode:
        return [(v, run) for v in chosen]
    return [(v, run.with_(mode=mode)) for v in chosen for mode in (v.modes or ("default",))]


def _pytest_command(variant, run: RunConfig, args: argparse.Namespace, json_path: Path):
    if args.target_accuracy is not None:
        tests = ["test_time_to_accuracy.py"]
        options = ["--target-accuracy", str(args.target_accuracy), "--max-epochs", str(run.epochs)]
    elif args.modes:
        tests, options = ["test_training.py"], []
    else:  # the default comparison, with the reference's floor and the data-loading benchmark
        tests = ["test_training.py", "test_feeding_floor.py", "test_data_loading.py"]
        options = []
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(str(ROOT / "benchmarks" / t) for t in tests),
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
        "--epochs",
        str(run.epochs),
        "--mode",
        run.mode,
        "--rounds",
        str(args.rounds),
        f"--benchmark-json={json_path}",
    ]
    if run.train_size is not None:
        command += ["--train-size", str(run.train_size)]
    return command


def _outcome(returncode: int, log: str, benchmarks: list[dict]) -> tuple[str, str | None]:
    """ok / failed / skipped, and the one-line reason pytest gave for a failure or a skip."""
    failures = re.findall(r"^(?:FAILED|ERROR) \S+(?: - (.*))?$", log, re.MULTILINE)
    if returncode not in (0, 5) or failures:
        reason = next((f for f in failures if f), None)
        tail = [line for line in log.strip().splitlines() if line.strip()][-1:] or ["no output"]
        return "failed", reason or f"exit status {returncode}: {tail[0]}"
    if any("epoch_history" in b.get("extra_info", {}) for b in benchmarks):
        return "ok", None
    skipped = re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", log, re.MULTILINE)
    return "skipped", skipped[0] if skipped else "no benchmark ran"


def run_job(variant, run: RunConfig, args, run_dir: Path, echo) -> dict:
    name = variant.id if run.mode == "default" else f"{variant.id}-{run.mode}"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
    json_path, log_path = run_dir / "raw" / f"{safe}.json", run_dir / "logs" / f"{safe}.log"
    partial = json_path.with_name(f".{json_path.name}.running")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **variant.environment(),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(run.threads),
    }
    start, lines = time.perf_counter(), []
    command = _pytest_command(variant, run, args, partial)
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        try:
            for line in child.stdout:
                lines.append(line)
                if line.startswith(f"  {variant.id}: "):  # the per-epoch progress lines
                    echo(line.rstrip())
            child.wait()
        finally:
            files.write_text(log_path, "".join(lines))
    benchmarks = json.loads(partial.read_text())["benchmarks"] if partial.exists() else []
    if partial.exists():
        partial.replace(json_path)
    status, error = _outcome(child.returncode, "".join(lines), benchmarks)
    return {
        "variant": variant.id,
        "suite": variant.suite,
        "mode": run.mode,
        "status": status,
        "error": error,
        "wall_seconds": time.perf_counter() - start,
        "json": str(json_path.relative_to(run_dir)),
        "log": str(log_path.relative_to(run_dir)),
    }


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
        jobs = _jobs(registry.select(args.suite), run, args.modes)
    except (SettingError, registry.SuiteError) as error:
        parser.error(str(error))
    started = dt.datetime.now()
    run_dir = args.out / started.strftime("%Y%m%d-%H%M%S")
    settings = {
        "epochs": run.epochs,
        "train_size": run.train_size,
        "mode": run.mode,
        "threads": run.threads,
        "rounds": args.rounds,
        "quick": args.quick,
        "modes": args.modes,
        "target_accuracy": args.target_accuracy,
    }
    status = {
        "started": started.isoformat(timespec="seconds"),
        "finished": None,
        "command": " ".join(["python -m common.compare", *(argv or sys.argv[1:])]),
        "settings": settings,
        "variants": [
            {"variant": v.id, "suite": v.suite, "mode": r.mode, "status": "pending"}
            for v, r in jobs
        ],
    }
    files.write_json(run_dir / "environment.json", describe_environment(run.threads, run.dataset))
    files.write_json(run_dir / "runs.json", status)
    print(
        f"{len(jobs)} runs, {run.epochs} epochs on {run.train_size or 'all'} images, "
        f"{run.threads} threads -> {run_dir}"
    )
    clock = time.perf_counter()
    try:
        for number, (variant, job_run) in enumerate(jobs, 1):
            label = f"[{number}/{len(jobs)}] {variant.id}" + (
                f" ({job_run.mode})" if job_run.mode != "default" else ""
            )
            print(label, flush=True)
            result = run_job(variant, job_run, args, run_dir, print)
            status["variants"][number - 1] = result
            note = f": {result['error']}" if result["error"] else ""
            print(f"{label} {result['status']} in {result['wall_seconds']:.0f} s{note}", flush=True)
            merge(run_dir, status["variants"])
            files.write_json(run_dir / "runs.json", status)
    except KeyboardInterrupt:
        for entry in status["variants"]:
            if entry["status"] == "pending":
                entry["status"] = "interrupted"
        print("interrupted: keeping what was measured", file=sys.stderr)
    status["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    merged = run_dir / "benchmark.json"
    benchmarks = json.loads(merged.read_text())["benchmarks"] if merged.exists() else []
    status["split"] = harness_split(benchmarks, time.perf_counter() - clock)
    files.write_json(run_dir / "runs.json", status)
    _write_report(run_dir)
    latest = args.out / "latest"
    latest.unlink(missing_ok=True)
    latest.symlink_to(run_dir.name)
    unfinished = [e for e in status["variants"] if e["status"] in ("failed", "interrupted")]
    if unfinished:
        print(f"not completed: {', '.join(e['variant'] for e in unfinished)}", file=sys.stderr)
    if any(e["status"] == "interrupted" for e in unfinished):
        return 130
    return 1 if unfinished else 0


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
