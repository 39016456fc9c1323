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
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import task
from common.measure import hooks, runner, schedule
from common.measure.environment import collect
from common.scenarios import catalog, new_run_folder, progress
from common.scenarios.catalog import QUICK, Scenario
from common.scenarios.outcomes import (
    REASON_ENV,
    harness_split,
    junit_outcome,
    merge,
    outcome,
    read_benchmarks,
    reason_file,
)
from common.task import RunConfig, SettingError, code, files, paths, records, registry

CONTROL = "+A/A"  # the label's mark of the reference's second process (see _batches)
REPLICATE = "#r"  # the label's mark of a replicate after the first: lightning#r2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m common compare",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
    )
    registry.add_suite_option(parser.add_argument)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['epochs']} epoch on {QUICK['train_size']:,} images per suite",
    )
    knobs = parser.add_argument_group("run knobs (the same as every suite's command line)")
    RunConfig.add_arguments(knobs.add_argument)
    catalog.add_arguments(parser.add_argument_group("scenarios"))
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
        + ", ".join(f"{s.replicates} for {s.name}" for s in catalog.SCENARIOS if s.replicates > 1)
        + ", 1 for the other scenarios)",
    )
    timing.add_argument(
        "--order-seed",
        type=int,
        default=None,
        help="seed of the shuffled order of turns in each round (default: from the clock)",
    )
    parser.add_argument(
        "--out", type=Path, default=paths.RESULTS, help="results folder (default: results/)"
    )
    return parser


def _settings(args: argparse.Namespace) -> RunConfig:
    """The run every job starts from: the quick preset, the scenario's own knobs, then the
    user's; the scenario checks its options last. Sets args.replicates where it is not given."""
    scenario = catalog.chosen(args)
    run = RunConfig()
    if args.quick:
        run = run.with_(**QUICK)
    run = scenario.configure(run.with_(**scenario.settings).updated(vars(args)), args)
    if args.block_steps is not None and args.block_steps < 1:
        raise SettingError(f"block steps must be a whole number >= 1, got {args.block_steps}")
    if args.replicates is None:
        args.replicates = scenario.replicates
    elif args.replicates < 1:
        raise SettingError(f"replicates must be a whole number >= 1, got {args.replicates}")
    elif args.replicates > 1 and not scenario.replicable:
        raise SettingError(f"--replicates does not apply to the {scenario.name} scenario")
    return run


def _jobs(chosen: list[registry.Variant], run: RunConfig, args) -> list[tuple]:
    """(variant, run) pairs, one process each; the reference (raw PyTorch as written) first."""
    scenario = catalog.chosen(args)
    pairs = [(v, job_run) for v in chosen for job_run in scenario.expand(v, run, args)]
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


def _child_files(log: Path) -> tuple[Path, Path, Path]:
    """A process's pytest-benchmark JSON while it runs, once done, and its JUnit XML."""
    final = log.parent.parent / "raw" / f"{log.stem}.json"
    return final.with_name(f".{final.name}.running"), final, log.with_suffix(".xml")


def _pytest_command(
    variant, run: RunConfig, args: argparse.Namespace, log: Path, control: bool = False
) -> list[str]:
    """The child's pytest command: the scenario's benchmarks (the control runs the training
    alone), the variant and every run knob."""
    json_path, _, junit = _child_files(log)
    scenario = catalog.chosen(args)
    tests = catalog.TRAINING_ONLY if control else scenario.tests
    options = scenario.options(run, args)
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


@dataclass
class Plan:
    """One comparison, settled before anything runs."""

    args: argparse.Namespace
    argv: list[str]
    scenario: Scenario
    run: RunConfig
    pairs: list[tuple]  # (variant, run) per process, before replicates and the control
    run_dir: Path
    started: dt.datetime
    order_seed: int


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    try:
        run = _settings(args)
        pairs = _jobs(registry.select(args.suite), run, args)
    except (SettingError, registry.SuiteError) as error:
        parser.error(str(error))
    if note := task.thread_note(run.threads):
        print(note, file=sys.stderr)
    started = dt.datetime.now()
    order_seed = args.order_seed if args.order_seed is not None else int(started.timestamp())
    run_dir = new_run_folder(parser, args.out, started)
    (run_dir / "raw").mkdir()
    plan = Plan(args, argv, catalog.chosen(args), run, pairs, run_dir, started, order_seed)
    try:
        reserve = files.Reserve(run_dir)
    except OSError as error:  # nothing has run: leave no folder that is not a run
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"error: cannot write to {args.out}: {error.strerror or error}", file=sys.stderr)
        return 1
    try:
        return _run(plan, reserve)
    finally:
        reserve.release()


def _job(plan: Plan, variant, job_run: RunConfig, control: bool, replicate: int) -> schedule.Job:
    name = label(variant, job_run, plan.scenario.seeded) + (CONTROL if control else "")
    name += f"{REPLICATE}{replicate}" if replicate > 1 else ""
    log_path = plan.run_dir / "logs" / f"{paths.safe_name(name)}.log"
    job = schedule.Job(
        label=name,
        command=lambda log: _pytest_command(variant, job_run, plan.args, log, control),
        environment={
            **os.environ,
            **variant.environment(),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": str(job_run.threads),
        },
        log_path=log_path,
        # one reference per replicate, at the base seed: the others are variants like any other
        reference=is_reference(variant, job_run) and not control and job_run.seed == plan.run.seed,
    )
    job.result = records.VariantRun(
        kind="variant-run",
        label=name,
        variant=variant.id,
        suite=variant.suite,
        mode=job_run.mode,
        switch=job_run.switch,
        reference=job.reference,
        control=control,
        replicate=replicate,
        status="pending",
    )
    return job


def _batches(plan: Plan) -> list[list[schedule.Job]]:
    """The groups of processes, one replicate after another: each replicate is a fresh set of
    processes (its own reference and A/A control among them), split into groups of at most
    schedule.MAX_ALIVE, each led by the replicate's reference."""
    pairs = [(v, r, False) for v, r in plan.pairs]
    if plan.scenario.control:
        # The A/A control: a second process of the reference, measured against the first like
        # any variant. Its ratio must read 1: it checks that the intervals hold what differs
        # between two processes of the same code.
        pairs += [(v, r, True) for v, r in plan.pairs if is_reference(v, r)]
    families = {variant.id: variant.family for variant, _ in plan.pairs}
    rank = {name: index for index, name in enumerate(dict.fromkeys(families.values()))}

    def family(job: schedule.Job) -> str:
        return families[job.result["variant"]]

    batches = []
    for replicate in range(1, plan.args.replicates + 1):
        jobs = [
            _job(plan, variant, job_run, control, replicate) for variant, job_run, control in pairs
        ]
        # The reference leads every group, and its A/A control follows it into the first; a
        # suite's family (registry.Variant.family) stays together, in one group where it fits.
        jobs.sort(key=lambda j: (not j.reference, not j.result["control"], rank[family(j)]))
        batches += schedule.groups(jobs, family=family)
    for number, group in enumerate(batches, 1):
        for job in group:
            job.group = number
            # where it leaves the line it stops for; a later group's copy of the reference too
            job.environment[REASON_ENV] = str(reason_file(job.log_path))
    return batches


def _status(plan: Plan, everyone: list[schedule.Job]) -> records.ComparisonRun:
    """runs.json as it starts: every job pending."""
    args = plan.args
    return records.ComparisonRun(
        kind="comparison-run",
        started=plan.started.isoformat(timespec="seconds"),
        finished=None,
        command=shlex.join(["python", "-m", "common", "compare", *plan.argv]),  # pastes back
        scenario=plan.scenario.name,
        settings={
            **dataclasses.asdict(plan.run),
            "quick": args.quick,
            **{str(s.dest): s.value(args) for s in catalog.CHOSEN_BY_OPTION},
            "block_steps": args.block_steps or runner.BLOCK_STEPS[plan.run.model],
            "replicates": args.replicates,
            "interleaved": True,
        },
        schedule={"order_seed": plan.order_seed, "max_alive": schedule.MAX_ALIVE, "rounds": []},
        variants=[job.result for job in everyone],
    )


class Progress:
    """What the driver does as the children report: a line per epoch, and after each child
    its outcome in runs.json and the merged benchmark.json."""

    def __init__(
        self, plan: Plan, status: records.ComparisonRun, heartbeat: progress.Heartbeat
    ) -> None:
        self.run_dir, self.status, self.heartbeat = plan.run_dir, status, heartbeat
        self.blocks: dict[str, list[records.Block]] = {}  # as each process reports them

    def on_message(self, job: schedule.Job, message: dict) -> None:
        if message.get("kind") == "ready":
            print(f"  {job.label}: ready", flush=True)
        elif message.get("kind") == "turn":
            self.heartbeat.tick()
            self.blocks.setdefault(job.label, []).extend(message.get("blocks") or [])
            if message.get("epoch"):
                print(f"  {job.label}: {hooks.epoch_line(message['epoch'])}", flush=True)

    def keep_blocks(self, job_result: records.VariantRun) -> None:
        """A process that did not finish has no benchmark JSON: its runs.json entry keeps the
        blocks it reported, so nothing it measured is lost."""
        if job_result["status"] != "ok" and self.blocks.get(job_result["label"]):
            job_result["blocks"] = self.blocks[job_result["label"]]

    def on_finished(self, job: schedule.Job, returncode: int) -> None:
        running, final, junit = _child_files(job.log_path)
        final.parent.mkdir(exist_ok=True)
        benchmarks, unreadable = read_benchmarks(running, final.name)
        if running.exists():
            running.replace(final)
        state, error = outcome(returncode, junit, benchmarks, job.log_path)
        if unreadable and state != "failed":
            state, error = "failed", unreadable
        job.result.update(
            {
                "status": state,
                "error": error,
                "group": job.group,
                "json": str(final.relative_to(self.run_dir)),
                "log": str(job.log_path.relative_to(self.run_dir)),
            }
        )
        self.keep_blocks(job.result)
        note = f": {error}" if error else ""
        print(f"{job.label} {state}{note}", flush=True)
        if state == "ok":  # what it left out, in one line each (an unwritable cache, say)
            for skipped in junit_outcome(junit)[1]:
                if not skipped.startswith(registry.BESIDE_REFERENCE):  # by design, not news
                    print(f"  {job.label}: skipped: {skipped}", flush=True)
        merge(self.run_dir, self.status["variants"])
        files.write_json(self.run_dir / "runs.json", self.status)


def _run(plan: Plan, reserve: files.Reserve) -> int:
    batches = _batches(plan)
    everyone = [job for group in batches for job in group]
    status = _status(plan, everyone)
    run = plan.run
    try:
        files.write_json(plan.run_dir / "environment.json", collect(run.threads, run.dataset))
        code.record_sources(plan.run_dir)  # the code measured, for the report to show
        files.write_json(plan.run_dir / "runs.json", status)
    except OSError as error:  # nothing has run: leave no folder that is not a run
        shutil.rmtree(plan.run_dir, ignore_errors=True)
        print(f"error: cannot write to {plan.args.out}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(
        f"{len(everyone)} processes in {len(batches)} interleaved group(s), {run.epochs} epochs "
        f"on {run.train_size or 'all'} images, {run.threads} threads -> {plan.run_dir}",
        flush=True,
    )
    clock = time.perf_counter()
    try:
        interrupted = _run_groups(plan, batches, status)
    except OSError as error:  # the results folder's disk is full or gone: every child is ended
        reserve.release()  # room for runs.json to say how the run ended
        return _stopped_by_disk(plan, status, error)
    status["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    merged = plan.run_dir / "benchmark.json"
    benchmarks = json.loads(merged.read_text())["benchmarks"] if merged.exists() else []
    status["split"] = harness_split(benchmarks, time.perf_counter() - clock)
    return _finish(plan, status, reserve, interrupted)


def _run_groups(plan: Plan, batches: list[list[schedule.Job]], status) -> int | None:
    """Every group in turn; returns the signal's number if one stopped the run, else None."""
    block_steps = plan.args.block_steps or runner.BLOCK_STEPS[plan.run.model]
    processes = sum(len(group) for group in batches)
    total = progress.expected_turns(plan.run, processes, block_steps)
    with progress.Heartbeat(total) as heartbeat:
        return _run_each_group(plan, batches, status, Progress(plan, status, heartbeat))


def _run_each_group(plan: Plan, batches, status, reporter: Progress) -> int | None:
    try:
        for number, group in enumerate(batches, 1):
            if len(batches) > 1:
                print(f"group {number}/{len(batches)}: {', '.join(j.label for j in group)}")
            schedule.run_interleaved(
                group,
                cwd=paths.ROOT,
                seed=plan.order_seed + number - 1,
                on_message=reporter.on_message,
                on_finished=reporter.on_finished,
                schedule=status["schedule"]["rounds"],  # kept, round by round, if interrupted
                stamp={"group": number},
            )
    except (KeyboardInterrupt, schedule.Interrupted) as error:
        _mark_pending(status, "interrupted")
        for entry in status["variants"]:
            reporter.keep_blocks(entry)
        print("interrupted: keeping what was measured", file=sys.stderr)
        return getattr(error, "signal_number", 2)
    return None


def _stopped_by_disk(plan: Plan, status, error: OSError) -> int:
    where = f" ({error.filename})" if error.filename else ""
    _mark_pending(status, "interrupted", f"stopped: {error.strerror or error}{where}")
    print(
        f"error: cannot write the results in {plan.run_dir}: {error.strerror or error}{where}; "
        f"stopped, and every file written before is whole (atomic writes)",
        file=sys.stderr,
    )
    status["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    try:  # record the run as finished where the disk still allows it
        files.write_json(plan.run_dir / "runs.json", status)
        paths.point_latest(plan.run_dir)
    except OSError:
        pass  # runs.json keeps its last whole version
    return 1


def _finish(plan: Plan, status, reserve: files.Reserve, interrupted: int | None) -> int:
    try:
        files.write_json(plan.run_dir / "runs.json", status)
        reserve.release()  # what it kept for runs.json is the report's now
        paths.point_latest(plan.run_dir)
        _write_report(plan.run_dir)
    except KeyboardInterrupt:  # a second Ctrl-C, while the report is written
        print(
            f"interrupted: no report; the measurements are whole in {plan.run_dir}: "
            f"`python -m common report {plan.run_dir}` writes it",
            file=sys.stderr,
        )
        return 130
    except OSError as error:
        print(
            f"error: cannot write the report: {error.strerror or error}; the measurements are "
            f"whole in {plan.run_dir}: `python -m common report {plan.run_dir}` once there is room",
            file=sys.stderr,
        )
        return 1
    unfinished = [e for e in status["variants"] if e["status"] in ("failed", "interrupted")]
    if unfinished:
        print(f"not completed: {', '.join(e['label'] for e in unfinished)}", file=sys.stderr)
    if interrupted is not None:
        return 128 + interrupted
    return 1 if unfinished else 0


def _mark_pending(status, state: str, error: str | None = None) -> None:
    for entry in status["variants"]:
        if entry["status"] == "pending":
            entry.update(status=state, error=error)


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
