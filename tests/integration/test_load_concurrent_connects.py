"""Load: twenty ``airflow dags test rs2gcs_connect`` processes at once (``slow``, ~4-10 min on 2 cores,
not in the default run): all twenty tenants and an entry written by hand are in the Variable afterwards,
no lock Variable is left, and each run's wait for the tenants lock is printed.

Run it with ``.venv/bin/python -m pytest -m slow tests/integration/test_load_concurrent_connects.py -s``.
The same property with ten processes runs every time (test_lifecycle_concurrency.py).
"""

from __future__ import annotations

import time

import pytest
from concurrent_connects import connect_concurrently, lock_lines, lock_waits

pytestmark = [pytest.mark.timeout(1800)]


@pytest.mark.slow
@pytest.mark.integration
def test_twenty_concurrent_connects_lose_no_update(stack):
    hand_written = {
        "source": "redshift_to_gcs",
        "status": "connected",
        "redshift_conn_id": "by_hand",
        "gcp_conn_id": "by_hand",
        "bucket": "hand-bucket",
    }
    tenant_ids = [f"load{i:02d}" for i in range(20)]
    started = time.perf_counter()
    results, tenants, variables = connect_concurrently(
        stack, tenant_ids, "load-exports", {"handmade": hand_written}
    )
    print(f"\n20 concurrent rs2gcs_connect runs: {time.perf_counter() - started:.0f} s")
    for returncode, output in results:
        assert returncode == 0, output[-3000:]
        assert "Activation successful for redshift_to_gcs" in output
    assert sorted(tenants) == ["handmade", *tenant_ids]
    assert tenants["handmade"] == hand_written
    assert all(tenants[tenant_id]["status"] == "connected" for tenant_id in tenant_ids)
    assert sorted(variables) == ["rs2gcs_tenants"]  # no lock register left behind
    waits = lock_waits([output for _, output in results])
    print("\n".join(lock_lines([output for _, output in results])))
    assert len(waits) == len(tenant_ids)
    # The figure docs/reliability.md reports; how long the line takes depends on the machine's load.
    print(f"lock waits (s): max {max(waits):.2f}, mean {sum(waits) / len(waits):.2f}, all {sorted(waits)}")
