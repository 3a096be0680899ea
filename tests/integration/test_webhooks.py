"""Webhook delivery against a real HTTP server: signature, retries, and a bound on slow/down endpoints."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time

from pytest_httpserver import HTTPServer
from werkzeug import Response

from airflow_rs2gcs.tenants import Webhook
from airflow_rs2gcs.webhooks import SIGNATURE_HEADER, deliver

PAYLOAD = {"tenant": "acme", "table": "public.orders", "status": "success", "rows": 3}


def test_signed_delivery(httpserver: HTTPServer):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    hook = Webhook(id="wh_1", url=httpserver.url_for("/hook"), secret="s3cret")
    [outcome] = deliver([hook], "acme", [PAYLOAD])
    assert outcome.ok and outcome.attempts == 1
    request, _ = httpserver.log[0]
    body = request.get_data()
    assert json.loads(body) == PAYLOAD
    assert (
        request.headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    )
    assert request.headers["X-Rs2gcs-Tenant"] == "acme"


def test_retries_on_5xx_with_the_same_delivery_id(httpserver: HTTPServer):
    calls = []

    def flaky(request):
        calls.append(request.headers["X-Rs2gcs-Delivery"])
        return Response("busy", status=503 if len(calls) < 3 else 200)

    httpserver.expect_request("/hook").respond_with_handler(flaky)
    [outcome] = deliver([Webhook(id="wh", url=httpserver.url_for("/hook"))], "acme", [PAYLOAD])
    assert outcome.ok and outcome.attempts == 3 and len(set(calls)) == 1


def test_4xx_is_not_retried(httpserver: HTTPServer):
    httpserver.expect_request("/hook").respond_with_data("no", status=410)
    [outcome] = deliver([Webhook(id="wh", url=httpserver.url_for("/hook"))], "acme", [PAYLOAD])
    assert not outcome.ok and outcome.status == 410 and outcome.attempts == 1


def test_down_and_hanging_endpoints_are_bounded_and_never_raise(caplog):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down_port = closed.getsockname()[1]
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(8)  # accepts connections, never answers
    try:
        hooks = [
            Webhook(id="down", url=f"http://127.0.0.1:{down_port}/hook"),
            Webhook(id="hang", url=f"http://127.0.0.1:{hanging.getsockname()[1]}/hook"),
        ]
        started = time.monotonic()
        outcomes = deliver(hooks, "acme", [PAYLOAD, PAYLOAD], deadline_seconds=3)
        elapsed = time.monotonic() - started
    finally:
        hanging.close()
    assert elapsed < 4.5
    assert not any(o.ok for o in outcomes)
    assert "delivery failed" in caplog.text
