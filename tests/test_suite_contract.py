"""Every suite satisfies the contract (common/task/registry.py Suite), and one that does not is
told what is wrong in one line."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

import pytest

from common.task import paths, registry

SUITE_NAMES = sorted(p.stem for p in paths.SUITES.glob("*.py") if not p.stem.startswith("_"))


def test_the_contract_is_the_protocols_functions_in_order():
    assert registry.CONTRACT == (
        "build_model",
        "train",
        "predict",
        "save",
        "load",
        "describe",
        "configure",
    )
    assert registry._arguments("train") == ["model", "data", "run", "hooks"]


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_every_suite_satisfies_the_contract(name):
    """Imported as it is (Keras on this process's backend: any of them defines the functions)."""
    variant = next(v for v in registry.variants(None) if v.suite == name)
    if any(importlib.util.find_spec(m) is None for m in variant.imports):
        pytest.skip(f"{variant.framework} is not installed")
    module = importlib.import_module(f"suites.{name}")
    assert registry.contract_problems(module) == []


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_every_registration_has_the_registrations_keys_only(name):
    meta = registry._suite_meta(paths.SUITES / f"{name}.py")
    keys = registry.Registration.__required_keys__ | registry.Registration.__optional_keys__
    assert registry.Registration.__required_keys__ <= set(meta) <= keys


def test_every_relative_is_another_known_variant():
    """A suite's "relative" names the variant the report compares it with, side by side."""
    known = {v.id for v in registry.variants()}
    for variant in registry.variants(None):
        if variant.relative:
            assert variant.relative in known and variant.relative != variant.id, variant.suite


def fake_suite(name: str, **changes) -> ModuleType:
    """A module with every contract function (taking the arguments the harness passes), changed."""
    module = ModuleType(f"suites.{name}")
    module.build_model = lambda run: "model"
    module.train = lambda model, data, run, hooks: model
    module.predict = lambda trained, images: images
    module.save = lambda trained, path: path
    module.load = lambda path, run, strict=True: "model"  # an extra argument with a default: fine
    module.describe = lambda *trained: {"device": "cpu", "backend": "fake", "parameters": 0}
    module.configure = lambda run: None
    for key, value in changes.items():
        if value is None:
            delattr(module, key)
        else:
            setattr(module, key, value)
    return module


def test_a_fake_suite_with_the_whole_contract_satisfies_it():
    assert registry.contract_problems(fake_suite("fake")) == []


def test_a_missing_function_or_a_wrong_signature_is_named():
    assert registry.contract_problems(fake_suite("fake", predict=None)) == [
        "no predict(trained, images)"
    ]
    three = fake_suite("fake", train=lambda model, data, run: model)
    assert registry.contract_problems(three) == [
        "train(model, data, run) cannot be called as train(model, data, run, hooks)"
    ]
    assert registry.contract_problems(fake_suite("fake", describe={"device": "cpu"})) == [
        "describe is a dict, not a function describe(trained)"
    ]


def test_load_rejects_a_suite_that_breaks_the_contract_in_one_line(monkeypatch):
    module = fake_suite("fake_broken", predict=None, save=lambda trained: None)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    variant = registry.Variant("fake_broken", "fake", (), "fake", ())
    with pytest.raises(registry.SuiteError) as raised:
        registry.load(variant)
    message = str(raised.value)
    assert message == (
        "fake_broken.py breaks the suite contract (common/task/registry.py Suite): "
        "no predict(trained, images); save(trained) cannot be called as save(trained, path)"
    )
    assert "\n" not in message
    # The same module whole loads.
    monkeypatch.setitem(sys.modules, module.__name__, fake_suite("fake_broken"))
    assert registry.load(variant).module is sys.modules[module.__name__]
