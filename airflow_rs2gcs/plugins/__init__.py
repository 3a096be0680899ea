"""The widget page inside Airflow: a plugin with a FastAPI app at ``/rs2gcs`` (docs/plugin-api.md)."""
