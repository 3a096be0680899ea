"""A mutual-exclusion lock among task processes, on Airflow Variables alone: Lamport's bakery.

Airflow gives tasks no compare-and-swap on Variables and no mutex across DAGs. A one-slot pool
serialises whole task instances through the scheduler (seconds a slot, and ``airflow dags test``
ignores pools), so the lifecycle runs keep their lock in Variables. Fischer's algorithm, used before,
needs a fixed settle time on every acquisition; the bakery needs no timing assumption at all, only
registers a process can write, delete and list, which the Task SDK gives (``Variable.keys(prefix=...)``,
Airflow 3.3). The state is in the Variables' names, so one listing shows the whole line:

1. A run creates ``<prefix>choosing.<token>``, lists the tickets ``<prefix>ticket.<number>.<token>``,
   creates its own with one more than the largest number, then deletes its *choosing* Variable.
2. It waits for every run of its next listing that is still choosing or holds a smaller
   ``(number, token)``. A run that comes later listed this ticket while choosing, so its own number
   is larger and it waits in turn.
3. It deletes its ticket when done.

An uncontended acquisition is six Variable calls and no sleep; a waiting run makes one listing call
per look. Every Variable holds a lease (``{"expires": <Unix time>}``): a run ahead that stays in place
has its lease read, and once that has passed it is skipped (after two leases, deleted). A waiting run
renews its own lease; one that could not (stalled for half a lease) gives up rather than risk entering
beside another.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
WAIT_SECONDS = 600.0
# A waiting run looks again after about the time the runs ahead of it need, less one: each run's turn
# is estimated from how fast the line has moved so far (until it moves: the default below). Waiters
# far back must not take the CPU and API calls the holder needs; the first in line looks twice a turn.
# Jittered, so that waiters do not poll in step.
POLL_SECONDS_PER_RUN_AHEAD = 0.05
POLL_SECONDS_MAX = 2.0
# A run ahead that has not moved for this long has its lease read: it may have died. Longer than a
# healthy run holds the lock (a few Variable calls), short enough that a crashed run's leftovers
# cost little.
LIVENESS_CHECK_SECONDS = 2.0
NUMBER_DIGITS = 12


class LockTimeout(TimeoutError):
    """The lock was not acquired within the wait limit, or this run stalled past its own lease."""


class Registers(Protocol):
    """Where the lock keeps its state: named text values that can be listed by prefix."""

    def keys(self, prefix: str) -> list[str]: ...

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...


class VariableRegisters:
    """Registers as Airflow Variables, through the Task SDK (so only inside a running task)."""

    def __init__(self, description: str) -> None:
        self.description = description

    def keys(self, prefix: str) -> list[str]:
        from airflow.sdk import Variable

        return list(Variable.keys(prefix=prefix))

    def get(self, key: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        return value if isinstance(value, str) else None

    def set(self, key: str, value: str) -> None:
        from airflow.sdk import Variable

        Variable.set(key, value, description=self.description)

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(key)


@dataclass(frozen=True)
class Place:
    """A run's place in line, read from a Variable's name: ``number`` is ``None`` while choosing."""

    number: int | None
    token: str

    def goes_before(self, other: Place) -> bool:
        # A run still choosing may yet pick a smaller number, so it goes first until it has one.
        assert other.number is not None
        return self.number is None or (self.number, self.token) < (other.number, other.token)

    def line_order(self) -> tuple[bool, int, str]:
        """Tickets by number, then the runs still choosing (they will draw larger numbers)."""
        return (self.number is None, self.number or 0, self.token)


@dataclass
class Acquisition:
    """How an acquisition went: seconds spent waiting, and how many other runs were in line then."""

    key: str
    number: int
    waited_seconds: float = 0.0
    others: int = 0


class BakeryLock:
    """Lamport's bakery over named registers (see the module docstring).

    :param prefix: the common key prefix of the lock's Variables.
    :param registers: where they live (Airflow Variables in the provider).
    :param lease_seconds: how long a silent run still counts.
    :param wait_seconds: how long to wait for the runs ahead before :class:`LockTimeout`.
    :param poll_seconds_per_run_ahead: the shortest turn a waiting run assumes for each run ahead of
        it when it paces its looks (see ``POLL_SECONDS_PER_RUN_AHEAD``).
    """

    def __init__(
        self,
        prefix: str,
        registers: Registers,
        lease_seconds: float = LEASE_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        poll_seconds_per_run_ahead: float = POLL_SECONDS_PER_RUN_AHEAD,
    ) -> None:
        self.prefix = prefix
        self.registers = registers
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.poll_seconds_per_run_ahead = poll_seconds_per_run_ahead

    def choosing_key(self, token: str) -> str:
        return f"{self.prefix}choosing.{token}"

    def ticket_key(self, number: int, token: str) -> str:
        return f"{self.prefix}ticket.{number:0{NUMBER_DIGITS}d}.{token}"

    def place(self, key: str) -> Place | None:
        """The place a key of this lock stands for; ``None`` for any other key under the prefix."""
        kind, _, rest = key.removeprefix(self.prefix).partition(".")
        if kind == "choosing" and rest:
            return Place(None, rest)
        number, _, token = rest.partition(".")
        if kind == "ticket" and number.isdigit() and token:
            return Place(int(number), token)
        return None

    @contextlib.contextmanager
    def hold(self, token: str | None = None) -> Iterator[Acquisition]:
        """Hold the lock for the ``with`` block; this run's Variables are deleted however it ends."""
        token = token or uuid.uuid4().hex
        started = time.monotonic()
        keys = [self.choosing_key(token)]
        try:
            yield self._acquire(token, started, keys)
        finally:
            for key in keys:
                self.registers.delete(key)

    def _acquire(self, token: str, started: float, keys: list[str]) -> Acquisition:
        written = self._write(keys[0])
        number = 1 + max((p.number for p in self._line().values() if p.number is not None), default=0)
        self._check_lease(keys[0], written)
        keys.append(self.ticket_key(number, token))
        written = self._write(keys[1])
        self.registers.delete(keys.pop(0))
        me = Place(number, token)
        line = [place for place in self._line().values() if place.token != token]
        acquisition = Acquisition(keys[0], number, others=len(line))
        # Only the runs in line now can go before this one: later ones will list its ticket.
        ahead = sorted((place for place in line if place.goes_before(me)), key=Place.line_order)
        watch, waiting_since, in_line = Watch(), time.monotonic(), len(ahead)
        while ahead:
            ahead = self._still_ahead(ahead, me, watch)
            if not ahead:
                break
            if time.monotonic() - started > self.wait_seconds:
                names = ", ".join(self._key(place) for place in ahead)
                raise LockTimeout(
                    f"could not take the lock {self.prefix!r} within {self.wait_seconds:.0f} s: "
                    f"still waiting for {names}"
                )
            self._check_lease(keys[0], written)
            if time.monotonic() - written > self.lease_seconds / 4:
                written = self._write(keys[0])
            per_turn = self._turn_seconds(time.monotonic() - waiting_since, in_line - len(ahead))
            pause = min(POLL_SECONDS_MAX, per_turn * max(0.5, len(ahead) - 1))
            time.sleep(pause * random.uniform(0.7, 1.3))
        self._check_lease(keys[0], written)
        acquisition.waited_seconds = time.monotonic() - started
        return acquisition

    def _turn_seconds(self, waited: float, turns_passed: int) -> float:
        """How long one run ahead holds the line: measured once the line has moved."""
        if turns_passed <= 0:
            return self.poll_seconds_per_run_ahead
        return max(self.poll_seconds_per_run_ahead, waited / turns_passed)

    def _line(self) -> dict[str, Place]:
        """Every run in line by token; a run between writing its ticket and deleting its *choosing*
        Variable is listed twice, and counts by its ticket."""
        line: dict[str, Place] = {}
        for place in filter(None, map(self.place, self.registers.keys(self.prefix))):
            if place.number is not None or place.token not in line:
                line[place.token] = place
        return line

    def _key(self, place: Place) -> str:
        return (
            self.choosing_key(place.token)
            if place.number is None
            else self.ticket_key(place.number, place.token)
        )

    def _write(self, key: str) -> float:
        """Write the key's lease; return when the lease began (monotonic), taken before the write."""
        began = time.monotonic()
        self.registers.set(key, json.dumps({"expires": round(time.time() + self.lease_seconds, 3)}))
        return began

    def _check_lease(self, key: str, written: float) -> None:
        # Past half its lease, others may already have judged this run dead and gone ahead: renewing
        # now could put two runs inside, so the run gives up instead.
        stalled = time.monotonic() - written
        if stalled > self.lease_seconds / 2:
            raise LockTimeout(
                f"this run stalled for {stalled:.0f} s, past half its lease on {key!r}: another run "
                "may have taken the lock meanwhile; try again"
            )

    def _still_ahead(self, ahead: list[Place], me: Place, watch: Watch) -> list[Place]:
        """The runs of ``ahead`` still in line before ``me``: one listing, and a lease read for a head
        of the line that has not moved for a while."""
        listed = self._line()
        ahead = [current for place in ahead if (current := listed.get(place.token)) is not None]
        ahead = sorted((place for place in ahead if place.goes_before(me)), key=Place.line_order)
        if ahead and watch.stuck(ahead[0]) and not self._alive(ahead[0]):
            watch.dead.add(ahead[0].token)
        return [place for place in ahead if place.token not in watch.dead]

    def _alive(self, place: Place) -> bool:
        """Whether the run's lease still holds; a run gone for two leases has its Variable deleted."""
        key = self._key(place)
        try:
            expires = float(json.loads(self.registers.get(key) or "null")["expires"])
        except (ValueError, TypeError, KeyError):
            return False  # deleted meanwhile, or not written by this lock: it holds no one up
        now = time.time()
        if expires >= now:
            return True
        if expires + self.lease_seconds < now:
            log.warning("deleting %s: its run stopped renewing it %.0f s ago", key, now - expires)
            self.registers.delete(key)
        return False


class Watch:
    """When the head of the line last changed, and the runs found dead meanwhile."""

    def __init__(self) -> None:
        self.head: Place | None = None
        self.since = time.monotonic()
        self.dead: set[str] = set()

    def stuck(self, head: Place) -> bool:
        if head != self.head:
            self.head, self.since = head, time.monotonic()
            return False
        if time.monotonic() - self.since < LIVENESS_CHECK_SECONDS:
            return False
        self.since = time.monotonic()
        return True
