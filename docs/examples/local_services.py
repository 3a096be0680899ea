"""Try a tenant by hand against real Airflow services on the local stack, and look at it in the UI."""

from rs2gcs_devstack.sample_data import SCHEMA_SQL, grant_sql
from rs2gcs_devstack.services import AirflowServices
from rs2gcs_devstack.stack import DEFAULT_GCP_CONN_ID, DEFAULT_REDSHIFT_CONN_ID, LocalStack

from airflow_rs2gcs.factory import redshift_pool

TENANTS = {
    "acme": {
        "redshift_conn_id": DEFAULT_REDSHIFT_CONN_ID,
        "gcp_conn_id": DEFAULT_GCP_CONN_ID,
        "bucket": "acme-exports",
        "syncFrequency": "manual",
        "tables": [{"name": "public.customers"}, {"name": "public.orders"}],
    }
}


def main() -> None:
    with LocalStack() as stack, AirflowServices(stack) as airflow:
        print(airflow.base_url, airflow.username, airflow.password)  # open the UI and log in
        pg = stack.postgres
        pg.psql(SCHEMA_SQL + grant_sql(pg.user), database=pg.database)  # the sample tables
        stack.gcs.create_bucket("acme-exports")
        airflow.create_pool(redshift_pool(DEFAULT_REDSHIFT_CONN_ID), 4)  # required: see operations.md
        airflow.set_variable("rs2gcs_tenants", TENANTS)  # the tenant contract
        airflow.wait_for_dag("rs2gcs_sync__acme")  # parsed by the dag-processor
        run = airflow.trigger("rs2gcs_sync__acme", {"full_refresh": True})  # as the Trigger button does
        airflow.wait_for_run("rs2gcs_sync__acme", run["dag_run_id"])  # raises with task logs on failure
        input("Enter to stop")


if __name__ == "__main__":
    main()
