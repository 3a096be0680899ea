"""Capacity of the sync DAG under a real scheduler: one task per table against small tables grouped.

Starts the local stack (PostgreSQL 16 behind the Redshift shim, fake-gcs-server) and the real Airflow
api-server, scheduler and dag-processor with the LocalExecutor, then, in one run:

1. **Speed-up.** Two shapes of tenant, each synced with ``group_small_tables: false`` (one task per
   table, as before grouping) and with the default (small tables share tasks):
   ``--small-tables`` tables of ``--small-rows`` rows (default 100 x 1,000) and ``--large-tables``
   tables of ``--large-rows`` rows (default 10 x 100,000). Each run is triggered the way the UI's
   button does it and timed from the trigger to the run's end (Airflow's own ``end_date``), one run at
   a time so they do not compete; ``--repeat`` rounds alternate which variant goes first. The medians
   and the speed-up are printed (goal: >= 5x on the small tables, no loss on the large ones).
2. **Throughput.** ``--tenants-at-once`` tenants of the small shape (grouped) triggered together:
   table syncs per hour this machine sustains with the LocalExecutor and, unless ``--no-celery``,
   with two Celery workers (compose's ``airflow.env`` on loopback, Debian's redis-server as broker).

Every run's exports are checked by their manifests' row counts. Not a test: it prints numbers.
``make bench-scale`` runs it with the defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rs2gcs_devstack.broker import LocalRedis, redis_server_binary
from rs2gcs_devstack.celery_stack import CeleryServices
from rs2gcs_devstack.services import AirflowServices
from rs2gcs_devstack.stack import DEFAULT_GCP_CONN_ID, DEFAULT_REDSHIFT_CONN_ID, LocalStack

from airflow_rs2gcs.engine.paths import MANIFEST_NAME
from airflow_rs2gcs.factory import SMALL_TABLES_TASK_ID, TABLE_TASK_ID, redshift_pool, sync_dag_id

VARIABLE = "rs2gcs_tenants"
SCHEMA = "scale"
BUCKET = "scale-bench"
POOL_SLOTS = 4
RUN_TIMEOUT_S = 1800.0


def source_sql(role: str, small: tuple[int, int], large: tuple[int, int]) -> str:
    """The source tables: ``small`` and ``large`` are (tables, rows each); ANALYZE fills the estimates."""
    (small_tables, small_rows), (large_tables, large_rows) = small, large
    return f"""
    DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};
    DO $$ BEGIN
      FOR i IN 0..{small_tables - 1} LOOP
        EXECUTE format('CREATE TABLE {SCHEMA}.s%s AS SELECT g AS id, md5(g::text) AS label,
          now() - g * interval ''1 minute'' AS updated_at FROM generate_series(1, {small_rows}) g',
          lpad(i::text, 3, '0'));
      END LOOP;
      FOR i IN 0..{large_tables - 1} LOOP
        EXECUTE format('CREATE TABLE {SCHEMA}.l%s AS SELECT g AS id, md5(g::text) AS label,
          now() - g * interval ''1 minute'' AS updated_at FROM generate_series(1, {large_rows}) g',
          lpad(i::text, 2, '0'));
      END LOOP;
    END $$;
    ANALYZE;
    GRANT USAGE ON SCHEMA {SCHEMA} TO "{role}";
    GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO "{role}";
    """


def tenant(tables: Sequence[str], prefix: str, *, grouped: bool) -> dict[str, Any]:
    return {
        "source": "redshift_to_gcs",
        "status": "configured",
        "redshift_conn_id": DEFAULT_REDSHIFT_CONN_ID,
        "gcp_conn_id": DEFAULT_GCP_CONN_ID,
        "bucket": BUCKET,
        "prefix": prefix,
        "syncFrequency": "manual",
        "format": "parquet",
        "tables": [{"name": name} for name in tables],
        "group_small_tables": grouped,
    }


def shapes(args: argparse.Namespace) -> dict[str, list[str]]:
    return {
        "small": [f"{SCHEMA}.s{i:03d}" for i in range(args.small_tables)],
        "large": [f"{SCHEMA}.l{i:02d}" for i in range(args.large_tables)],
    }


def export_tasks(services: AirflowServices, dag_id: str, run_id: str) -> int:
    """How many export task instances the run had (one per large table, one per group of small ones)."""
    return sum(
        1
        for ti in services.task_instances(dag_id, run_id)
        if ti["task_id"] in (TABLE_TASK_ID, SMALL_TABLES_TASK_ID) and ti["state"] == "success"
    )


def run_all(services: AirflowServices, tenant_ids: Sequence[str]) -> tuple[float, list[dict[str, Any]]]:
    """Trigger every tenant's sync at once; wait for all; seconds from the first trigger to the last end."""
    started = dt.datetime.now(dt.UTC)
    triggered = [(sync_dag_id(t), services.trigger(sync_dag_id(t))["dag_run_id"]) for t in tenant_ids]
    runs = [services.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT_S) for dag_id, run_id in triggered]
    ended = max(dt.datetime.fromisoformat(run["end_date"]) for run in runs)
    return (ended - started).total_seconds(), runs


def check_rows(stack: LocalStack, prefix: str, expected_rows: int) -> None:
    """Every table of the tenant under ``prefix`` has one manifest per run with the source's rows."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    os.environ.update(stack.airflow_env())  # this process's hook reaches the local stack's GCS
    gcs = GCSHook(gcp_conn_id=DEFAULT_GCP_CONN_ID)
    manifests = [n for n in gcs.list(BUCKET, prefix=f"{prefix}/") if n.endswith(MANIFEST_NAME)]
    rows = {json.loads(gcs.download(BUCKET, n))["rows"] for n in manifests}
    if not manifests or rows != {expected_rows}:
        raise SystemExit(f"{prefix}: manifests {len(manifests)}, rows per table {sorted(rows)}")


def speedups(services: AirflowServices, stack: LocalStack, args: argparse.Namespace) -> list[str]:
    """Part 1: each shape, one task per table against grouped, ``--repeat`` rounds."""
    lines = ["", "| Tenant | One task per table | Grouped | Speed-up | Export tasks (before → after) |"]
    lines.append("|---|---|---|---|---|")
    rows_of = {"small": args.small_rows, "large": args.large_rows}
    for shape, tables in shapes(args).items():
        ids = {grouped: f"{shape}_{'grouped' if grouped else 'tasks'}" for grouped in (False, True)}
        add_tenants(services, {ids[g]: tenant(tables, f"bench/{ids[g]}", grouped=g) for g in ids})
        for tenant_id in ids.values():
            services.wait_for_dag(sync_dag_id(tenant_id))
        times: dict[bool, list[float]] = {False: [], True: []}
        tasks: dict[bool, int] = {}
        for round_ in range(args.repeat):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for grouped in order:
                seconds, (run,) = run_all(services, [ids[grouped]])
                times[grouped].append(seconds)
                tasks[grouped] = export_tasks(services, sync_dag_id(ids[grouped]), run["dag_run_id"])
                print(f"  {ids[grouped]} round {round_ + 1}: {seconds:.1f} s, {tasks[grouped]} export tasks")
        for grouped in ids:
            check_rows(stack, f"bench/{ids[grouped]}", rows_of[shape])
        before, after = statistics.median(times[False]), statistics.median(times[True])
        lines.append(
            f"| {len(tables)} x {rows_of[shape]:,} rows | {before:.1f} s | {after:.1f} s | "
            f"{before / after:.2f}x | {tasks[False]} → {tasks[True]} |"
        )
    return lines


def throughput(services: AirflowServices, stack: LocalStack, args: argparse.Namespace, label: str) -> str:
    """Part 2: ``--tenants-at-once`` grouped small tenants at once; table syncs per hour."""
    tables = shapes(args)["small"]
    slug = "celery" if label.startswith("Celery") else "local"
    ids = [f"{slug}_busy_{n}" for n in range(args.tenants_at_once)]
    add_tenants(services, {t: tenant(tables, f"bench/{t}", grouped=True) for t in ids})
    for tenant_id in ids:
        services.wait_for_dag(sync_dag_id(tenant_id))
    seconds, _ = run_all(services, ids)
    for tenant_id in ids:
        check_rows(stack, f"bench/{tenant_id}", args.small_rows)
    synced = len(ids) * len(tables)
    return (
        f"| {label} | {len(ids)} tenants x {len(tables)} tables at once | {seconds:.1f} s | "
        f"{synced / seconds * 3600:,.0f} table syncs/hour |"
    )


def add_tenants(services: AirflowServices, tenants: dict[str, Any]) -> None:
    current = {}
    if services.api.exists(f"variables/{VARIABLE}"):
        current = json.loads(services.api.get(f"variables/{VARIABLE}")["value"])
    services.set_variable(VARIABLE, {**current, **tenants})


def with_services(make: Callable[[], AirflowServices], body: Callable[[AirflowServices], Any]) -> Any:
    with make() as services:
        services.create_pool(redshift_pool(DEFAULT_REDSHIFT_CONN_ID), POOL_SLOTS, "rs2gcs bench")
        return body(services)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-tables", type=int, default=100)
    parser.add_argument("--small-rows", type=int, default=1_000)
    parser.add_argument("--large-tables", type=int, default=10)
    parser.add_argument("--large-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of part 1 (the medians are printed)")
    parser.add_argument("--tenants-at-once", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=8, help="LocalExecutor task slots")
    parser.add_argument("--no-celery", action="store_true", help="skip the Celery throughput run")
    args = parser.parse_args(argv)
    if not args.no_celery and redis_server_binary() is None:
        parser.error("redis-server is missing (make test installs it); or pass --no-celery")

    print(f"scale bench {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; pool of {POOL_SLOTS} slots")
    with LocalStack() as stack:
        small, large = (args.small_tables, args.small_rows), (args.large_tables, args.large_rows)
        stack.postgres.psql(source_sql(stack.postgres.user, small, large), database=stack.postgres.database)
        stack.gcs.create_bucket(BUCKET)

        def local() -> AirflowServices:
            return AirflowServices(stack, parallelism=args.parallelism)

        def local_part(services: AirflowServices) -> tuple[list[str], str]:
            return speedups(services, stack, args), throughput(services, stack, args, "LocalExecutor")

        table, local_rate = with_services(local, local_part)
        rates = [local_rate]
        if not args.no_celery:
            with LocalRedis() as redis:

                def celery() -> AirflowServices:
                    return CeleryServices(stack, redis)

                rates.append(with_services(celery, lambda s: throughput(s, stack, args, "Celery x2")))
    print("\n".join(table))
    print("\n| Executor | Load | Wall time | Sustained |\n|---|---|---|---|")
    print("\n".join(rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
