# Airflow 3.3 with this provider installed; used by every Airflow service in docker-compose.yaml.
FROM apache/airflow:3.3.2-python3.11 AS provider
COPY --chown=airflow:root pyproject.toml README.md constraints.txt /opt/rs2gcs/
COPY --chown=airflow:root airflow_rs2gcs /opt/rs2gcs/airflow_rs2gcs
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -c /opt/rs2gcs/constraints.txt /opt/rs2gcs
COPY --chown=airflow:root dags /opt/airflow/dags

# The local stand-ins of docker-compose.local.yaml (the Redshift handshake shim, the demo set-up): the
# provider image plus rs2gcs_devstack. --no-deps: those two need only the standard library, the
# provider and psycopg2 (in the Airflow image); the devstack's own dependencies (pgserver, the
# fake-gcs-server binary) start the embedded stack, which compose replaces with containers.
FROM provider AS devstack
COPY --chown=airflow:root dev /opt/rs2gcs/dev
RUN pip install --no-cache-dir --no-deps /opt/rs2gcs/dev
