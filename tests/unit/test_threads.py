"""`threads=auto`: one torch thread per usable core that other processes are not busy on."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from recexp.errors import ConfigError
from recexp.runtime import threads
from recexp.runtime.threads import Sample

STAT = """cpu  500 0 300 9000 100 0 0 0 0 0
cpu0 400 0 200 1000 50 10 20 5 0 0
cpu1 100 0 100 8000 50 0 0 0 0 0
intr 12345
procs_running 2
"""


def test_parse_takes_auto_or_a_positive_count_and_names_the_key_otherwise():
    assert threads.parse("auto") == 0 and threads.parse(None) == 0 and threads.parse("AUTO") == 0
    assert threads.parse(3) == 3 and threads.parse("2") == 2
    for bad in (0, -1, "x", 1.5, True, ""):
        with pytest.raises(ConfigError, match=r"^threads=.*expected auto or an integer >= 1"):
            threads.parse(bad)


def test_sample_reads_the_usable_cores_of_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(STAT)
    s = threads.sample([0, 1], str(stat))
    # busy = user + nice + system + irq + softirq + steal; total adds idle and iowait
    assert s.busy == (400 + 200 + 10 + 20 + 5, 200) and s.total == (635 + 1000 + 50, 200 + 8000 + 50)
    assert threads.sample([1], str(stat)).busy == (200,)
    assert threads.sample([0, 7], str(stat)) is None  # a core the file does not list
    assert threads.sample([0], str(tmp_path / "missing")) is None


def test_busy_elsewhere_is_the_cores_used_minus_this_process():
    a = Sample(wall=0.0, own=0.0, busy=(0, 0), total=(0, 0))
    b = Sample(wall=1.0, own=0.0, busy=(100, 0), total=(100, 100))  # core 0 all busy, core 1 idle
    assert threads.busy_elsewhere(a, b) == pytest.approx(1.0)
    mine = Sample(wall=1.0, own=0.5, busy=(100, 0), total=(100, 100))  # half of it was this process
    assert threads.busy_elsewhere(a, mine) == pytest.approx(0.5)
    assert threads.busy_elsewhere(a, Sample(1.0, 2.0, (100, 0), (100, 100))) == 0.0  # never negative


@pytest.fixture
def machine(monkeypatch):
    """A 4-core machine whose other processes used ``load['busy']`` cores over the window."""
    load = {"busy": 0.0, "busy_j": [0] * 4, "ticks": 0, "t": 1.0}
    monkeypatch.setattr(threads, "usable_cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "_mark", Sample(0.0, 0.0, (0,) * 4, (0,) * 4))
    monkeypatch.setattr(threads.time, "monotonic", lambda: load["t"])

    def fake_sample(cores=None, stat="/proc/stat"):  # the counters of one more second at this load
        full, rest = int(load["busy"]), load["busy"] - int(load["busy"])
        step = [100 if c < full else int(100 * rest) if c == full else 0 for c in range(4)]
        load["busy_j"] = [b + d for b, d in zip(load["busy_j"], step, strict=True)]
        load["ticks"] += 100
        load["t"] += 1.0
        return Sample(load["t"] - 1.0, 0.0, tuple(load["busy_j"]), (load["ticks"],) * 4)

    monkeypatch.setattr(threads, "sample", fake_sample)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return load


def test_auto_leaves_the_cores_other_processes_use(machine, monkeypatch):
    assert threads.resolve("auto") == (4, "auto: 4 cores, 0.0 in use by other processes")
    machine["busy"] = 1.0
    assert threads.resolve("auto")[0] == 3
    machine["busy"] = 2.6  # rounded: 3 cores taken
    assert threads.resolve("auto")[0] == 1
    machine["busy"] = 4.0
    assert threads.resolve("auto")[0] == 1  # at least one
    machine["busy"] = 0.0
    assert threads.resolve("auto", processes=2)[0] == 2  # data-parallel ranks share the free cores
    assert threads.resolve("auto", processes=8)[0] == 1
    # the user's count wins: the config key first, then OMP_NUM_THREADS
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.resolve("auto") == (2, "OMP_NUM_THREADS=2")
    assert threads.resolve(3) == (3, "threads=3")


def test_auto_without_proc_stat_takes_every_usable_core(machine, monkeypatch):
    monkeypatch.setattr(threads, "sample", lambda cores=None, stat="": None)
    assert threads.resolve("auto") == (4, "auto: 4 cores")
    assert threads.resolve("auto", processes=3) == (1, "auto: 4 cores")


@pytest.fixture
def torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    threads.pin(before, "restored")


def test_an_auto_count_follows_jobs_that_start_and_end_beside_it(machine, torch_threads, monkeypatch):
    assert threads.apply("auto").startswith("4 threads (auto: 4 cores, 0.0 in use")
    assert threads.rebalance() is None  # nothing changed
    machine["busy"] = 2.0  # two jobs started beside it
    assert threads.rebalance() == "2 threads (auto: 4 cores, 2.0 in use by other processes)"
    assert threads.count() == 2
    machine["busy"] = 0.0  # they ended
    assert threads.rebalance().startswith("4 threads") and threads.count() == 4
    monkeypatch.setattr(threads.time, "monotonic", lambda: threads._mark.wall + 0.5)
    machine["busy"] = 3.0
    assert threads.rebalance() is None  # half a second: too short a window to judge, wait for more
    threads.apply(3)  # a count the user chose is never moved
    monkeypatch.setattr(threads.time, "monotonic", lambda: machine["t"])
    assert threads.rebalance() is None and threads.count() == 3


@pytest.mark.skipif(threads.sample() is None, reason="no /proc/stat (not Linux)")
def test_a_core_kept_busy_by_another_process_is_not_given_to_torch(monkeypatch):
    """Measured, not mocked: a spinning process beside this one takes a core away from auto."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(threads.usable_cores())
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # it is running
        threads.resolve("auto")  # starts a fresh window now
        time.sleep(0.5)
        n, why = threads.resolve("auto")
    finally:
        spinner.kill()
        spinner.wait()
    assert why.startswith(f"auto: {cores} cores, ")
    assert n <= max(1, cores - 1), why  # other load on the machine can only lower it
