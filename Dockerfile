# Airflow 3.3 with this provider installed; used by every Airflow service in docker-compose.yaml.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root pyproject.toml README.md constraints.txt /opt/rs2gcs/
COPY --chown=airflow:root airflow_rs2gcs /opt/rs2gcs/airflow_rs2gcs
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -c /opt/rs2gcs/constraints.txt /opt/rs2gcs
COPY --chown=airflow:root dags /opt/airflow/dags
