"""Local stack for the demo and the integration tests: real PostgreSQL, a Redshift handshake shim and
fake-gcs-server, started as child processes that can never outlive the Python process that owns them.

A package of its own (``dev/``, distribution ``rs2gcs-devstack``), never part of the provider's wheel:
the provider's ``dev`` and ``test`` extras install it from the checkout.

Entry point: :class:`rs2gcs_devstack.stack.LocalStack`.
"""
