"""`python -m common versions`: each framework's per-step cost across its releases.

For every release in RELEASES, uv builds an isolated environment (the project's torch 2.14.1 and
base packages, and that release), and the suite, unchanged, runs in it: the attribution
scenario's counts of one step of the tiny model (Python calls and callgrind's instructions, N
and 2N steps), its wall-clock microseconds per step, and the convnet's time per step against
raw PyTorch's in the same environment. Then the regression gate compares each release with the one
before it. The environments live in a temporary folder for the run's length, one folder per
release (uv's cache makes each a matter of seconds: the packages are linked from it).

    python -m common versions                      # every release below
    python -m common versions --suite lightning    # one framework's
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common.scenarios import attribution, gate, new_run_folder, write_run
from common.task import files, paths, registry


@dataclass(frozen=True)
class Release:
    variant: str  # the suite's variant that runs it
    distribution: str
    version: str
    released: str  # the release's first upload to PyPI
    # The release declares an older torch than the project's (fastai before 2.8.5: torch<2.9):
    # it is installed over that bound, with the same torch as every other release, and says so.
    over_torch_bound: bool = False


# Three or more releases of each framework over two years or more, each one that builds with the
# project's torch 2.14.1 and runs the suite as it is (checked here, 2026-12-06). Older ones need
# a change to the suite: Lightning before 2.4 has no seed_everything(verbose=) (and before 2.4
# imports pkg_resources, gone from setuptools 81), Ignite before 0.5 keeps ProgressBar in
# ignite.contrib.handlers.
RELEASES = (
    Release("lightning", "pytorch-lightning", "2.4.0", "2024-08-07"),
    Release("lightning", "pytorch-lightning", "2.5.6", "2025-11-05"),
    Release("lightning", "pytorch-lightning", "2.6.6", "2026-09-10"),
    Release("ignite", "pytorch-ignite", "0.5.0.post2", "2024-04-01"),
    Release("ignite", "pytorch-ignite", "0.5.1", "2024-08-13"),
    Release("ignite", "pytorch-ignite", "0.5.5", "2026-07-22"),
    Release("fastai", "fastai", "2.7.12", "2023-03-28", over_torch_bound=True),
    Release("fastai", "fastai", "2.8.4", "2025-08-19", over_torch_bound=True),
    Release("fastai", "fastai", "2.8.12", "2026-09-09"),
    Release("keras[torch]", "keras", "3.0.0", "2023-11-28"),
    Release("keras[torch]", "keras", "3.10.0", "2025-05-19"),
    Release("keras[torch]", "keras", "3.15.1", "2026-07-29"),
)
TORCH = "torch==2.14.1"  # the project's pin, in every environment
# What the harness imports besides the framework (pyproject's [project] dependencies, less pytest).
BASE = ("numpy==2.4.6", "pooch==1.9.0", "tqdm==4.70.1", "radon==6.0.1", "py-cpuinfo==9.0.0")
# The convnet's steps timed in each environment, N and 2N (batch 128, one thread, after a warm-up):
# its time per step against raw PyTorch's in the same environment, where the kernels dominate.
CONVNET_STEPS = 50


class BuildFailed(RuntimeError):
    """uv could not build a release's environment: the message is uv's last line."""


def uv_environment() -> dict[str, str]:
    """The UV_* settings that give uv what pip is configured with (toxfile.py's, the same code
    that tox's installs use), bytecode compiled as tox does."""
    spec = importlib.util.spec_from_file_location("toxfile", paths.ROOT / "toxfile.py")
    assert spec and spec.loader
    toxfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toxfile)
    settings = toxfile.uv_settings(toxfile.pip_config())
    return {**settings, "UV_COMPILE_BYTECODE": "1", **os.environ}


def uv_binary() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:  # not installed with the project: one on PATH
        return shutil.which("uv") or "uv"
    return find_uv_bin()


def build(release: Release, folder: Path) -> float:
    """A fresh environment for the release in `folder`; returns the seconds uv took."""
    uv, environment = uv_binary(), uv_environment()
    requirement = f"{release.distribution}=={release.version}"
    shutil.rmtree(folder, ignore_errors=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as override:
        override.write(TORCH + "\n")
        override.flush()
        install = [uv, "pip", "install", "--python", str(folder / "bin" / "python")]
        install += [*BASE, TORCH, requirement]
        if release.over_torch_bound:
            install += ["--override", override.name]
        started = time.perf_counter()
        for command in ([uv, "venv", "-q", "--python", sys.executable, str(folder)], install):
            done = subprocess.run(command, env=environment, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise BuildFailed(f"{requirement}: uv exited {done.returncode}: {last}")
    return time.perf_counter() - started


def _counting(args, python: str) -> argparse.Namespace:
    """The attribution scenario's settings for a release: calls and instructions, one repeat."""
    return argparse.Namespace(
        counts=["calls", "instructions"], repeats=1, steps=args.steps, model="linear",
        python=python, jobs=args.jobs,
    )  # fmt: skip


def count(release: Release, args, echo=print) -> dict:
    """A release's environment, built, and its counts (load does not change them)."""
    folder = args.environments / f"{release.distribution}-{release.version}"
    build_seconds = build(release, folder)
    python = str(folder / "bin" / "python")
    variant = next(v for v in registry.variants() if v.id == release.variant)
    record = attribution.attribute_suite(variant, _counting(args, python), echo)
    if record["framework_version"] != release.version:
        found = record["framework_version"]
        raise BuildFailed(f"{release.distribution}=={release.version}: the environment has {found}")
    record.update(
        label=f"{release.variant} {release.version}",
        release=asdict(release),
        build_seconds=build_seconds,
        python=python,
    )
    return record


def time_release(record: dict, args, echo=print) -> None:
    """The clocks, once every release is counted (one process at a time): microseconds per step
    of the tiny model, and the convnet's time per step against raw PyTorch's in the same
    environment."""
    variant = next(v for v in registry.variants() if v.id == record["release"]["variant"])
    reference = next(v for v in registry.variants() if v.suite == registry.REFERENCE)
    counting = _counting(args, record["python"])
    record["microseconds_per_step"] = attribution.microseconds(variant, counting)
    step = {
        "reference_us": attribution.microseconds(
            reference, counting, "convnet", args.convnet_steps
        ),
        "suite_us": attribution.microseconds(variant, counting, "convnet", args.convnet_steps),
    }
    record["convnet"] = {**step, "ratio": step["reference_us"] / step["suite_us"]}
    echo(
        f"    {record['label']}: environment in {record['build_seconds']:.0f} s, "
        f"{record['microseconds_per_step']:.0f} µs a step, the convnet "
        f"{record['convnet']['ratio']:.2f}x raw PyTorch's speed"
    )


def gate_steps(records: list[dict], factor: float) -> None:
    """Each release against the one before it (same variant), the gate's verdict in its record."""
    previous: dict[str, dict] = {}
    for record in records:
        if "error" in record:
            continue
        variant = record["release"]["variant"]
        if variant in previous:
            before, after = gate.counted(previous[variant], variant), gate.counted(record, variant)
            if before is None or after is None:
                continue
            (verdict,) = gate.compare_counts({variant: before}, {variant: after}, factor)
            record["gate"] = {
                "against": previous[variant]["label"],
                "ratio": verdict.ratio,
                "regressed": verdict.regressed,
                "factor": factor,
                "grown": verdict.grown,
            }
        previous[variant] = record


def _measure_all(releases: list[Release], args) -> list[dict]:
    """Every release counted, then timed; a failure is recorded and the others go on."""
    records: list[dict] = []
    try:
        for release in releases:
            try:
                records.append(count(release, args))
            except (BuildFailed, attribution.ProbeFailed) as error:
                label = f"{release.variant} {release.version}"
                failed = {"kind": "attribution-suite", "suite": release.variant, "label": label}
                records.append({**failed, "release": asdict(release), "error": str(error)})
                print(f"    {label} failed: {error}")
        clock_all(records, args)
    except KeyboardInterrupt:
        print("interrupted: keeping what was measured")
    return records


def clock_all(records: list[dict], args) -> None:
    """The clocks of every counted release, one process at a time; a release whose clock fails
    keeps its counts and says so (clock_error)."""
    print("the clocks, one process at a time:")
    for record in records:
        if "error" not in record:
            try:
                time_release(record, args)
            except attribution.ProbeFailed as error:
                record["clock_error"] = str(error)
                print(f"    {record['label']}: {error}")


def clock_again(run_dir: Path, args) -> dict:
    """An earlier run's clocks measured anew (its environments rebuilt; its counts kept): for a
    run whose clocks a busy machine disturbed or a signal stopped."""
    run = files.read_json(run_dir / "versions.json")
    counted = [r for r in run["records"] if "instructions" in r]
    with tempfile.TemporaryDirectory(prefix="versions-") as temporary:
        for record in counted:
            for stale in ("error", "clock_error", "microseconds_per_step", "convnet"):
                record.pop(stale, None)
            release = Release(**record["release"])
            folder = Path(temporary) / f"{release.distribution}-{release.version}"
            record["build_seconds"] = build(release, folder)
            record["python"] = str(folder / "bin" / "python")
        clock_all(counted, args)
    run["clocked"] = dt.datetime.now().isoformat(timespec="seconds")
    return run


def _newest(releases: list[Release], count: int) -> set[Release]:
    """Each variant's last `count` releases (RELEASES lists each framework's oldest first)."""
    newest: set[Release] = set()
    for variant in dict.fromkeys(r.variant for r in releases):
        newest.update([r for r in releases if r.variant == variant][-count:])
    return newest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m common versions",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
    )
    registry.add_suite_option(
        parser.add_argument, default=", ".join(dict.fromkeys(r.variant for r in RELEASES))
    )
    parser.add_argument("--steps", type=int, default=50, help="N: runs of N and 2N steps")
    parser.add_argument(
        "--releases", type=int, help="only each framework's newest N releases (default: all)"
    )
    parser.add_argument(
        "--convnet-steps",
        type=int,
        default=CONVNET_STEPS,
        help=f"N of the convnet's N and 2N timed steps (default {CONVNET_STEPS})",
    )
    parser.add_argument("--jobs", type=int, default=2, help="probe processes at once")
    parser.add_argument("--factor", type=float, default=gate.FACTOR, help="the gate's limit")
    parser.add_argument(
        "--environments",
        type=Path,
        help="keep the releases' environments here (default: a temporary folder, removed after)",
    )
    parser.add_argument(
        "--clocks-again",
        type=Path,
        metavar="RUN",
        help="measure an earlier versions run's clocks anew in its folder, keeping its counts",
    )
    parser.add_argument("--out", type=Path, default=paths.RESULTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    wanted = args.suite or []
    try:
        chosen = {v.id for v in registry.select(wanted)} if wanted else None
    except registry.SuiteError as error:
        parser.error(str(error))
    releases = [r for r in RELEASES if chosen is None or r.variant in chosen]
    if args.releases is not None:
        if args.releases < 1:
            parser.error(f"--releases must be 1 or more, got {args.releases}")
        releases = [r for r in releases if r in _newest(releases, args.releases)]
    if not releases:
        parser.error(f"--suite: no release of {', '.join(wanted)} is declared (RELEASES)")
    if shutil.which("valgrind") is None:
        parser.exit(
            2, f"{parser.prog}: error: valgrind is not installed (apt-get install valgrind)\n"
        )
    if args.clocks_again:
        return _clocks_again(parser, args)
    started = dt.datetime.now()
    run_dir = new_run_folder(parser, args.out, started, "versions")
    print(f"{len(releases)} releases, N = {args.steps} -> {run_dir}")
    reference = attribution.attribute_suite(
        next(v for v in registry.variants() if v.suite == registry.REFERENCE),
        _counting(args, sys.executable),
    )
    with tempfile.TemporaryDirectory(prefix="versions-") as temporary:
        args.environments = args.environments or Path(temporary)
        records = _measure_all(releases, args)
    gate_steps(records, args.factor)
    attribution.add_overheads([reference, *records])
    from common.report import releases as release_report

    record = {
        "kind": "versions",
        "started": started.isoformat(timespec="seconds"),
        "seconds": (dt.datetime.now() - started).total_seconds(),
        "steps": args.steps,
        "convnet_steps": args.convnet_steps,
        "reference": reference,
        "records": records,
    }
    print(write_run(run_dir, "versions", "versions.json", record, release_report.read_versions))
    return 1 if any("error" in r or "clock_error" in r for r in records) else 0


def _clocks_again(parser: argparse.ArgumentParser, args) -> int:
    from common.report import releases as release_report

    if not (args.clocks_again / "versions.json").is_file():
        parser.error(f"--clocks-again {args.clocks_again}: no versions.json in that folder")
    run = clock_again(args.clocks_again, args)
    gate_steps(run["records"], args.factor)
    attribution.add_overheads([run["reference"], *run["records"]])
    print(
        write_run(args.clocks_again, "versions", "versions.json", run, release_report.read_versions)
    )
    return 1 if any("error" in r or "clock_error" in r for r in run["records"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
