"""A webhook's URL is checked when the tenant entry is parsed."""

from __future__ import annotations

import pytest

from airflow_rs2gcs.tenants import Webhook


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "http://"])
def test_webhook_urls_are_validated(url):
    with pytest.raises(ValueError):
        Webhook(id="wh", url=url)
