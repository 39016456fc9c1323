"""`python -m common ddp`: the ddp scenario, each data-parallel suite beside its original.

For every data-parallel suite (registry: SUITE["distributed"]) it runs the single-process suite
on 1 process x N threads and the data-parallel one on N processes x 1 thread, each launched the
way its framework documents (torchrun; one process with N XLA devices; N TensorFlow workers,
each given TF_CONFIG), alternating which of the two goes first from one suite to the next so
that a drift of the machine hits both alike. Both train the same task: the global batch of 128
split across the N ranks, the same lr and epochs. First a short run of each (one step, a small
test set) measures start-up: the command's wall time, launch, imports, rendezvous and exit
included; a data-parallel suite that cannot start here is not timed. With --max-load, each
launch waits for a quiet machine first. Output goes to results/<date-time>-ddp/
(the newest is also results/latest-ddp/):

    ddp.json      kind "ddp-run": settings, environment, and per suite (kind "ddp-variant")
                  both records, the accuracy gap, the throughput ratio, start-up, lines added
    summary.md    the table the report includes (common/report/ddp.py)
    logs/         every command's output; records/ every run's JSON record

A rank that fails or is killed ends the whole launch (torchrun stops the others); this driver
then names the rank in one line. On Ctrl-C or a timeout every process it started is ended.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.measure import processes, schedule
from common.measure.environment import collect
from common.scenarios import new_run_folder
from common.task import RunConfig, SettingError, code, files, paths, registry

NPROC = 2
STARTUP = {"epochs": 1, "test_size": 1000}  # one global batch of training: start-up dominates


@dataclass(frozen=True)
class Nodes:
    """torchrun's multi-node rendezvous: this launch is node `rank` of `count`, and every node's
    agent meets the others at `endpoint` (HOST:PORT of node 0, which hosts the c10d store)."""

    count: int
    rank: int
    endpoint: str

    def options(self) -> list[str]:
        return [f"--nnodes={self.count}", f"--node-rank={self.rank}", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={self.endpoint}"]  # fmt: skip


def launch_command(
    variant: registry.Variant,
    nproc: int,
    options: list[str],
    module: str | None = None,
    nodes: Nodes | None = None,
) -> list[str]:
    """The command that starts `variant` (or another module, as it would be) on nproc ranks, or
    on nproc ranks of each node."""
    module = module or variant.module_name
    if variant.launcher == "torchrun":
        # --standalone: a rendezvous on localhost at a free port, chosen by torchrun.
        rendezvous = nodes.options() if nodes else ["--standalone"]
        return [sys.executable, "-m", "torch.distributed.run", *rendezvous,
                f"--nproc-per-node={nproc}", "-m", module, *options]  # fmt: skip
    if nodes:
        raise SettingError(f"{variant.id} is not launched by torchrun: one node only")
    return [sys.executable, "-m", module, *options]  # one process (with nproc XLA devices)


def shown_command(variant: registry.Variant, nproc: int) -> str:
    """The launch command as the README gives it."""
    if variant.launcher == "torchrun":
        return f"torchrun --standalone --nproc-per-node={nproc} -m {variant.module_name}"
    environment = launch_environments(variant, nproc, inherit=False)[0]
    shown = {k: v for k, v in environment.items() if k not in ("GLOO_SOCKET_IFNAME", "RANK")}
    settings = " ".join(f"{k}='{v}'" if " " in v else f"{k}={v}" for k, v in shown.items())
    also = f", one process per worker, index 0 to {nproc - 1}" if "TF_CONFIG" in shown else ""
    return f"{settings} python -m {variant.module_name}{also}"


def launch_environments(
    variant: registry.Variant, nproc: int, inherit: bool = True
) -> list[dict[str, str]]:
    """One environment per process to start: one, but for TensorFlow's workers, started one by
    one, each with the cluster and its own index in TF_CONFIG."""
    environment = {**(os.environ if inherit else {}), **variant.environment()}
    environment["GLOO_SOCKET_IFNAME"] = "lo"  # gloo on the loopback interface only
    if variant.launcher == "xla-devices":
        flags = environment.get("XLA_FLAGS", "")
        environment["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={nproc}".strip()
    if variant.launcher != "tf-workers":
        return [environment]
    workers = [f"127.0.0.1:{free_port()}" for _ in range(nproc)]
    return [
        environment
        | {"RANK": str(index), "TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        for index in range(nproc)
    ]  # fmt: skip


def free_port() -> int:
    """A TCP port free on the loopback interface now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LaunchFailed(RuntimeError):
    """A launch ended badly; the message is one line and names the failing rank if one did."""


@dataclass
class Launch:
    """The command, started once per environment: one launcher (torchrun, which starts and
    watches the ranks), or each worker of a TensorFlow cluster (watched here)."""

    command: list[str]
    environments: list[dict[str, str]]
    log: Path
    timeout: float

    def logs(self) -> list[Path]:
        if len(self.environments) == 1:
            return [self.log]
        return [self.log.with_name(f"{self.log.stem}-rank{i}.log") for i in range(self.count)]

    @property
    def count(self) -> int:
        return len(self.environments)

    def run(self) -> float:
        """Runs the command to its end; returns its wall seconds, or raises LaunchFailed. Every
        process it started is gone when this returns or raises, Ctrl-C included."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        launched: list[subprocess.Popen] = []
        seen: dict[int, int | None] = {}  # every rank seen, to stop it though its launcher died
        try:
            for environment, log in zip(self.environments, self.logs(), strict=True):
                with log.open("w") as out:
                    launched.append(subprocess.Popen(
                        self.command, cwd=paths.ROOT, env=environment, stdout=out,
                        stderr=subprocess.STDOUT, start_new_session=True,
                    ))  # fmt: skip
            self._watch(launched, start, seen)
        finally:
            for process in launched:
                processes.stop(process, seen=seen)  # what a launcher left behind goes too
        return time.perf_counter() - start

    def _watch(self, launched: list[subprocess.Popen], start: float, seen: dict) -> None:
        """Until every process has ended well; the first that fails ends them all."""
        for polls in itertools.count():
            if polls % 5 == 0:  # once a second: the ranks start once and live long
                for process in launched:
                    seen.update(processes.below(process.pid))
            codes = [process.poll() for process in launched]
            for index, returned in enumerate(codes):
                if returned not in (None, 0):
                    for process in launched:
                        processes.stop(process, seen=seen)
                    output = self.logs()[index].read_text(errors="replace")
                    rank = index if len(launched) > 1 else None
                    raise LaunchFailed(failure_line(output, returned, rank))
            if all(returned == 0 for returned in codes):
                return
            if time.perf_counter() - start > self.timeout:
                raise LaunchFailed(f"no result after {self.timeout:.0f} s; stopped")
            time.sleep(0.2)


def failure_line(output: str, returncode: int, rank: int | None = None) -> str:
    """One line for a failed launch: the failing rank (given, or torchrun's root cause), how it
    ended, and its last line of error, or the command's last line of output."""
    cause = output.rpartition("Root Cause (first observed failure):")[2]
    found = re.search(r"rank\s*:\s*(\d+)", cause)
    failing = str(rank) if rank is not None else found.group(1) if found else None
    exit_code = re.search(r"exitcode\s*:\s*(-?\d+)", cause) if found else None
    # torchrun prefixes what a rank writes to stderr with "[rankN]: "
    lines = [re.sub(r"^\[rank\d+\]:\s*", "", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    errors = [  # a rank's exception, not torchrun's own report of it
        (number, line)
        for number, line in enumerate(lines)
        if re.match(r"[\w.]+(Error|Exception|Interrupt)\b", line)
        and not line.startswith("torch.distributed.elastic")
    ]
    if errors:  # a message over several lines (a repr of a value): its first and last line
        number, line = errors[-1]
        rest = [x for x in lines[number + 1 :] if not re.match(r"[EWI]\d{4} ", x)]
        if line.endswith(("{", "(", "[")) and rest:
            line = f"{line} ... {rest[-1]}"
        errors = [(number, line)]
    if failing:
        number = int(exit_code.group(1)) if exit_code else returncode
        ended = f"killed by {signal.Signals(-number).name}" if number < 0 else f"exit code {number}"
        detail = f": {errors[-1][1]}" if errors and number > 0 else ""
        return f"rank {failing} failed ({ended}){detail}"
    last = errors[-1][1] if errors else (lines[-1] if lines else "no output")
    return f"exit code {returncode}: {last}"


# --- the scenario ------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m common ddp",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
    )
    add = parser.add_argument
    registry.add_suite_option(add, "data-parallel suite")
    add("--nproc", type=int, default=NPROC, help=f"processes (default {NPROC})")
    add("--epochs", type=int, default=2, help="epochs (default 2)")
    add("--train-size", type=int, help="train on the first N images (default: all)")
    add("--test-size", type=int, help="evaluate on the first N test images (default: all)")
    add("--timeout", type=float, default=1800, help="seconds one launch may take (default 1800)")
    add("--max-load", type=float,
        help="before each launch, wait until the 1-minute load average is below this (a quiet "
        "machine for timing; the load is recorded either way)")  # fmt: skip
    add("--max-wait", type=float, default=900,
        help="with --max-load: seconds to wait for it at most (default 900)")  # fmt: skip
    add("--out", type=Path, default=paths.RESULTS, help="results folder (default: results/)")
    return parser


def single_of(variant: registry.Variant) -> registry.Variant:
    """The single-process variant a data-parallel one distributes (on the same backend)."""
    (single,) = [v for v in registry.variants() if v.suite == variant.distributes and (
        v.backend == variant.backend)]  # fmt: skip
    return single


def _options(run: RunConfig, record: Path) -> list[str]:
    return [*run.to_arguments(), "--record", str(record)]


def threads_per_process(variant: registry.Variant, nproc: int) -> int:
    """N ranks of 1 thread each; one process that drives all N (XLA) devices gets N threads."""
    return nproc if variant.launcher == "xla-devices" else 1


def wait_for_quiet(max_load: float | None, max_wait: float) -> float:
    """Seconds waited until the 1-minute load average fell below max_load (none when None), at
    most max_wait: then the launch goes ahead, its load recorded beside it."""
    start = time.monotonic()
    while max_load is not None and os.getloadavg()[0] >= max_load:
        if time.monotonic() - start > max_wait:
            break
        time.sleep(5)
    return time.monotonic() - start


def _launch_once(variant, run: RunConfig, nproc: int, name: str, folder: Path, options) -> dict:
    """One launch: its record (rank 0's), the wall time and the load average before it."""
    record_path = folder / "records" / f"{name}.json"
    processes = nproc if variant.distributes else 1
    launch = Launch(
        launch_command(variant, processes, _options(run, record_path)),
        launch_environments(variant, processes),
        folder / "logs" / f"{name}.log",
        options.timeout,
    )
    waited = wait_for_quiet(options.max_load, options.max_wait)
    result = {
        "kind": "ddp-launch",
        "command": shlex.join(launch.command[1:]),
        "load_before": os.getloadavg()[0],
        "waited_for_quiet_seconds": waited,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }
    try:
        result["wall_seconds"] = launch.run()
        result["record"] = json.loads(record_path.read_text())
        result["status"] = "ok"
    except LaunchFailed as error:
        result.update(status="failed", error=str(error))
    return result


def lines_added(variant: registry.Variant, single: registry.Variant) -> dict:
    """What going distributed costs in code: the code lines the data-parallel suite adds and
    removes against its original (the report's diff, section by section, harness left out), and
    the change in logical lines (radon's, the LOC figure)."""
    before, after = single.path.read_text(), variant.path.read_text()
    added, removed = code.lines_changed(code.diff_sections(before, after))
    loc = code.count_file_lines(variant.path)["loc"] - code.count_file_lines(single.path)["loc"]
    return {"added": added, "removed": removed, "net": loc}


def run_variant(variant, run: RunConfig, nproc: int, folder: Path, options, flip: bool) -> dict:
    single = single_of(variant)
    entry = {
        "kind": "ddp-variant",
        "variant": variant.id,
        "single": single.id,
        "framework": variant.framework,
        "framework_version": variant.framework_version(),
        "launcher": variant.launcher,
        "launch": shown_command(variant, nproc),
        "needs": variant.needs,
        "nproc": nproc,
        "lines": lines_added(variant, single),
    }
    jobs = [
        ("single", single, run.with_(threads=nproc)),
        ("distributed", variant, run.with_(threads=threads_per_process(variant, nproc))),
    ]
    order = list(reversed(jobs) if flip else jobs)
    # First the short start-up runs, which also show whether the data-parallel suite runs here
    # at all; then the timed runs, in the same order.
    startups = {}
    for key, chosen, job_run in order:
        short = job_run.with_(**STARTUP, train_size=job_run.batch_size)
        startups[key] = _launch_once(
            chosen, short, nproc, f"{paths.safe_name(chosen.id)}-{key}-startup", folder, options
        )
    for key, chosen, job_run in order:
        print(f"  {chosen.id}: {key}, {job_run.threads} thread(s) per process", flush=True)
        if startups["distributed"]["status"] == "ok":
            entry[key] = _launch_once(
                chosen, job_run, nproc, f"{paths.safe_name(chosen.id)}-{key}", folder, options
            )
        elif key == "distributed":  # it cannot train here: its start-up run says why
            entry[key] = dict(startups[key])
        else:
            entry[key] = {"kind": "ddp-launch", "status": "not run", "error": "nothing to compare"}
        entry[key]["startup"] = startups[key]
        print(f"    {launch_text(entry[key])}", flush=True)
    entry.update(against_single(entry["single"], entry["distributed"]))
    return entry


def launch_text(launch: dict) -> str:
    if launch["status"] != "ok":
        return f"{launch['status']}: {launch['error']}"
    record = launch["record"]
    startup = launch["startup"]
    start = f"{startup['wall_seconds']:.1f} s" if startup["status"] == "ok" else "failed"
    return (
        f"test accuracy {record['test_accuracy']:.2%}, {record['images_per_second']:.0f} "
        f"images/s, start-up {start} (load {launch['load_before']:.2f} before)"
    )


def against_single(single: dict, ddp: dict) -> dict:
    """The data-parallel launch against the single-process one: accuracy, speed, start-up."""
    if single["status"] != "ok" or ddp["status"] != "ok":
        return {"status": "failed", "error": ddp.get("error") or single.get("error")}
    one, many = single["record"], ddp["record"]
    startups = [single["startup"], ddp["startup"]]
    return {
        "status": "ok",
        "accuracy_gap_points": 100 * (many["test_accuracy"] - one["test_accuracy"]),
        "throughput_ratio": many["images_per_second"] / one["images_per_second"],
        "startup_extra_seconds": (
            startups[1]["wall_seconds"] - startups[0]["wall_seconds"]
            if all(s["status"] == "ok" for s in startups)
            else None
        ),
    }


def _settings(parser: argparse.ArgumentParser, args) -> tuple[RunConfig, list[registry.Variant]]:
    try:
        run = RunConfig(epochs=args.epochs, train_size=args.train_size, test_size=args.test_size)
        if args.nproc < 2 or run.batch_size % args.nproc:
            raise SettingError(
                f"nproc must be >= 2 and divide the global batch {run.batch_size}, got {args.nproc}"
            )
        return run, registry.select(args.suite, distributed=True)
    except (SettingError, registry.SuiteError) as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    run, chosen = _settings(parser, args)
    started = dt.datetime.now()
    folder = new_run_folder(parser, args.out, started, "ddp")
    status: dict = {
        "kind": "ddp-run",
        "started": started.isoformat(timespec="seconds"),
        "finished": None,
        "command": shlex.join(["python", "-m", "common", "ddp", *argv]),
        "settings": {**dataclasses.asdict(run), "nproc": args.nproc},
        "environment": collect(args.nproc, run.dataset),
        "variants": [],
    }
    print(f"{len(chosen)} data-parallel suites, {args.nproc} processes -> {folder}", flush=True)
    try:
        with schedule.interruptible():  # SIGTERM and SIGHUP stop it as Ctrl-C does
            _run_all(chosen, run, args, folder, status)
        failed = [v["variant"] for v in status["variants"] if v["status"] == "failed"]
        status_code = 1 if failed else 0  # as compare's: a failed variant fails the run
    except schedule.Interrupted as interrupted:
        print("interrupted: keeping what was measured", file=sys.stderr)
        status_code = 128 + interrupted.signal_number
    status["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    files.write_json(folder / "ddp.json", status)
    from common.report.ddp import ddp_section

    summary = ddp_section(folder) or ""
    files.write_text(folder / "summary.md", summary)
    paths.point_latest(folder, "ddp")  # where the report finds the newest ddp run
    print(summary)
    return status_code


def _run_all(chosen: list[registry.Variant], run: RunConfig, args, folder: Path, status) -> None:
    """Each data-parallel suite against its single-process suite; ddp.json after each."""
    for number, variant in enumerate(chosen):
        reason = variant.missing()
        if reason:
            skipped = {"kind": "ddp-variant", "variant": variant.id, "status": "skipped"}
            status["variants"].append({**skipped, "error": reason})
            continue
        print(f"{variant.id} against {variant.distributes}", flush=True)
        entry = run_variant(variant, run, args.nproc, folder, args, number % 2 == 1)
        status["variants"].append(entry)
        files.write_json(folder / "ddp.json", status)


if __name__ == "__main__":
    raise SystemExit(main())
