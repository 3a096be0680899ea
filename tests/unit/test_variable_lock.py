"""The bakery lock over in-memory registers: mutual exclusion under threads, no wait alone, leases."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from airflow_rs2gcs import variable_lock
from airflow_rs2gcs.variable_lock import BakeryLock, LockTimeout, Place

PREFIX = "lock."


class MemoryRegisters:
    """Linearizable registers (one mutex around each call) with optional random latency per call,
    so threads interleave between calls the way task processes do between API requests."""

    def __init__(self, latency: float = 0.0) -> None:
        self.values: dict[str, str] = {}
        self.calls = 0
        self.latency = latency
        self._mutex = threading.Lock()

    def _pause(self) -> None:
        if self.latency:
            time.sleep(random.uniform(0, self.latency))

    def keys(self, prefix: str) -> list[str]:
        self._pause()
        with self._mutex:
            self.calls += 1
            return sorted(k for k in self.values if k.startswith(prefix))

    def get(self, key: str) -> str | None:
        self._pause()
        with self._mutex:
            self.calls += 1
            return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self._pause()
        with self._mutex:
            self.calls += 1
            self.values[key] = value

    def delete(self, key: str) -> None:
        self._pause()
        with self._mutex:
            self.calls += 1
            self.values.pop(key, None)


def lease(seconds_from_now: float) -> str:
    return json.dumps({"expires": time.time() + seconds_from_now})


@pytest.fixture
def quick_liveness(monkeypatch):
    monkeypatch.setattr(variable_lock, "LIVENESS_CHECK_SECONDS", 0.05)


def test_an_uncontended_acquisition_is_six_calls_and_no_wait():
    registers = MemoryRegisters()
    lock = BakeryLock(PREFIX, registers)
    started = time.monotonic()
    with lock.hold("me") as acquisition:
        assert registers.values.keys() == {"lock.ticket.000000000001.me"}
    assert time.monotonic() - started < 0.05
    assert (acquisition.number, acquisition.others) == (1, 0)
    assert registers.calls == 6  # choose, list, ticket, unchoose, list, delete
    assert registers.values == {}


@pytest.mark.parametrize("threads", [2, 8])
def test_threads_never_hold_it_together_and_lose_no_update(threads):
    registers = MemoryRegisters(latency=0.002)
    lock = BakeryLock(PREFIX, registers, poll_seconds_per_run_ahead=0.005)
    state = {"inside": 0, "most_inside": 0, "counter": 0}
    rounds = 15

    def worker() -> None:
        for _ in range(rounds):
            with lock.hold():
                state["inside"] += 1
                state["most_inside"] = max(state["most_inside"], state["inside"])
                seen = state["counter"]
                time.sleep(random.uniform(0, 0.001))  # a read-modify-write that would lose updates
                state["counter"] = seen + 1
                state["inside"] -= 1

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert state["most_inside"] == 1
    assert state["counter"] == threads * rounds
    assert registers.values == {}


@pytest.mark.parametrize("key", ["lock.ticket.000000000001.early", "lock.choosing.early"])
def test_a_smaller_ticket_or_a_run_still_choosing_goes_first(key):
    registers = MemoryRegisters()
    registers.values[key] = lease(60)
    with (
        pytest.raises(LockTimeout, match=key.replace(".", r"\.")),
        BakeryLock(PREFIX, registers, wait_seconds=0.3).hold("late"),
    ):
        pytest.fail("entered while another run was ahead")
    assert registers.values.keys() == {key}  # the timed-out run left nothing behind


def test_ticket_numbers_follow_the_largest_in_line_and_other_keys_are_ignored(quick_liveness):
    registers = MemoryRegisters()
    registers.values["lock.ticket.000000000041.gone"] = lease(-1000)  # long dead: deleted on sight
    registers.values["lock.notes"] = "not ours"
    with BakeryLock(PREFIX, registers).hold("me") as acquisition:
        assert acquisition.number == 42
    assert registers.values.keys() == {"lock.notes"}


def test_a_dead_run_is_skipped_once_its_lease_passed_and_deleted_after_two(quick_liveness):
    registers = MemoryRegisters()
    lock = BakeryLock(PREFIX, registers, lease_seconds=10, wait_seconds=5)
    registers.values["lock.ticket.000000000001.lapsed"] = lease(-1)
    registers.values["lock.ticket.000000000002.long-dead"] = lease(-11)
    registers.values["lock.choosing.garbled"] = "not json"
    with lock.hold("me") as acquisition:
        # Well under wait_seconds (5): the dead runs are skipped, not waited out. Not < 1: make test
        # runs this beside the other xdist worker's Airflow processes, and one poll can take 1 s there.
        assert acquisition.waited_seconds < 3
    assert registers.values.keys() == {"lock.ticket.000000000001.lapsed", "lock.choosing.garbled"}


def test_a_run_stalled_past_half_its_lease_gives_up():
    class SlowRegisters(MemoryRegisters):
        def keys(self, prefix: str) -> list[str]:
            time.sleep(0.15)  # the run stalls while it lists the line
            return super().keys(prefix)

    registers = SlowRegisters()
    with (
        pytest.raises(LockTimeout, match="stalled"),
        BakeryLock(PREFIX, registers, lease_seconds=0.2).hold("me"),
    ):
        pytest.fail("entered after stalling")
    assert registers.values == {}


def test_a_waiting_run_renews_its_lease_and_goes_in_when_the_holder_leaves():
    registers = MemoryRegisters()
    lock = BakeryLock(PREFIX, registers, lease_seconds=1.0)
    holder = lock.hold("first")
    holder.__enter__()
    released = threading.Timer(1.2, holder.__exit__, args=(None, None, None))
    released.start()
    with lock.hold("second") as acquisition:  # waits 1.2 s: longer than its 1 s lease
        assert acquisition.waited_seconds >= 1.0
        assert acquisition.others == 1
    released.join()


@pytest.mark.parametrize(
    ("key", "place"),
    [
        ("lock.choosing.abc", Place(None, "abc")),
        ("lock.ticket.000000000007.abc", Place(7, "abc")),
        ("lock.ticket.7.a.b", Place(7, "a.b")),
        ("lock.ticket.x.abc", None),
        ("lock.ticket.000000000007.", None),
        ("lock.choosing.", None),
        ("lock.other", None),
    ],
)
def test_a_key_names_its_place_in_line(key, place):
    assert BakeryLock(PREFIX, MemoryRegisters()).place(key) == place
