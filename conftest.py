"""pytest plumbing shared by tests/ and benchmarks/: suite selection and the task's data.

Any test that takes the `suite` fixture runs once per registered variant (suite and backend).
A variant that cannot run in this process is skipped with the reason: its framework is missing,
or it needs another backend, chosen at import, so its own process.
"""

from __future__ import annotations

import importlib
import importlib.util
import time

import pytest

from common.scenarios.outcomes import write_reason
from common.task import RunConfig, SettingError, load_task_data, registry
from common.task.data import DataError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mnist-compare")
    registry.add_suite_option(group.addoption)
    RunConfig.add_arguments(group.addoption)  # the run knobs, declared once in common/task
    group.addoption("--rounds", type=int, default=1, help="benchmarks: timed rounds per suite")
    group.addoption(
        "--block-steps",
        type=int,
        default=None,
        help="benchmarks: steps per timed block (default: common.measure.runner.BLOCK_STEPS)",
    )
    group.addoption(
        "--target-accuracy",
        type=float,
        default=None,
        help="time-to-accuracy scenario: train until this test accuracy (e.g. 0.99)",
    )
    group.addoption(
        "--max-epochs",
        type=int,
        default=15,
        help="time-to-accuracy scenario: give up after this many epochs",
    )


def run_config(config: pytest.Config) -> RunConfig:
    """The run knobs given on pytest's command line, over the task's defaults."""
    try:
        run = RunConfig().updated({name: config.getoption(name) for name in RunConfig.names()})
        for option in ("rounds", "block_steps", "max_epochs"):
            value = config.getoption(option)
            if value is not None and value < 1:
                raise SettingError(f"--{option.replace('_', '-')} must be >= 1, got {value}")
    except SettingError as error:
        write_reason(str(error))
        raise pytest.UsageError(str(error)) from None
    return run


def pytest_configure(config: pytest.Config) -> None:
    run_config(config)  # a bad setting is a usage error before anything is collected
    # TensorFlow 2.21 loads its LLVM symbols globally, and triton loaded after it crashes the
    # process (tensorflow/tensorflow#124205); torch loads triton with its first optimizer. So a
    # process that runs several suites loads it first. A process of one suite (as compare runs
    # them) skips this, so that the suite's import time stays its own.
    if len(_selected(config)) > 1 and importlib.util.find_spec("torch") is not None:
        importlib.import_module("torch._dynamo")


def _selected(config: pytest.Config) -> list[registry.Variant]:
    try:
        return registry.select(config.getoption("--suite"))
    except registry.SuiteError as error:
        write_reason(str(error))
        raise pytest.UsageError(str(error)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" not in metafunc.fixturenames:
        return
    chosen = _selected(metafunc.config)
    if "extra_mode" in metafunc.fixturenames:  # every execution mode beyond a suite's default
        pairs = [(v, mode) for v in chosen for mode in v.modes[1:]]
        metafunc.parametrize(
            ("variant", "extra_mode"), pairs, ids=[f"{v.id}-{mode}" for v, mode in pairs]
        )
    else:
        metafunc.parametrize("variant", chosen, ids=[v.id for v in chosen])


@pytest.fixture
def suite(variant: registry.Variant, request) -> registry.LoadedSuite:
    """The suite module of this variant, imported and configured as the runner does before any
    model, with the command line's run knobs (TensorFlow fixes its threads at its first op, so
    `--threads 1` must reach it here); skipped when it cannot run here."""
    reason = variant.missing()
    if reason:
        pytest.skip(reason)
    loaded = registry.load(variant)
    loaded.module.configure(run_config(request.config))
    return loaded


_data_cache: dict[RunConfig, tuple] = {}


def task_data_for(run: RunConfig):
    """The run's arrays and the seconds their first load took, loaded once per process."""
    key = run.with_(epochs=1, seed=0, mode="default")
    if key not in _data_cache:
        start = time.perf_counter()
        try:
            data = load_task_data(run)
        except (DataError, SettingError) as error:
            write_reason(f"cannot load the data: {error}")
            pytest.exit(f"cannot load the data: {error}", returncode=2)
        _data_cache[key] = (data, time.perf_counter() - start)
    return _data_cache[key]


@pytest.fixture
def reference(request) -> registry.LoadedSuite:
    """The reference suite (raw PyTorch), for measurements taken beside it in its process."""
    variant = next((v for v in registry.variants() if v.suite == registry.REFERENCE), None)
    if variant is None or variant not in _selected(request.config):
        pytest.skip(f"{registry.BESIDE_REFERENCE}; select it with --suite {registry.REFERENCE}")
    reason = variant.missing()
    if reason:
        pytest.skip(reason)
    return registry.load(variant)
