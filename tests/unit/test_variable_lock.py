"""The bakery lock over in-memory registers: mutual exclusion under threads, no wait alone, leases."""

from __future__ import annotations

import random
import threading
import time

import pytest

from airflow_rs2gcs.variable_lock import BakeryLock, LockTimeout, Ticket

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


def test_an_uncontended_acquisition_is_five_calls_and_no_wait():
    registers = MemoryRegisters()
    lock = BakeryLock(PREFIX, registers)
    started = time.monotonic()
    with lock.hold("me") as acquisition:
        assert registers.values.keys() == {"lock.me"}
        assert Ticket.decode(registers.values["lock.me"]).number == 1
    assert time.monotonic() - started < 0.05
    assert acquisition.others == 0
    assert registers.calls == 5  # choose, list, ticket, list, delete
    assert registers.values == {}


@pytest.mark.parametrize("threads", [2, 8])
def test_threads_never_hold_it_together_and_lose_no_update(threads):
    registers = MemoryRegisters(latency=0.002)
    lock = BakeryLock(PREFIX, registers)
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


def test_the_lowest_ticket_goes_first_and_a_choosing_run_blocks():
    registers = MemoryRegisters()
    lock = BakeryLock(PREFIX, registers, wait_seconds=0.3)
    far = time.time() + 60
    registers.values["lock.early"] = Ticket(1, far).encode()
    with pytest.raises(LockTimeout, match=r"lock\.early"), lock.hold("late"):
        pass
    registers.values["lock.early"] = Ticket(None, far).encode()  # still choosing: it may pick a low number
    with pytest.raises(LockTimeout, match=r"lock\.early"), lock.hold("late"):
        pass
    assert registers.values.keys() == {"lock.early"}  # the timed-out run left no register behind


def test_a_dead_run_is_skipped_after_its_lease_and_removed_after_two():
    registers = MemoryRegisters()
    lock = BakeryLock(PREFIX, registers, lease_seconds=10, wait_seconds=0.3)
    registers.values["lock.lapsed"] = Ticket(1, time.time() - 1).encode()
    registers.values["lock.long-dead"] = Ticket(1, time.time() - 11).encode()
    registers.values["lock.garbled"] = "not json"
    with lock.hold("me"):
        pass
    assert registers.values.keys() == {"lock.lapsed", "lock.garbled"}


def test_a_run_stalled_past_half_its_lease_gives_up():
    class SlowRegisters(MemoryRegisters):
        def keys(self, prefix: str) -> list[str]:
            time.sleep(0.15)  # the run stalls while it reads the other tickets
            return super().keys(prefix)

    registers = SlowRegisters()
    with (
        pytest.raises(LockTimeout, match="stalled"),
        BakeryLock(PREFIX, registers, lease_seconds=0.2).hold("me"),
    ):
        pytest.fail("entered after stalling")
    assert registers.values == {}


def test_a_waiting_run_renews_its_lease():
    registers = MemoryRegisters()
    lock = BakeryLock(PREFIX, registers, lease_seconds=1.0)
    holder = lock.hold("first")
    holder.__enter__()
    released = threading.Timer(1.2, holder.__exit__, args=(None, None, None))
    released.start()
    with lock.hold("second") as acquisition:  # waits 1.2 s: longer than its 1 s lease
        assert acquisition.waited_seconds >= 1.0
    released.join()


@pytest.mark.parametrize("text", ["", "[]", '{"number": "1", "expires": 1}', '{"expires": 1}', "{"])
def test_an_unreadable_register_decodes_to_none(text):
    assert Ticket.decode(text) is None
