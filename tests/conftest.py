"""For every test, unit and integration: a throwaway AIRFLOW_HOME for in-process Airflow.

The local stack's fixtures are in tests/integration/conftest.py.
"""

from __future__ import annotations

import os
import tempfile

# In-process Airflow (hooks, DagBag) must never touch ~/airflow: give this session its own home
# before anything imports airflow. This conftest is loaded before any test module below it.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="rs2gcs-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
