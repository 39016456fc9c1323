"""Finds the suites and says which of them can run here.

A suite is one file in suites/. It registers itself with a module-level literal (a Registration),

    SUITE = {"framework": "pytorch-lightning", "imports": ["pytorch_lightning"],
             "extra": "lightning", "modes": ["eager", "compile"]}

which this module reads from the file's source without importing it: importing a suite imports
its framework, which costs seconds and, for Keras, fixes the backend for the whole process.
Optional keys: "backends" and "backend_env" for a framework whose backend is chosen by an
environment variable at import; every backend is then its own variant, run in its own process.
"switches": the framework's own settings that cost time per step (a progress bar, a logger, a
barebones trainer), which the overhead scenario measures beside the suite as written.
"relative": the id of the variant nearest to it (Flax's is "keras[jax]"), which the report diffs
and compares it against besides the reference.
"distributed": {"of": <suite>, "launcher": <name>} marks a data-parallel variant of another
suite, started by a launcher of scenarios/distributed.py (torchrun, or one process with several XLA
devices); "needs": "cuda" where the framework's data-parallel path runs on GPUs only. Such
suites are the ddp scenario's alone: variants() leaves them out unless asked.

The functions every suite module defines, the contract (the same for every framework), are
declared once, by the Protocol Suite below; load() checks each module against it. describe,
configure and SUITE exist for the harness alone: each suite keeps them in the marked harness
section at its end, below the example.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TypedDict

import numpy as np

from common.task import RunConfig, TaskData, paths


class Description(TypedDict):
    """What a suite's describe(trained) returns."""

    device: str  # where the trained model computes, in the framework's words ("cuda:0", "cpu x2")
    backend: str  # "torch", or Keras' backend
    parameters: int


# Each with its optional keys in a total=False subclass: NotRequired[...] would read as required
# under `from __future__ import annotations` in Python 3.11 (a string annotation has no origin).
class _Distributed(TypedDict):
    of: str  # the single-process suite it distributes
    launcher: str  # a launcher of scenarios/distributed.py


class Distributed(_Distributed, total=False):
    """SUITE["distributed"]: the data-parallel variant of another suite."""

    needs: str  # "cuda": its framework's data-parallel path runs on GPUs only


class _Registration(TypedDict):
    framework: str  # the distribution name, for its version
    imports: list[str]
    extra: str  # the pyproject extra that installs it


class Registration(_Registration, total=False):
    """A suite's module-level SUITE literal (the module docstring says what each key means)."""

    modes: list[str]
    switches: list[str]
    backends: list[str]
    backend_env: str
    distributed: Distributed
    relative: str  # the id of its nearest variant, compared against besides the reference


class Hooks(Protocol):
    """What a suite calls on the hooks train() is handed (common/measure/hooks.py TrainingHooks)."""

    def batch_end(self, loss: Any) -> None: ...
    def validation_start(self) -> None: ...
    def validation_end(self) -> None: ...
    def epoch_end(self, epoch: int, train_loss: float, test_accuracy: float) -> bool: ...


class Suite(Protocol):
    """The contract: the functions every suite module defines, a module satisfying this Protocol.
    A model and a trained model are whatever the framework's own objects are (an nn.Module, a
    Learner, a keras.Model): the harness only hands them back to the suite."""

    def build_model(self, run: RunConfig) -> Any:
        """Seeds the framework with run.seed and builds run.model (the convnet, or linear)."""

    def train(self, model: Any, data: TaskData, run: RunConfig, hooks: Hooks) -> Any:
        """Trains run.epochs epochs and returns what predict and save take. Calls
        hooks.batch_end(loss) per step (where the framework hands out the step's loss),
        hooks.validation_start()/validation_end() around its evaluation, hooks.epoch_end(...) per
        epoch, and stops early when epoch_end returns True."""

    def predict(self, trained: Any, images: np.ndarray) -> np.ndarray:
        """Predicted class ids for float32 (N, 28, 28) images."""

    def save(self, trained: Any, path: Path) -> Path:
        """Writes a checkpoint; returns the file written."""

    def load(self, path: Path, run: RunConfig) -> Any:
        """Reads it back, ready for predict."""

    def describe(self, trained: Any) -> Description:
        """Where it computes, on which backend, with how many parameters."""

    def configure(self, run: RunConfig) -> None:
        """The process's settings, called once before any model: run.threads CPU threads; a
        SettingError when the framework cannot see run.device."""


# The contract's names, in the order Suite declares them.
CONTRACT = tuple(
    name for name, member in vars(Suite).items() if inspect.isfunction(member) and name[0] != "_"
)


def _arguments(name: str) -> list[str]:
    """The arguments the harness passes to a contract function, as Suite names them."""
    return list(inspect.signature(getattr(Suite, name)).parameters)[1:]  # less self


def contract_problems(module: ModuleType) -> list[str]:
    """What keeps a module from satisfying Suite: a function missing or not callable, or one that
    cannot be called with the arguments the harness passes. Empty when it satisfies it."""
    problems = []
    for name in CONTRACT:
        wanted = f"{name}({', '.join(_arguments(name))})"
        member = getattr(module, name, None)
        if member is None:
            problems.append(f"no {wanted}")
            continue
        if not callable(member):
            problems.append(f"{name} is a {type(member).__name__}, not a function {wanted}")
            continue
        try:
            signature = inspect.signature(member)
        except (TypeError, ValueError):  # a builtin that does not say: nothing to check
            continue
        try:
            signature.bind(*_arguments(name))
        except TypeError:
            found = f"{name}({', '.join(signature.parameters)})"
            problems.append(f"{found} cannot be called as {wanted}")
    return problems


def add_suite_option(
    add: Callable[..., object], what: str = "suite or variant", default: str = "all"
) -> None:
    """--suite, for argparse's add_argument or pytest's addoption: every entry point's one."""
    add(
        "--suite",
        action="append",
        default=[],
        metavar="NAME",
        help=f"only this {what}, e.g. raw_pytorch or 'keras[jax]' (repeatable; default: {default})",
    )


def installed_version(distribution: str) -> str:
    """The version pip installed of a distribution (a framework, a backend), or "not installed"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


class SuiteError(LookupError):
    """An unknown suite name, or a suite file that breaks the contract."""


@dataclass(frozen=True)
class Variant:
    """One runnable row of the comparison: a suite, on one backend where it has several."""

    suite: str
    framework: str  # the distribution name, for its version
    imports: tuple[str, ...]
    extra: str
    modes: tuple[str, ...]
    switches: tuple[str, ...] = ()
    backend: str | None = None
    backend_env: str | None = None
    distributes: str | None = None  # the single-process suite this one runs data-parallel
    launcher: str | None = None
    needs: str | None = None  # "cuda": a data-parallel path that its framework wrote for GPUs

    @property
    def id(self) -> str:
        return f"{self.suite}[{self.backend}]" if self.backend_env else self.suite

    @property
    def module_name(self) -> str:
        return f"suites.{self.suite}"

    @property
    def path(self) -> Path:
        return paths.SUITES / f"{self.suite}.py"

    def environment(self) -> dict[str, str]:
        """Environment variables a process needs to run this variant."""
        return {self.backend_env: self.backend} if self.backend_env and self.backend else {}

    def missing(self) -> str | None:
        """Why this variant cannot run here, or None when it can."""
        for name in self.imports:
            if importlib.util.find_spec(name) is None:
                return (
                    f"{self.framework} is not installed (module {name!r} not found): "
                    f"pip install -e '.[{self.extra}]'"
                )
        if self.backend_env:
            active = os.environ.get(self.backend_env, self.default_backend)
            if active != self.backend:
                return (
                    f"{self.backend_env}={active} in this process; {self.backend_env} is read "
                    f"at import, so run this variant in its own process: "
                    f"{self.backend_env}={self.backend} pytest --suite '{self.id}'"
                )
        return None

    @property
    def default_backend(self) -> str | None:
        return _suite_meta(self.path).get("backends", [None])[0]

    def framework_version(self) -> str:
        return installed_version(self.framework)

    def supports(self, mode: str) -> bool:
        return mode == "default" or mode in self.modes

    def check(self, run) -> None:
        """Raises SettingError when this variant has no such mode or switch."""
        from common.task import SettingError

        if not self.supports(run.mode):
            raise SettingError(
                f"{self.id} has no execution mode {run.mode!r}; it has: {', '.join(self.modes)}"
            )
        if run.switch != "default" and run.switch not in self.switches:
            raise SettingError(
                f"{self.id} has no switch {run.switch!r}; it has: "
                f"{', '.join(self.switches) or 'none'}"
            )


def _suite_meta(path: Path) -> Registration:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "SUITE"
        ):
            try:
                meta = ast.literal_eval(node.value)
            except ValueError as error:
                raise SuiteError(f"{path.name}: SUITE must be a literal dict ({error})") from None
            absent = [key for key in Registration.__required_keys__ if key not in meta]
            if absent:
                raise SuiteError(f"{path.name}: SUITE has no {', '.join(sorted(absent))}")
            return meta
    raise SuiteError(f"{path.name}: no module-level SUITE = {{...}} registration found")


def variants(distributed: bool | None = False) -> list[Variant]:
    """Every registered suite and backend, in a stable order (the reference suite first).
    distributed: False, the single-process suites (the comparison's); True, the data-parallel
    ones (the ddp scenario's); None, both."""
    found = []
    for path in sorted(paths.SUITES.glob("*.py")):
        if path.name.startswith("_"):
            continue
        meta = _suite_meta(path)
        parallel = meta.get("distributed")
        if distributed is not None and distributed != bool(parallel):
            continue
        common: dict[str, Any] = dict(
            suite=path.stem,
            framework=meta["framework"],
            imports=tuple(meta["imports"]),
            extra=meta["extra"],
            modes=tuple(meta.get("modes", ())),
            switches=tuple(meta.get("switches", ())),
            distributes=parallel["of"] if parallel else None,
            launcher=parallel["launcher"] if parallel else None,
            needs=parallel.get("needs") if parallel else None,
        )
        backends = meta.get("backends")
        if backends:
            found += [
                Variant(**common, backend=b, backend_env=meta["backend_env"]) for b in backends
            ]
        else:
            found.append(Variant(**common))
    return sorted(found, key=lambda v: (v.suite != REFERENCE, v.suite))


REFERENCE = "raw_pytorch"
# Why a benchmark measured beside the reference skips in every other variant's process.
BESIDE_REFERENCE = "runs beside the reference suite"


def select(names: list[str] | None, distributed: bool | None = False) -> list[Variant]:
    """The variants named (a suite name selects all its backends), or all of them."""
    known = variants(distributed)
    if not names:
        return known
    chosen = []
    for name in names:
        matches = [v for v in known if name in (v.id, v.suite)]
        if not matches:
            raise SuiteError(f"unknown suite {name!r}; known: {', '.join(v.id for v in known)}")
        chosen += [v for v in matches if v not in chosen]
    return chosen


@dataclass
class LoadedSuite:
    variant: Variant
    module: ModuleType
    import_seconds: float  # what this process had not imported before: the framework included

    def load_checkpoint(self, path: Path, run):
        """The suite's load, with what a bad file raises (a truncated zip, random bytes, an
        empty file: 9-30 lines of the framework's traceback) as one CheckpointError line."""
        try:
            return self.module.load(path, run)
        except Exception as error:
            first = next((line for line in str(error).splitlines() if line.strip()), "")
            raise CheckpointError(
                f"{path}: not a valid {self.variant.framework} checkpoint "
                f"({type(error).__name__}: {first.strip()[:160]})"
            ) from error


class CheckpointError(Exception):
    """A file a suite cannot load as its framework's checkpoint; the message names it."""


_import_seconds: dict[str, float] = {}


def load(variant: Variant) -> LoadedSuite:
    """Imports a suite (timing its first import) and checks that it defines the whole contract."""
    os.environ.update(variant.environment())
    if variant.module_name not in sys.modules:
        start = time.perf_counter()
        importlib.import_module(variant.module_name)
        _import_seconds[variant.module_name] = time.perf_counter() - start
    module = sys.modules[variant.module_name]
    seconds = _import_seconds.get(variant.module_name, 0.0)
    problems = contract_problems(module)
    if problems:
        raise SuiteError(
            f"{variant.path.name} breaks the suite contract (common/task/registry.py Suite): "
            + "; ".join(problems)
        )
    return LoadedSuite(variant, module, seconds)
