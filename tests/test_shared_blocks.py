"""The blocks a framework does not change are the same text in every torch suite, and every
suite's example stands alone.

So `diff suites/raw_pytorch.py suites/<framework>.py` shows only what the framework changes: the
model, the tensors, the training loader, the evaluation batches, and the harness's own settings.
Compared as source text, comments included: a comment that drifts is a diff line a reader sees.
And the example (the file above `# --- harness`) uses nothing its harness section defines, so
that it reads top to bottom and runs when copied without that section.
"""

from __future__ import annotations

import ast

import pytest

from common.task import code, paths, registry

SHARED = ("convnet", "to_tensors", "make_train_loader", "make_eval_loader", "configure", "linear")
# The data-parallel suites (registry: "distributed") are left out: their loaders differ from
# their original's on purpose, and their diff against it is the point.
TORCH_SUITES = sorted(
    path.stem
    for path in paths.SUITES.glob("*.py")
    if "\nimport torch\n" in path.read_text()
    and path.stem in {v.suite for v in registry.variants()}
)


def shared_blocks(source: str) -> dict[str, str]:
    """{name: its source text} for each SHARED top-level function that ``source`` defines."""
    tree = ast.parse(source)
    return {
        node.name: ast.get_source_segment(source, node, padded=True)
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name in SHARED
    }


def drift(reference: str, other: str) -> list[str]:
    """The SHARED blocks whose text differs between two suites' sources, or that one lacks."""
    ours, theirs = shared_blocks(reference), shared_blocks(other)
    return [name for name in SHARED if ours.get(name) is None or ours.get(name) != theirs.get(name)]


def source(name: str) -> str:
    return (paths.SUITES / f"{name}.py").read_text()


def test_the_torch_suites_are_found():
    assert registry.REFERENCE in TORCH_SUITES and len(TORCH_SUITES) >= 4
    assert set(shared_blocks(source(registry.REFERENCE))) == set(SHARED)


@pytest.mark.parametrize("name", [s for s in TORCH_SUITES if s != registry.REFERENCE])
def test_shared_blocks_are_the_same_text_as_raw_pytorch(name):
    assert drift(source(registry.REFERENCE), source(name)) == []


def test_a_drifted_block_is_caught():
    reference = source(registry.REFERENCE)
    recommented = reference.replace("nothing is copied.", "no copy is made.", 1)
    assert drift(reference, recommented) == ["to_tensors"]
    reordered = reference.replace("task.EVAL_BATCH_SIZE, False", "task.EVAL_BATCH_SIZE, True", 1)
    assert drift(reference, reordered) == ["make_eval_loader"]
    assert drift(reference, reference.replace("def linear(", "def tiny(")) == ["linear"]


ALL_SUITES = sorted(
    path.stem for path in paths.SUITES.glob("*.py") if not path.stem.startswith("_")
)


def harness_uses(source: str) -> list[str]:
    """Each use, in the example (the top-level statements above the harness marker), of a name that
    the harness section binds at its top level (a function, a class, an assignment), as
    "line N: name". A name bound in both counts as the harness's: Python looks it up when the
    example runs, and finds the harness's."""
    tree = ast.parse(source)
    marker = next(
        (
            n
            for n, line in enumerate(source.splitlines(), 1)
            if line.startswith(code.HARNESS_MARKER)
        ),
        None,
    )
    assert marker is not None, "no harness section"
    example = [node for node in tree.body if node.lineno < marker]
    harness = [node for node in tree.body if node.lineno > marker]
    bound = set()
    for node in harness:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    uses = [
        name
        for node in example
        for name in ast.walk(node)
        if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Load) and name.id in bound
    ]
    return [f"line {n.lineno}: {n.id}" for n in sorted(uses, key=lambda n: n.lineno)]


@pytest.mark.parametrize("name", ALL_SUITES)
def test_the_example_uses_nothing_from_its_harness_section(name):
    assert harness_uses(source(name)) == []


def test_a_call_into_the_harness_is_caught():
    example = (
        "def build_model(run):\n    return convnet() if run.model == 'convnet' else linear()\n\n\n"
        "def train(model, run):\n    quiet(model, run.switch)\n\n\n"
    )
    harness = (
        f"{code.HARNESS_MARKER}: what exists only for the comparison ---\n"
        "SUITE = {}\n\n\ndef linear():\n    pass\n\n\ndef quiet(model, switch):\n    pass\n"
    )
    assert harness_uses(example + harness) == ["line 2: linear", "line 6: quiet"]
    assert harness_uses(example.replace("linear()", "convnet()") + harness) == ["line 6: quiet"]
