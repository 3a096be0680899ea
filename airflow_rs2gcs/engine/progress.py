"""Progress lines in the task log while an export runs: rows, MB, rows/s, files uploaded."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("airflow_rs2gcs.engine.export")

PROGRESS_EVERY_SECONDS = 5.0


class Progress:
    """Logs a progress line at most every ``every`` seconds, and a final line.

    :param label: what is being exported (e.g. the object prefix), repeated in every line.
    :param every: seconds between lines.
    :param clock: a monotonic clock (tests pass a fake one).
    :param table: the table's name, put first on every line: a task exporting several tables at
        once interleaves their lines.
    """

    def __init__(
        self,
        label: str,
        every: float = PROGRESS_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        table: str | None = None,
    ) -> None:
        self.label = label
        self.prefix = f"{table}: " if table else ""
        self.every = every
        self.clock = clock
        self.started = self.last = clock()
        self.rows = 0
        self.wire_bytes = 0
        self.files = 0

    def update(self, rows: int, wire_bytes: int, files: int) -> None:
        """Record totals so far; log if ``every`` seconds passed since the last line."""
        self.rows, self.wire_bytes, self.files = rows, wire_bytes, files
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self._log("progress")

    def finish(self) -> None:
        """Log the final line."""
        self._log("read")

    def _log(self, what: str) -> None:
        elapsed = max(self.clock() - self.started, 1e-9)
        log.info(
            "%s%s %s: %d rows, %.1f MB in %.1fs (%.0f rows/s, %.1f MB/s), %d file(s) written",
            self.prefix,
            what,
            self.label,
            self.rows,
            self.wire_bytes / 1e6,
            elapsed,
            self.rows / elapsed,
            self.wire_bytes / 1e6 / elapsed,
            self.files,
        )
