"""`python -m suites.<name>`: train one suite on the task and print what it did."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from common.measure import runner
from common.task import RunConfig, SettingError, files, load_task_data, registry
from common.task.data import DataError


def main(module_name: str, argv: list[str] | None = None) -> int:
    suite_name = module_name.rsplit(".", 1)[-1]
    parser = argparse.ArgumentParser(
        prog=f"python -m suites.{suite_name}",
        description=f"Train the {suite_name} suite on the shared MNIST task.",
    )
    RunConfig.add_arguments(parser.add_argument)
    parser.add_argument(
        "--record", type=Path, help="also write the run's record here, as JSON (rank 0's)"
    )
    args = parser.parse_args(argv)
    # Under a distributed launcher every rank runs this; rank 0 speaks for them (RANK is the
    # launcher's environment variable, absent in a single process).
    first = os.environ.get("RANK", "0") == "0"
    say = print if first else lambda *_: None
    try:
        run = RunConfig().updated(vars(args))
        variant = next(
            v for v in registry.variants(None) if v.suite == suite_name and not v.missing()
        )
        suite = registry.load(variant)
        start = time.perf_counter()
        data = load_task_data(run)
        data_seconds = time.perf_counter() - start
        say(
            f"{variant.id}: {data.train_size} training images, {run.epochs} epochs, "
            f"{run.threads} threads (data loaded in {data_seconds:.2f} s)"
        )
        record = runner.measure_variant(suite, run, data, log=say, data_seconds=data_seconds)
        if args.record and first:
            files.write_json(args.record, record)
    except (SettingError, DataError, registry.SuiteError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted\n")
    say(
        f"test accuracy {record['test_accuracy']:.2%}  "
        f"{record['images_per_second']:.0f} images/s  on {record['device']}  "
        f"checkpoint {record['checkpoint_bytes']:,} bytes, reloads identically: "
        f"{record['roundtrip_identical']}"
    )
    return 0
