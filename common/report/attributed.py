"""The attribution scenario's section: where each framework's per-step cost goes.

scenarios/attribution.py writes attribution.json; this renders it (the run's own summary.md and
plots, and the comparison report's "Where the overhead goes" section)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from common.report.section import Section, Table, read_record
from common.task import registry

ATTRIBUTION_TITLE = "Where the overhead goes (attribution scenario)"
INTERPRETER = "python: "  # the label prefix of the interpreter's shared object
NAMED_PER_CELL = 4  # groups or functions named per cell
KINDS_SHOWN = ("calls", "operators", "instructions")

OVERVIEW = (
    "suite",
    "version",
    "instructions / step (beyond raw PyTorch)",
    "of the beyond: Python interpreter",
    "Python calls / step (beyond)",
    "torch operators / step (beyond)",
    "µs / step (beyond), clock",
    "µs the instructions explain",
    "repeats differ by (largest; in which count)",
)
BY_PART = ("suite", "beyond raw PyTorch, by whose Python calls", "by shared object (instructions)")
GROWN = (
    "suite",
    "functions whose own calls grew most (calls their body makes, per step)",
    "C functions whose instructions grew most",
)
OPERATORS = ("suite", "torch operators beyond raw PyTorch (per step)")


def _n(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+,.0f}" if signed else f"{value:,.0f}"


def _beyond(record: dict, kind: str) -> str:
    own = record.get(kind) or {}
    if own.get("per_step") is None:
        return "—"
    extra = (record.get("overhead") or {}).get(kind)
    beyond = "reference" if record["suite"] == registry.REFERENCE else "—"
    if extra is not None:
        beyond = _n(extra["per_step"], signed=True)
    return f"{_n(own['per_step'])} ({beyond})"


def _shares(groups: dict[str, float], total: float, shown: int = NAMED_PER_CELL) -> str:
    """The largest groups of a difference, each with its share of the total: `a +1,841 (52%)`."""
    if not total:
        return "—"
    ranked = sorted(groups.items(), key=lambda item: -abs(item[1]))[:shown]
    return ", ".join(f"{name} {value:+,.0f} ({value / total:.0%})" for name, value in ranked)


def _interpreter(record: dict) -> str:
    extra = (record.get("overhead") or {}).get("instructions")
    if not extra or not extra["per_step"]:
        return "—"
    mine = sum(v for k, v in extra["groups"].items() if k.startswith(INTERPRETER))
    return f"{mine:+,.0f} ({mine / extra['per_step']:.0%})"


def _explained(record: dict, reference: dict | None) -> tuple[str, str]:
    """The clock's µs beyond the reference, and the µs the instruction difference stands for
    at the reference's own instructions per µs."""
    extra = record.get("overhead") or {}
    clock = extra.get("microseconds")
    if reference is None or "microseconds_per_step" not in reference or not extra:
        return (_n(record.get("microseconds_per_step")), "—")
    rate = reference["instructions"]["per_step"] / reference["microseconds_per_step"]
    explained = extra["instructions"]["per_step"] / rate if "instructions" in extra else None
    shown = f"{_n(record['microseconds_per_step'])} ({_n(clock, signed=True)})"
    return shown, "—" if explained is None else f"{explained:+,.0f} at {rate:,.0f} instr./µs"


def _disagreement(record: dict) -> str:
    """The largest difference between the repeats, and in which count."""
    found = [(record[k]["disagreement"], k) for k in KINDS_SHOWN if record.get(k)]
    if not found:
        return "—"
    worst, kind = max(found)
    where = record[kind].get("disagreement_at")  # absent: an older run, any group at all
    return f"{worst:.2%} ({kind}{': ' + where if where else ''})" if worst else "0.00%"


def _overview_row(record: dict, reference: dict | None) -> list[str]:
    if "error" in record:
        return [record["variant"], "FAILED", record["error"][:80], *[""] * (len(OVERVIEW) - 3)]
    clock, explained = _explained(record, reference)
    return [
        record["variant"],
        record.get("framework_version", ""),
        _beyond(record, "instructions"),
        _interpreter(record),
        _beyond(record, "calls"),
        _beyond(record, "operators"),
        clock,
        explained,
        _disagreement(record),
    ]


def _function(entry: list) -> str:
    """A top entry as `module.function +n`: functions are [group, module, function, n],
    C functions [object, function, n]."""
    *fields, value = entry
    if len(fields) == 2:
        name = f"{fields[0].rsplit('/', 1)[-1]}: {fields[1]}"
    else:
        name = f"{fields[-2]}.{fields[-1]}"
    return f"`{name[:90]}` {value:+,.0f}"


def _rows(records: list[dict]) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    parts, grown, operators = [], [], []
    for record in records:
        extra = record.get("overhead") or {}
        calls, instructions = extra.get("calls"), extra.get("instructions")
        parts.append(
            [
                record["variant"],
                _shares(calls["groups"], calls["per_step"]) if calls else "—",
                _shares(instructions["groups"], instructions["per_step"]) if instructions else "—",
            ]
        )
        grown.append(
            [
                record["variant"],
                "; ".join(map(_function, calls.get("made_top", [])[:NAMED_PER_CELL]))
                if calls
                else "—",
                "; ".join(map(_function, instructions["top"][:NAMED_PER_CELL]))
                if instructions
                else "—",
            ]
        )
        ops = extra.get("operators")
        if ops and any(ops["groups"].values()):
            shown = [f"{name} {value:+g}" for name, value in ops["groups"].items() if value][:8]
            operators.append([record["variant"], ", ".join(shown)])
    return parts, grown, operators


def attribution_section(run: dict, elsewhere: str | None = None) -> Section:
    records = run["records"]
    reference = next((r for r in records if r["suite"] == registry.REFERENCE), None)
    counted = [r for r in records if "error" not in r]
    parts, grown, operators = _rows([r for r in counted if "overhead" in r])
    environment = run.get("environment", {})
    paragraphs = [
        *([f"**Not this run's**: {elsewhere}"] if elsewhere else []),
        f"Exact counts of one training step of the {run['model']} model (batch "
        f"{run.get('batch_size', 8)}, 1 thread): each suite trained N = {run['steps']} and 2N "
        f"steps under each counter, the difference over N; {run['repeats']} independent "
        f"repeats. {environment.get('cpu', '?')}, {run['started']}; the scenario took "
        f"{run['seconds'] / 60:.0f} min. The counts do not depend on the machine's load"
        + (
            "; the µs column is a clock (one pass of 2,000 and 4,000 steps, no counter)."
            if any("microseconds_per_step" in r for r in records)
            else " (this run has no clock pass: --no-time)."
        ),
        "**Python calls**: every Python function call and every C function called from Python, "
        "by the package on whose behalf it runs (a standard-library call counts for the package "
        "that called into it; a C call for the package whose code made it); the harness's own "
        "calls, and everything beneath them, are left out. **Operators**: torch operators that "
        "reach the dispatcher, forward and backward. **Instructions**: callgrind, inside "
        "train() only, by the shared object that executes them. Python 3.11's interpreter runs "
        "every package's Python code, so its instructions cannot be split by package without a "
        "profiler that changes them; the calls split that part.",
    ]
    overview = Table(OVERVIEW, [_overview_row(r, reference) for r in records])
    if not any("microseconds_per_step" in r for r in records):  # run with --no-time
        clocks = [i for i, name in enumerate(OVERVIEW) if "µs" in name]
        overview = Table(
            tuple(c for i, c in enumerate(OVERVIEW) if i not in clocks),
            [[c for i, c in enumerate(row) if i not in clocks] for row in overview.rows],
        )
    tables = [
        overview,
        Table(BY_PART, parts, "Where the difference from raw PyTorch goes:"),
        Table(GROWN, grown, "The functions whose per-step counts grew most over raw PyTorch's:"),
    ]
    if operators:
        tables.append(Table(OPERATORS, operators))
    return Section(
        ATTRIBUTION_TITLE, paragraphs, tables, plots={"attribution_calls": calls_plot(counted)}
    )


def calls_plot(records: list[dict]) -> Figure:
    """Stacked bars: each suite's Python calls per step, by package."""
    shown = [r for r in records if r.get("calls")]
    totals: dict[str, float] = {}
    for record in shown:
        for group, value in record["calls"]["groups"].items():
            totals[group] = totals.get(group, 0.0) + value
    groups = [g for g, _ in sorted(totals.items(), key=lambda item: -item[1])][:9]
    fig = Figure(figsize=(9.5, 0.5 * len(shown) + 1.6), layout="constrained")
    ax = fig.subplots()
    names = [r["variant"] for r in shown]
    left = [0.0] * len(shown)
    for group in [*groups, "other"]:
        values = [
            r["calls"]["groups"].get(group, 0.0)
            if group != "other"
            else sum(v for g, v in r["calls"]["groups"].items() if g not in groups)
            for r in shown
        ]
        ax.barh(names, values, left=left, label=group)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("Python calls per training step (exact count)")
    ax.set_title("Per-step Python calls, by the package on whose behalf they run")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def read_attribution(run_dir: Path, elsewhere: str | None = None) -> Section | None:
    """The section of an attribution run folder, or None when it holds no attribution.json."""
    run = read_record(run_dir, "attribution.json", "attribution")
    return None if run is None else attribution_section(run, elsewhere)
