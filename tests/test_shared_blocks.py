"""The blocks a framework does not change are the same text in every torch suite.

So `diff suites/raw_pytorch.py suites/<framework>.py` shows only what the framework changes: the
model, the tensors, the training loader, the evaluation batches, and the harness's own settings.
Compared as source text, comments included: a comment that drifts is a diff line a reader sees.
"""

from __future__ import annotations

import ast

import pytest

from common.task import paths, registry

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
