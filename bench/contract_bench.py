"""Data-contract benchmark: the cost of ``verify="count"`` and ``capture_deletes`` beside a plain export.

    .venv/bin/python bench/contract_bench.py              # the 1,000,000-row benchmark table, 2 rounds
    make bench-contract BENCH_ARGS="--repeat 3"

The same stack and table as ``bench/sync_bench.py`` (8 columns, ``id`` unique). Three contenders export the
whole table with ``RedshiftToGCSOperator`` (Parquet/snappy, fast path), each in a fresh child process:

* plain: the export alone;
* ``verify="count"``: plus ``SELECT COUNT(*)`` of the same query in the same snapshot;
* ``capture_deletes`` with ``primary_key=["id"]``: plus the whole key set written as ``_keys/`` objects.

The contenders run in rounds (plain, verify, keys; then again), so drift on a shared machine hits each
alike; the best time of each counts. The key set is the whole table whatever the window, so on an
incremental table its cost is this absolute figure, not the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import BUCKET, Measurement, child_env, load_table, measure

CONTENDERS = [
    ("ours", "plain export (parquet, snappy)"),
    ("ours-verify", 'verify="count"'),
    ("ours-keys", 'capture_deletes, primary_key=["id"]'),
]


def print_table(rows: int, best: list[Measurement]) -> None:
    """Seconds, rows/s, peak RSS and the time ratio to the plain export."""
    plain = best[0]
    print(f"\ndata-contract benchmark: {rows:,} rows x 8 columns, local stack, whole table exported\n")
    header = (
        f"{'contender':<40} {'seconds':>8} {'rows/s':>9} {'peak RSS':>9} {'time vs plain':>14} {'extra':>8}"
    )
    print(header)
    print("-" * len(header))
    for m in best:
        print(
            f"{m.label:<40} {m.seconds:>8.2f} {m.rows_per_second:>9,.0f} {m.peak_mb:>6.0f} MB"
            f" {m.seconds / plain.seconds:>13.2f}x {m.seconds - plain.seconds:>7.2f}s"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the table")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the three contenders (best counts)")
    args = parser.parse_args()

    from rs2gcs_devstack.stack import LocalStack

    runs: dict[str, list[Measurement]] = {name: [] for name, _ in CONTENDERS}
    with LocalStack() as stack, tempfile.TemporaryDirectory(prefix="rs2gcs-bench-airflow-") as home:
        env = child_env(stack, home)
        stack.gcs.create_bucket(BUCKET)
        print("loading the table", flush=True)
        load_table(stack, 1, args.rows, create=True)
        for round_number in range(1, args.repeat + 1):
            for name, label in CONTENDERS:
                m = measure(name, label, args.rows, env)
                runs[name].append(m)
                print(f"  round {round_number}: {label}: {m.seconds:.2f}s", flush=True)
    best = []
    for name, _ in CONTENDERS:
        fastest = min(runs[name], key=lambda m: m.seconds)
        fastest.peak_mb = max(m.peak_mb for m in runs[name])
        best.append(fastest)
    print_table(args.rows, best)
    return 0 if all(m.rows == args.rows for m in best) else 1


if __name__ == "__main__":
    sys.exit(main())
