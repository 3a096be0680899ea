"""Local stack for the demo and the integration tests: real PostgreSQL, a Redshift handshake shim and
fake-gcs-server, started as child processes that can never outlive the Python process that owns them.

Entry point: :class:`airflow_rs2gcs.devstack.stack.LocalStack`.
"""
