"""Every execution mode a suite offers beyond its default trains the task too."""

from __future__ import annotations

from common.measure import runner
from conftest import task_data_for
from tests.test_suites import SMOKE


def test_each_extra_mode_learns(suite, extra_mode):
    run = SMOKE.with_(mode=extra_mode)
    data, _ = task_data_for(run)
    record = runner.measure_variant(suite, run, data)
    assert record["mode"] == extra_mode
    assert record["test_accuracy"] > 0.80
    assert record["roundtrip_identical"]
