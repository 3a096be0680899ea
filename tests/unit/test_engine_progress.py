"""Progress lines in the task log: every few seconds, with rows, MB and rows/s."""

from __future__ import annotations

import logging

from airflow_rs2gcs.engine.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_and_a_final_line(caplog):
    clock = FakeClock()
    progress = Progress("gs://b/p", every=5.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="airflow_rs2gcs.engine.export"):
        for second in range(1, 13):
            clock.now = 100.0 + second
            progress.update(rows=second * 10_000, wire_bytes=second * 1_000_000, files=second // 6)
        progress.finish()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3  # at 5 s, at 10 s, and the final line
    assert (
        lines[0]
        == "progress gs://b/p: 50000 rows, 5.0 MB in 5.0s (10000 rows/s, 1.0 MB/s), 0 file(s) written"
    )
    assert lines[-1].startswith("read gs://b/p: 120000 rows, 12.0 MB in 12.0s (10000 rows/s")
