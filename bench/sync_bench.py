"""Sync benchmark: one table through our operator, PostgresToGCSOperator and a fetch-only read, in one run.

    .venv/bin/python bench/sync_bench.py                  # 1,000,000 rows, plus ours on 4,000,000 rows
    .venv/bin/python bench/sync_bench.py --rss-rows 0     # skip the 4M-row memory-flatness run

It starts the local stack (PostgreSQL 16 behind the Redshift handshake shim, fake-gcs-server), loads a
table of ``--rows`` rows and 8 columns (bigint, int, timestamptz, date, numeric(14,2), text, text,
bool) and runs, each in a fresh child process so that imports and memory do not leak between them:

* ``RedshiftToGCSOperator`` (Parquet/snappy, its defaults) through the real RedshiftSQLHook and GCSHook;
* the same with ``fetch_method="driver"``: the plain path through the driver's public API, which
  ``auto`` falls back to when the installed driver lacks what the fast path needs;
* the google provider's ``PostgresToGCSOperator`` (CSV; its Parquet fails on DATE columns) with a
  server-side cursor of the same batch size, straight to PostgreSQL;
* ``redshift_connector`` alone through the same shim: DECLARE/FETCH FORWARD 10000 and ``fetchall``,
  rows discarded (the driver's ceiling).

Each contender's time covers its connection set-up and the whole transfer (for ours: manifest
published). Peak RSS is the larger of the child's own high-water mark and the sampled RSS of its whole
process tree. Ours and fetch-only run ``--repeat`` times and the best time counts (the machine may be
shared); the peak RSS is the highest of all repeats. Then ours runs on ``--rss-rows`` rows to check
that memory does not grow with the table. The exit status is 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUCKET = "bench"
TABLE = "public.bench_sync"
QUERY = f"SELECT * FROM {TABLE}"
FETCH_SIZE = 10_000
PG_CONN_ID = "rs2gcs_bench_postgres"
TARGET_VS_FETCH = 0.85
TARGET_VS_POSTGRES = 3.5
TARGET_PEAK_RSS_MB = 250.0
TARGET_RSS_GROWTH = 0.15
COLUMNS = "bigint, int, timestamptz, date, numeric(14,2), text, text, bool"


def table_sql(first: int, last: int, *, create: bool) -> str:
    """SQL that (re)creates the table and inserts rows ``first..last`` (deterministic values)."""
    ddl = (
        f"DROP TABLE IF EXISTS {TABLE};\n"
        f"CREATE TABLE {TABLE} (id bigint, quantity integer, updated_at timestamptz, order_date date,\n"
        "  amount numeric(14, 2), customer text, note text, paid boolean);\n"
        if create
        else ""
    )
    return (
        f"{ddl}INSERT INTO {TABLE}\n"
        "SELECT g, ((g * 7) % 1000)::int, timestamptz '2020-01-01 00:00:00+00' + g * interval '37 seconds',\n"
        "  date '1990-01-01' + (g % 20000)::int, round(((g * 7919) % 10000000) / 100.0, 2),\n"
        "  'customer ' || (g % 50000), CASE WHEN g % 10 = 0 THEN NULL ELSE md5(g::text) END, g % 3 = 0\n"
        f"FROM generate_series({first}::bigint, {last}::bigint) AS g;\nANALYZE {TABLE};\n"
    )


# -- children: one contender each; the last stdout line is a JSON result ----------------------------------
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_ours(rows: int, fetch_method: str = "auto", **contract: Any) -> dict[str, Any]:
    """Ours; ``contract`` takes the data-contract options (bench/contract_bench.py)."""
    from airflow.sdk import DAG

    from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

    with DAG("rs2gcs_bench", schedule=None):
        operator = RedshiftToGCSOperator(
            task_id="ours",
            sql=QUERY,
            bucket=BUCKET,
            object_prefix=f"ours-{fetch_method}{'-'.join(['', *sorted(contract)])}/{rows}",
            redshift_conn_id="rs2gcs_redshift",
            gcp_conn_id="rs2gcs_gcs",
            fetch_size=FETCH_SIZE,
            fetch_method=fetch_method,
            **contract,
        )
    baseline = _rss_mb()
    started = time.perf_counter()
    result = operator.execute({"data_interval_start": None, "data_interval_end": None})  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return {"rows": result["rows"], "seconds": seconds, "baseline_mb": baseline, "files": result["objects"]}


def _child_postgres(rows: int) -> dict[str, Any]:
    from airflow.providers.google.cloud.transfers.postgres_to_gcs import PostgresToGCSOperator
    from airflow.sdk import DAG

    with DAG("rs2gcs_bench", schedule=None):
        operator = PostgresToGCSOperator(
            task_id="postgres",
            postgres_conn_id=PG_CONN_ID,
            gcp_conn_id="rs2gcs_gcs",
            sql=QUERY,
            bucket=BUCKET,
            filename=f"postgres/{rows}/part-{{}}.csv",
            export_format="csv",
            use_server_side_cursor=True,
            cursor_itersize=FETCH_SIZE,
        )
    baseline = _rss_mb()
    started = time.perf_counter()
    result = operator.execute({})  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return {
        "rows": result["total_row_count"],
        "seconds": seconds,
        "baseline_mb": baseline,
        "files": result["total_files"],
    }


def _child_fetch_only(rows: int) -> dict[str, Any]:
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook

    baseline = _rss_mb()
    started = time.perf_counter()
    connection = RedshiftSQLHook(redshift_conn_id="rs2gcs_redshift").get_conn()
    cursor = connection.cursor()
    cursor.execute(f"DECLARE rs2gcs_bench NO SCROLL CURSOR FOR {QUERY}")
    count = 0
    while True:
        cursor.execute(f"FETCH FORWARD {FETCH_SIZE} FROM rs2gcs_bench")
        batch = cursor.fetchall()
        count += len(batch)
        if len(batch) < FETCH_SIZE:
            break
    connection.rollback()
    connection.close()
    seconds = time.perf_counter() - started
    return {"rows": count, "seconds": seconds, "baseline_mb": baseline, "files": 0}


CHILDREN = {
    "ours": _child_ours,
    "ours-driver": functools.partial(_child_ours, fetch_method="driver"),
    "ours-verify": functools.partial(_child_ours, verify="count"),
    "ours-keys": functools.partial(_child_ours, capture_deletes=True, primary_key=["id"]),
    "postgres": _child_postgres,
    "fetch": _child_fetch_only,
}


def run_child(name: str, rows: int) -> None:
    """Entry point of a child process: run one contender and print its result as JSON."""
    result = CHILDREN[name](rows)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result["own_peak_mb"] = max(_rss_mb(), children)
    print("\n" + json.dumps(result), flush=True)


# -- parent: the stack, the children, the table -----------------------------------------------------------
@dataclass
class Measurement:
    """One contender's best run: rows, seconds, peak RSS of its process tree, RSS after imports."""

    label: str
    rows: int
    seconds: float
    peak_mb: float
    baseline_mb: float
    files: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


class TreeSampler:
    """Samples the summed RSS of a process and all its descendants every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                total = sum(p.memory_info().rss for p in tree if p.is_running())
                self.peak_mb = max(self.peak_mb, total / 2**20)
            except psutil.Error:
                pass
            time.sleep(self.interval)


def measure(name: str, label: str, rows: int, env: dict[str, str]) -> Measurement:
    """Run one contender in a child process and measure it."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--rows", str(rows)]
    with tempfile.TemporaryFile("w+") as output:
        child = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)
        with TreeSampler(child.pid) as sampler:
            code = child.wait()
        output.seek(0)
        text = output.read()
    if code != 0:
        raise RuntimeError(f"{label} failed (exit {code}):\n{text[-4000:]}")
    result = json.loads(text.strip().splitlines()[-1])
    peak = max(sampler.peak_mb, result["own_peak_mb"])
    return Measurement(label, result["rows"], result["seconds"], peak, result["baseline_mb"], result["files"])


def best_of(name: str, label: str, rows: int, env: dict[str, str], repeat: int) -> Measurement:
    """The fastest of ``repeat`` runs, with the highest peak RSS of them all."""
    runs = [measure(name, label, rows, env) for _ in range(repeat)]
    best = min(runs, key=lambda m: m.seconds)
    best.peak_mb = max(m.peak_mb for m in runs)
    return best


def child_env(stack: Any, airflow_home: str) -> dict[str, str]:
    """Environment of the children: a throwaway AIRFLOW_HOME, the stack's connections, the emulator."""
    from rs2gcs_devstack.stack import connection_json, env_var_name

    postgres = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": stack.postgres.port,
        "login": stack.postgres.user,
        "password": stack.postgres.password,
        "schema": stack.postgres.database,
    }
    return {
        **os.environ,
        **stack.airflow_env(),
        env_var_name(PG_CONN_ID): connection_json(postgres),
        "AIRFLOW_HOME": airflow_home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def load_table(stack: Any, first: int, last: int, *, create: bool) -> None:
    """Insert rows ``first..last`` (creating the table first if asked)."""
    started = time.perf_counter()
    sql = table_sql(first, last, create=create) + f'GRANT SELECT ON {TABLE} TO "{stack.postgres.user}";'
    stack.postgres.psql(sql, database=stack.postgres.database, timeout=1800)
    print(
        f"  table {TABLE}: rows {first:,}..{last:,} loaded in {time.perf_counter() - started:.1f}s",
        flush=True,
    )


# -- report -------------------------------------------------------------------------------------------------
def print_table(
    rows: int, ours: Measurement, driver: Measurement, postgres: Measurement, fetch: Measurement
) -> None:
    """The results table with the ratios."""
    print(f"\nsync benchmark: {rows:,} rows x 8 columns ({COLUMNS}), local stack, 1 table\n")
    header = f"{'contender':<46} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS':>9} {'RSS idle':>9}"
    print(header + f" {'vs fetch-only':>14} {'vs PostgresToGCS':>17}")
    print("-" * (len(header) + 33))
    for m in (ours, driver, postgres, fetch):
        print(
            f"{m.label:<46} {m.rows:>10,} {m.seconds:>8.2f} {m.rows_per_second:>9,.0f} {m.peak_mb:>6.0f} MB"
            f" {m.baseline_mb:>6.0f} MB {m.rows_per_second / fetch.rows_per_second:>13.2f}x"
            f" {m.rows_per_second / postgres.rows_per_second:>16.2f}x"
        )
    print("(RSS idle: the child's RSS after imports, before the transfer starts)")
    print(
        f"fast path vs plain driver path: {ours.rows_per_second / driver.rows_per_second:.2f}x "
        "(what a driver without the fast path's internals costs: slower, same output)"
    )


def check(label: str, ok: bool, detail: str) -> bool:
    """Print one target's verdict."""
    print(f"  {'PASS' if ok else 'FAIL'}  {label}: {detail}")
    return ok


def main() -> int:
    """Parse arguments, run the benchmark, print the table and the verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the compared table")
    parser.add_argument("--rss-rows", type=int, default=4_000_000, help="rows of the memory run; 0 skips it")
    parser.add_argument("--repeat", type=int, default=2, help="runs of ours and fetch-only (best counts)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.rows)
        return 0

    from rs2gcs_devstack.stack import LocalStack

    with LocalStack() as stack, tempfile.TemporaryDirectory(prefix="rs2gcs-bench-airflow-") as home:
        env = child_env(stack, home)
        stack.gcs.create_bucket(BUCKET)
        print("loading the table", flush=True)
        load_table(stack, 1, args.rows, create=True)
        print("running (each contender in its own process)", flush=True)
        ours = best_of("ours", "RedshiftToGCSOperator (parquet, snappy)", args.rows, env, args.repeat)
        print(f"  ours: {ours.rows_per_second:,.0f} rows/s", flush=True)
        driver = best_of(
            "ours-driver", "RedshiftToGCSOperator, fetch_method=driver", args.rows, env, args.repeat
        )
        print(f"  ours, plain driver path: {driver.rows_per_second:,.0f} rows/s", flush=True)
        fetch = best_of("fetch", "redshift_connector fetch-only (ceiling)", args.rows, env, args.repeat)
        print(f"  fetch-only: {fetch.rows_per_second:,.0f} rows/s", flush=True)
        postgres = measure("postgres", "PostgresToGCSOperator (csv)", args.rows, env)
        print(f"  PostgresToGCSOperator: {postgres.rows_per_second:,.0f} rows/s", flush=True)
        big = None
        if args.rss_rows > args.rows:
            load_table(stack, args.rows + 1, args.rss_rows, create=False)
            big = measure("ours", "RedshiftToGCSOperator (parquet, snappy)", args.rss_rows, env)
    print_table(args.rows, ours, driver, postgres, fetch)
    return report_targets(args.rows, ours, driver, postgres, fetch, big)


def report_targets(
    rows: int,
    ours: Measurement,
    driver: Measurement,
    postgres: Measurement,
    fetch: Measurement,
    big: Measurement | None,
) -> int:
    """Print every target's verdict; 0 if all pass."""
    vs_fetch = ours.rows_per_second / fetch.rows_per_second
    vs_postgres = ours.rows_per_second / postgres.rows_per_second
    print("\ntargets:")
    results = [
        check("ours >= 0.85x fetch-only", vs_fetch >= TARGET_VS_FETCH, f"{vs_fetch:.2f}x"),
        check("ours >= 3.5x PostgresToGCSOperator", vs_postgres >= TARGET_VS_POSTGRES, f"{vs_postgres:.2f}x"),
        check(
            "ours peak RSS <= 250 MB",
            ours.peak_mb <= TARGET_PEAK_RSS_MB,
            f"{ours.peak_mb:.0f} MB at {rows:,} rows",
        ),
        check(
            "every contender read every row",
            ours.rows == driver.rows == postgres.rows == fetch.rows == rows,
            f"{rows:,}",
        ),
    ]
    if big is not None:
        growth = big.peak_mb / ours.peak_mb - 1
        results += [
            check(
                "ours peak RSS <= 250 MB on the big table",
                big.peak_mb <= TARGET_PEAK_RSS_MB and big.rows > rows,
                f"{big.peak_mb:.0f} MB at {big.rows:,} rows ({big.rows_per_second:,.0f} rows/s)",
            ),
            check(
                "ours peak RSS within 15% between the two sizes",
                abs(growth) <= TARGET_RSS_GROWTH,
                f"{ours.peak_mb:.0f} MB -> {big.peak_mb:.0f} MB ({growth:+.1%})",
            ),
        ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
