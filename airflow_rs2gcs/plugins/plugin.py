"""The Airflow plugin: the widget's FastAPI app at ``/rs2gcs`` and its entry in Airflow's navigation.

Registered through the ``airflow.plugins`` entry point of this package (pyproject.toml), so installing
the provider is enough for ``airflow plugins`` to list it. The navigation entry's ``href`` is relative
(no leading slash): Airflow resolves it against its own base URL, so sub-paths and proxies work.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_rs2gcs.plugins.app import app

NAME = "Redshift → GCS"


class Rs2gcsPlugin(AirflowPlugin):
    """The Redshift → GCS widget page inside Airflow (``/rs2gcs/``), with its JSON API."""

    name = "rs2gcs"
    fastapi_apps = [{"app": app, "url_prefix": "/rs2gcs", "name": NAME}]
    external_views = [
        {
            "name": NAME,
            "href": "rs2gcs/",
            "url_route": "rs2gcs",
            "destination": "nav",
        }
    ]
