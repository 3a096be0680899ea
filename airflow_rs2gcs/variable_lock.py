"""A mutual-exclusion lock among task processes, on Airflow Variables alone: Lamport's bakery.

Airflow gives tasks no compare-and-swap on Variables and no mutex across DAGs. A one-slot pool
serialises whole task instances through the scheduler (seconds a slot, and ``airflow dags test``
ignores pools), so the lifecycle runs keep their lock in Variables. Fischer's algorithm, used before,
needs a fixed settle time on every acquisition; the bakery needs no timing assumption at all, only
registers a process can read, write and list, which the Task SDK gives (``Variable.keys(prefix=...)``,
Airflow 3.3):

1. A run writes its own register ``<prefix><token>`` as *choosing*, reads every other register's
   number and writes its ticket: one more than the largest.
2. It then waits for every run it listed after writing the ticket that is still choosing or holds a
   smaller ``(number, key)``. A run that registers later read this ticket while choosing, so its own
   is larger and it waits in turn.
3. It deletes its register when done.

An uncontended acquisition is five Variable calls and no sleep. Every register carries a lease
(``expires``, Unix time): a run that died is skipped once its lease has passed, and a waiting run
renews its lease while it waits. A run that could not renew in time (stalled for most of a lease)
gives up rather than risk entering beside another.
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
# A waiting run looks again after a short random pause: short, because a critical section lasts tens
# of milliseconds; random, so that waiters do not poll in step.
POLL_SECONDS = (0.01, 0.06)


class LockTimeout(TimeoutError):
    """The lock was not acquired within the wait limit, or this run stalled past its own lease."""


class Registers(Protocol):
    """Where the lock keeps its registers: named text values that can be listed by prefix."""

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
class Ticket:
    """One register's content: ``number`` is ``None`` while its run is choosing."""

    number: int | None
    expires: float

    def encode(self) -> str:
        return json.dumps({"number": self.number, "expires": round(self.expires, 3)})

    @classmethod
    def decode(cls, text: str | None) -> Ticket | None:
        """The ticket in ``text``; ``None`` for a missing or unreadable register (it blocks no one)."""
        try:
            value = json.loads(text or "")
            number = value["number"]
            if number is not None and not isinstance(number, int):
                return None
            return cls(number, float(value["expires"]))
        except (ValueError, TypeError, KeyError):
            return None


@dataclass
class Acquisition:
    """How an acquisition went: seconds spent waiting, and how many other runs were in line then."""

    key: str
    number: int
    waited_seconds: float = 0.0
    others: int = 0


class BakeryLock:
    """Lamport's bakery over named registers (see the module docstring).

    :param prefix: the registers' common key prefix; each acquisition writes ``<prefix><token>``.
    :param registers: where the registers live (Airflow Variables by default).
    :param lease_seconds: how long a silent register still counts.
    :param wait_seconds: how long to wait for the runs ahead before :class:`LockTimeout`.
    """

    def __init__(
        self,
        prefix: str,
        registers: Registers,
        lease_seconds: float = LEASE_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self.prefix = prefix
        self.registers = registers
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds

    @contextlib.contextmanager
    def hold(self, token: str | None = None) -> Iterator[Acquisition]:
        """Hold the lock for the ``with`` block; the register is deleted however the block ends."""
        key = f"{self.prefix}{token or uuid.uuid4().hex}"
        started = time.monotonic()
        try:
            acquisition = self._acquire(key, started)
            yield acquisition
        finally:
            self.registers.delete(key)

    def _acquire(self, key: str, started: float) -> Acquisition:
        written = self._write(key, None)
        number = 1 + max((t.number for t in self._live_tickets(key) if t.number is not None), default=0)
        self._check_lease(key, written)
        written = self._write(key, number)
        ahead = [other for other in self.registers.keys(self.prefix) if other != key]
        acquisition = Acquisition(key, number, others=len(ahead))
        while ahead := self._still_ahead(ahead, key, number):
            if time.monotonic() - started > self.wait_seconds:
                raise LockTimeout(
                    f"could not take the lock {self.prefix!r} within {self.wait_seconds:.0f} s: "
                    f"still waiting for {', '.join(ahead)}"
                )
            self._check_lease(key, written)
            if time.monotonic() - written > self.lease_seconds / 4:
                written = self._write(key, number)
            time.sleep(random.uniform(*POLL_SECONDS))
        self._check_lease(key, written)
        acquisition.waited_seconds = time.monotonic() - started
        return acquisition

    def _write(self, key: str, number: int | None) -> float:
        """Write the register; return when its lease began (monotonic), taken before the write."""
        began = time.monotonic()
        self.registers.set(key, Ticket(number, time.time() + self.lease_seconds).encode())
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

    def _live_tickets(self, key: str) -> Iterator[Ticket]:
        for other in self.registers.keys(self.prefix):
            if other != key and (ticket := self._read_live(other)) is not None:
                yield ticket

    def _read_live(self, key: str) -> Ticket | None:
        """The register's ticket, or ``None`` if it is gone or its lease passed (long dead: removed)."""
        ticket = Ticket.decode(self.registers.get(key))
        now = time.time()
        if ticket is None or ticket.expires >= now:
            return ticket
        if ticket.expires + self.lease_seconds < now:
            log.warning("removing %s: its run stopped renewing it over %.0f s ago", key, now - ticket.expires)
            self.registers.delete(key)
        return None

    def _still_ahead(self, ahead: list[str], key: str, number: int) -> list[str]:
        """The runs of ``ahead`` that still go first, checked in order until the first that does."""
        for index, other in enumerate(ahead):
            ticket = self._read_live(other)
            if ticket is not None and _goes_first(ticket, other, number, key):
                return ahead[index:]
        return []


def _goes_first(ticket: Ticket, other: str, number: int, key: str) -> bool:
    # A run still choosing may yet pick a smaller number than ours, so it goes first until it has one.
    return ticket.number is None or (ticket.number, other) < (number, key)
