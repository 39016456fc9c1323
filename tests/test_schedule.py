"""The interleaved schedule: turns never overlap, each round is a shuffle of the live processes
recorded with its seed, a crashed process leaves the others running, and a signal ends every
process. The processes are tiny stand-ins that speak common.measure.turns; nothing is trained."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from common.measure import schedule
from common.measure.hooks import TrainingClock, TrainingHooks

ROOT = Path(__file__).resolve().parents[1]

# A stand-in worker: ready, then `blocks` blocks of `seconds` each, one per turn, each logged
# with its start and end; "crash" exits after its second block without a word.
WORKER = """
import json, sys, time
from common.measure.turns import process_turns
name, blocks, seconds, behaviour, log = sys.argv[1:]
turns = process_turns()
turns.ready()
for index in range(int(blocks)):
    start = time.time(); time.sleep(float(seconds)); end = time.time()
    with open(log, "a") as f:
        f.write(json.dumps({"name": name, "start": start, "end": end}) + "\\n")
    if behaviour == "crash" and index == 1:
        sys.exit(3)
    if behaviour == "garble" and index == 1:
        turns._write.write("{not json\\n"); turns._write.flush()
    turns.yield_turn([{"kind": "block", "index": index, "turn": turns.taken}], None)
"""


def job(tmp_path, name, blocks=4, seconds=0.02, behaviour="ok", reference=False):
    log = tmp_path / "intervals.jsonl"
    return schedule.Job(
        label=name,
        command=lambda _log: [
            sys.executable,
            "-c",
            WORKER,
            name,
            str(blocks),
            str(seconds),
            behaviour,
            str(log),
        ],
        environment={**os.environ, "PYTHONPATH": str(ROOT)},
        log_path=tmp_path / "logs" / f"{name}.log",
        reference=reference,
    )


def run(jobs, seed=7):
    messages, finished = [], {}
    rounds = schedule.run_interleaved(
        jobs,
        cwd=ROOT,
        seed=seed,
        on_message=lambda j, m: messages.append((j.label, m)),
        on_finished=lambda j, code: finished.__setitem__(j.label, code),
    )
    return rounds, messages, finished


def intervals(tmp_path):
    path = tmp_path / "intervals.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_turns_never_overlap_and_every_round_is_a_recorded_shuffle(tmp_path):
    names = ["ref", "a", "b", "c"]
    rounds, messages, finished = run([job(tmp_path, n) for n in names])
    assert finished == dict.fromkeys(names, 0)
    # 4 blocks each, and a last turn in which each process finishes and exits.
    assert len(rounds) == 5
    assert all(sorted(r["order"]) == sorted(names) for r in rounds)
    assert len({tuple(r["order"]) for r in rounds}) > 1  # shuffled, not rotated in one order
    spans = sorted(intervals(tmp_path), key=lambda s: s["start"])
    assert len(spans) == 16
    for before, after in zip(spans, spans[1:], strict=False):
        assert before["end"] <= after["start"], f"{before} overlaps {after}"
    # Each round's blocks ran in that round's order.
    for number, record in enumerate(rounds[:4]):
        ran = [s["name"] for s in spans[4 * number : 4 * number + 4]]
        assert ran == record["order"]
    turns = [m["turn"] for label, m in messages if label == "a" and m["kind"] == "turn"]
    assert turns == [1, 2, 3, 4]


def test_the_order_is_reproducible_from_its_seed(tmp_path):
    first, _, _ = run([job(tmp_path, n) for n in "wxyz"], seed=3)
    second, _, _ = run([job(tmp_path, n) for n in "wxyz"], seed=3)
    assert [r["order"] for r in first] == [r["order"] for r in second]


def test_a_crashed_or_garbled_process_leaves_the_others_running(tmp_path):
    jobs = [job(tmp_path, "ref"), job(tmp_path, "crash", behaviour="crash"), job(tmp_path, "ok")]
    jobs.append(job(tmp_path, "garble", behaviour="garble"))
    _, messages, finished = run(jobs)
    assert finished["crash"] == 3
    assert finished["ref"] == finished["ok"] == 0
    assert ("garble", {"kind": "garbled", "text": "{not json\n"}) in messages
    done = [s["name"] for s in intervals(tmp_path)]
    assert done.count("ok") == 4 and done.count("crash") == 2


def test_a_signal_ends_every_process_and_raises(tmp_path):
    jobs = [job(tmp_path, n, blocks=200, seconds=0.05) for n in ("ref", "a")]
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.time()
    with pytest.raises(schedule.Interrupted) as raised:
        run(jobs)
    timer.cancel()
    assert raised.value.signal_number == signal.SIGTERM
    assert time.time() - started < 15
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the driver's handler is undone
    for j in jobs:
        # The processes are gone: their logs are closed and nothing more is written.
        count = len(intervals(tmp_path))
        time.sleep(0.2)
        assert len(intervals(tmp_path)) == count, j.label


def test_groups_are_led_by_the_reference_and_fit_the_limit(tmp_path):
    jobs = [job(tmp_path, "ref", reference=True), *(job(tmp_path, f"v{i}") for i in range(9))]
    split = schedule.groups(jobs, max_alive=4)
    assert [len(g) for g in split] == [4, 4, 4]
    assert [g[0].label for g in split] == ["ref", "ref@2", "ref@3"]
    assert all(g[0].reference for g in split)
    assert [j.group for j in split[2]] == [3, 3, 3, 3]
    assert split[1][0].log_path.name == "ref@2.log"


def test_a_family_shares_a_group_where_it_fits(tmp_path):
    """A suite and its relatives (adjacent in the jobs) are not split across groups, so their
    ratio to each other pairs blocks of one round; a family larger than a group still splits."""
    names = ["ref", "a", "b", "k1", "k2", "k3", "c"]
    jobs = [job(tmp_path, name, reference=name == "ref") for name in names]
    split = schedule.groups(jobs, max_alive=4, family=lambda j: j.label[0])
    assert [[j.label for j in g] for g in split] == [
        ["ref", "a", "b"],
        ["ref@2", "k1", "k2", "k3"],
        ["ref@3", "c"],
    ]
    big = [job(tmp_path, "ref", reference=True), *(job(tmp_path, f"k{i}") for i in range(5))]
    split = schedule.groups(big, max_alive=4, family=lambda j: j.label[0])
    assert [len(g) for g in split] == [4, 3]


class FakeTurns:
    def __init__(self) -> None:
        self.taken, self.yielded = 1, []

    def yield_turn(self, blocks, epoch) -> None:
        self.yielded.append(([b["steps"] for b in blocks], epoch and epoch["epoch"]))
        self.taken += 1


def test_hooks_time_blocks_and_yield_after_each():
    turns = FakeTurns()
    hooks = TrainingHooks(epochs=2, clock=TrainingClock(), block_steps=3, turns=turns)
    for epoch in (1, 2):
        for _ in range(7):
            hooks.batch_end(0.5)
        hooks.validation_start()
        hooks.validation_end()
        hooks.epoch_end(epoch, 0.5, 0.9)
    assert [b["steps"] for b in hooks.blocks] == [3, 3, 1, 3, 3, 1]
    assert [b["turn"] for b in hooks.blocks] == [1, 2, 3, 4, 5, 6]
    assert turns.yielded == [
        ([3], None),
        ([3], None),
        ([1], 1),
        ([3], None),
        ([3], None),
        ([1], 2),
    ]
    assert {"steal_share", "cpu_per_wall", "load_1min"} <= set(hooks.blocks[0])
    assert sum(b["seconds"] for b in hooks.blocks) <= hooks.train_seconds + 1e-6


def test_a_signal_started_ignored_stays_ignored():
    """nohup ignores SIGHUP so that a run outlives its terminal: the driver keeps it so."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with schedule.interruptible():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)
        signal.signal(signal.SIGTERM, term)
