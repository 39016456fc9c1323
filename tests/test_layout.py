"""The map of common/ (docs/contributing.md, "Layout"): four parts, each importing only the parts
below it, and one home for each shared chore."""

from __future__ import annotations

import ast

import pytest

from common.task import paths

COMMON = paths.ROOT / "common"
# Lowest first: a part may import its own modules and the parts before it, never one after it.
PARTS = ("task", "measure", "report", "scenarios")


def part_of(module: str) -> str | None:
    """The part a dotted module name belongs to (None: outside common/, or common itself)."""
    names = module.split(".")
    return names[1] if names[0] == "common" and len(names) > 1 and names[1] in PARTS else None


def imported_modules(source: str, module: str) -> set[str]:
    """Every common.* module a source imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: resolve it against the importing module
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("common")}


def upward_imports(source: str, module: str) -> list[str]:
    """The imports in a module that reach a higher part than its own."""
    own = part_of(module)
    if own is None:
        return []
    rank = PARTS.index(own)
    return sorted(
        name
        for name in imported_modules(source, module)
        if (part := part_of(name)) is not None and PARTS.index(part) > rank
    )


def modules():
    for path in sorted(COMMON.rglob("*.py")):
        dotted = ".".join(path.relative_to(paths.ROOT).with_suffix("").parts)
        yield path, dotted.removesuffix(".__init__")


def test_common_shows_the_four_parts():
    entries = {p.name for p in COMMON.iterdir() if p.name != "__pycache__"}
    assert entries == {"__init__.py", "__main__.py", *PARTS}
    for part in PARTS:
        assert (COMMON / part / "__init__.py").is_file(), f"common/{part} is not a package"


@pytest.mark.parametrize("path, module", list(modules()), ids=lambda v: str(v))
def test_no_part_imports_a_higher_one(path, module):
    assert upward_imports(path.read_text(), module) == []


def test_the_layering_check_can_fail():
    source = "from common.report import tables\nfrom common.task import paths\n"
    assert upward_imports(source, "common.measure.speed") == [
        "common.report",
        "common.report.tables",
    ]
    inside = "def f():\n    from ..scenarios import compare\n"
    assert upward_imports(inside, "common.report.run") == [
        "common.scenarios",
        "common.scenarios.compare",
    ]
    assert upward_imports(source, "common.scenarios.compare") == []


@pytest.mark.parametrize(
    "chore, home",
    [
        ("__file__", "common/task/paths.py"),  # the repository's root
        ("symlink_to", "common/task/paths.py"),  # the latest links
        ("%Y%m%d", "common/task/paths.py"),  # run folder names
        ("os.killpg", "common/measure/processes.py"),  # stopping a process tree
        ("importlib.metadata.version", "common/task/registry.py"),  # installed versions
    ],
)
def test_each_shared_chore_has_one_home(chore, home):
    holders = sorted(
        str(path.relative_to(paths.ROOT)) for path, _ in modules() if chore in path.read_text()
    )
    assert holders == [home]


# --- sizes and names ---------------------------------------------------------------------------
LONGEST = 50  # lines of a function, its docstring left out
LONGER = {}  # "module.function": why it is longer (none is, today)
# Names every module of a kind holds, meaning the same thing in each: an entry point's main, the
# kind and file name of the record a module writes.
SHARED = {"main", "KIND", "FILE"}


def function_lengths(source: str) -> dict[str, int]:
    """Each function's lines, from its def to its end, less its docstring."""
    lengths = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            body = node.body[0]
            if ast.get_docstring(node) is not None:
                lines -= body.end_lineno - body.lineno + 1
            lengths[node.name] = max(lengths.get(node.name, 0), lines)
    return lengths


def test_no_function_in_common_is_longer_than_about_50_lines():
    long = {
        f"{module}.{name}": lines
        for path, module in modules()
        for name, lines in function_lengths(path.read_text()).items()
        if lines > LONGEST and f"{module}.{name}" not in LONGER
    }
    assert long == {}


def test_the_length_check_can_fail():
    body = "\n".join(f"    x{n} = {n}" for n in range(LONGEST + 1))
    assert function_lengths(f'def f():\n    """Doc."""\n{body}\n')["f"] == LONGEST + 2


def public_names(source: str) -> set[str]:
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {name for name in names if not name.startswith("_")}


def test_no_two_public_names_in_common_collide():
    holders: dict[str, list[str]] = {}
    for path, module in modules():
        for name in public_names(path.read_text()) | {module.rpartition(".")[2]}:
            holders.setdefault(name, []).append(module)
    collisions = {
        name: where
        for name, where in holders.items()
        if len(where) > 1 and name not in SHARED | {"__init__", "__main__"}
    }
    assert collisions == {}


def test_latest_is_replaced_atomically_even_when_two_runs_finish_at_once(tmp_path):
    import threading

    first, second = tmp_path / "20261203-010101", tmp_path / "20261203-010102"
    first.mkdir(), second.mkdir()
    errors = []

    def point(folder):
        try:
            for _ in range(500):
                paths.point_latest(folder)
        except OSError as error:
            errors.append(error)

    threads = [threading.Thread(target=point, args=(f,)) for f in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert (tmp_path / "latest").resolve() in (first, second)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20261203-010101",
        "20261203-010102",
        "latest",
    ]
