"""A downstream DAG that runs when a new interval of public.orders is published, and reads its manifest."""

import json

import pendulum
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.sdk import DAG, Asset, task

ORDERS = Asset("gs://acme-exports/redshift/acme/public.orders")

with DAG(
    dag_id="orders_to_bigquery",
    schedule=[ORDERS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):

    @task
    def objects_to_load(triggering_asset_events=None) -> list[str]:
        """The gs:// URIs of the data objects listed in each new manifest."""
        uris = []
        for event in triggering_asset_events[ORDERS]:
            bucket, _, name = event.extra["manifest"].removeprefix("gs://").partition("/")
            manifest = json.loads(GCSHook(gcp_conn_id="gcs_acme").download(bucket, name))
            uris += [f"gs://{bucket}/{obj['name']}" for obj in manifest["objects"]]
        return uris

    objects_to_load()
