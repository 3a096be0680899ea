"""One Redshift table into GCS every day with RedshiftToGCSOperator, in a DAG of your own."""

import pendulum
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable

from airflow_rs2gcs.transfers.redshift_to_gcs import RedshiftToGCSOperator

ORDERS = Asset("gs://acme-exports/redshift/acme/public.orders")

with DAG(
    dag_id="orders_to_gcs",
    # Real data intervals: Airflow 3's plain cron schedule gives zero-length ones (see operator.md).
    schedule=CronDataIntervalTimetable("0 1 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
):
    RedshiftToGCSOperator(
        task_id="orders",
        sql="SELECT * FROM public.orders",
        bucket="acme-exports",
        object_prefix="redshift/acme/public.orders/dt={{ ds }}",
        redshift_conn_id="redshift_acme",
        gcp_conn_id="gcs_acme",
        export_format="parquet",  # or "csv", "jsonl"
        compression="zstd",  # parquet: snappy (default), zstd, gzip, none; csv/jsonl: none, gzip
        incremental_column="updated_at",  # None: the whole result every run
        fetch_size=10_000,
        max_file_bytes=32 * 1024**2,
        max_uploads_in_flight=2,
        pool="rs2gcs_redshift__redshift_acme",
        retries=2,
        outlets=[ORDERS],
    )
