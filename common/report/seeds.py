"""Test accuracy over seeds: each variant's mean and spread, and whether it differs from raw
PyTorch's by more than that spread.

One seed's accuracy says little: on MNIST two seeds of the same code differ by a tenth of a point
or more, as much as two frameworks do. A seeds run (`python -m common compare --seeds 3`, or
`tox -e seeds`) trains every variant with several seeds; this module turns its records into one
record per variant, kind "accuracy-over-seeds":

    mean and sd (sample standard deviation, n - 1) of the final test accuracy, its range, and the
    same per epoch (the band of the accuracy plot);
    the difference of means to raw PyTorch's, with a Welch 95% interval (scipy.stats.ttest_ind),
    and a verdict: higher or lower only when the interval excludes 0, else indistinguishable;
    the task's bar (task.ACCURACY_BARS, where one is set for the dataset and epochs), on the mean.

The report shows them for a seeds run, and merges the newest matching seeds run into a plain
comparison's report (see find_spreads).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from scipy import stats

from common import task
from common.measure.speed import CONFIDENCE
from common.task import registry

KIND = "accuracy-over-seeds"
FILE = "accuracy_over_seeds.json"  # in a seeds run's report/ folder; read back when merging
# What must match for a seeds run to stand for a comparison's accuracy.
MATCHING = ("dataset", "epochs", "train_size", "test_size", "model", "batch_size", "init")
MACHINE = ("cpu", "cores", "threads", "date", "git_commit")  # what a merged record says it ran on
DEFAULTS = {k: getattr(task.RunConfig(), k) for k in MATCHING}  # for runs from before a knob


def _by_variant(rows: list[dict]) -> dict[tuple[str, str], dict[int, dict]]:
    """{(variant, mode): {seed: row}}, one row per seed: an A/A control or a group's copy of the
    reference is the same seed again, not another measurement."""
    groups: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        if row.get("control") or row.get("group_copy") or not row.get("epoch_history"):
            continue
        if row.get("switch", "default") != "default":
            continue
        seed = row.get("seed", task.DEFAULT_SEED)  # records from before the field: the default
        groups.setdefault((row["variant"], row["mode"]), {}).setdefault(seed, row)
    return groups


def _summary(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "low": min(values),
        "high": max(values),
    }


def difference(reference: list[float], values: list[float]) -> dict | None:
    """values' mean minus reference's, with the Welch interval at CONFIDENCE, and what it says."""
    if len(reference) < 2 or len(values) < 2:
        return None
    diff = statistics.fmean(values) - statistics.fmean(reference)
    if max(values) == min(values) and max(reference) == min(reference):
        low = high = diff  # no spread at all: the t interval is undefined, the difference exact
    else:
        test = stats.ttest_ind(values, reference, equal_var=False)
        interval = test.confidence_interval(CONFIDENCE)
        low, high = float(interval.low), float(interval.high)
    verdict = "higher" if low > 0 else "lower" if high < 0 else "indistinguishable"
    return {"point": diff, "low": low, "high": high, "verdict": verdict}


def spreads(rows: list[dict], settings: dict) -> list[dict]:
    """One accuracy-over-seeds record per (variant, mode) of a run's training rows."""
    groups = _by_variant(rows)
    reference = next(
        (seeds for (variant, _), seeds in groups.items() if variant == registry.REFERENCE), {}
    )
    reference_final = [r["test_accuracy"] for r in reference.values()]
    bar = task.accuracy_bar(settings.get("dataset"), settings.get("epochs"))
    records = []
    for (variant, mode), seeds in groups.items():
        final = [r["test_accuracy"] for r in seeds.values()]
        epochs = sorted({h["epoch"] for r in seeds.values() for h in r["epoch_history"]})
        per_epoch = []
        for epoch in epochs:
            values = [
                h["test_accuracy"]
                for r in seeds.values()
                for h in r["epoch_history"]
                if h["epoch"] == epoch
            ]
            per_epoch.append({"epoch": epoch, "n": len(values), **_summary(values)})
        summary = _summary(final)
        records.append(
            {
                "kind": KIND,
                "variant": variant,
                "suite": next(iter(seeds.values()))["suite"],
                "mode": mode,
                "seeds": sorted(seeds),
                "final": [seeds[s]["test_accuracy"] for s in sorted(seeds)],
                **summary,
                "per_epoch": per_epoch,
                "versus_reference": None
                if variant == registry.REFERENCE
                else difference(reference_final, final),
                "bar": bar,
                "meets_bar": None if bar is None else summary["mean"] >= bar,
            }
        )
    return records


def has_seeds(rows: list[dict]) -> bool:
    """Whether some variant of a run was trained with more than one seed."""
    return any(len(seeds) > 1 for seeds in _by_variant(rows).values())


def find_spreads(run_dir: Path, settings: dict, fallback: Path) -> tuple[list[dict], str] | None:
    """The accuracy-over-seeds records that stand for a comparison run's accuracy: from the
    newest seeds run beside it (same dataset, epochs, sizes, model, batch, init), else from the
    committed record in `fallback` (docs/results/seeds-<dataset>/), else None. Also says where
    they came from."""
    ours = _matching(settings)
    candidates = sorted(run_dir.parent.glob(f"*/report/{FILE}"), reverse=True)
    candidates.append(fallback / FILE)
    for path in candidates:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("kind") == f"{KIND}-run" and _matching(record.get("settings", {})) == ours:
            source = record.get("source", str(path.parent.parent))
            if path.parent == fallback:
                source = f"{source}, recorded in docs/results/{fallback.name}"
            return record["variants"], source
    return None


def _matching(settings: dict) -> dict:
    """The settings a seeds run must share with a comparison, a knob it predates at its default."""
    return {k: settings[k] if settings.get(k) is not None else DEFAULTS[k] for k in MATCHING}


def seeds_record(records: list[dict], settings: dict, source: str, environment: dict) -> dict:
    """What a seeds run's report writes to report/FILE, for other reports to merge."""
    return {
        "kind": f"{KIND}-run",
        "source": source,
        "settings": _matching(settings),
        "machine": {k: environment.get(k) for k in MACHINE},
        "variants": records,
    }
