"""Upload retries: which errors are transient, the backoff, and giving up."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions as api_exceptions

from airflow_rs2gcs.engine.uploader import (
    BACKOFF_MAX_SECONDS,
    UploadIntegrityError,
    backoff_delay,
    is_transient,
    with_retries,
)


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"HTTP {status}", response=response)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(),
        TimeoutError(),
        requests.ConnectionError("refused"),
        requests.Timeout(),
        api_exceptions.ServiceUnavailable("503"),
        api_exceptions.TooManyRequests("429"),
        api_exceptions.InternalServerError("500"),
        http_error(503),
        http_error(429),
        http_error(408),
        UploadIntegrityError("md5"),
        api_exceptions.RetryError("deadline", cause=requests.ConnectionError("refused")),
    ],
)
def test_transient_errors_are_retried(error):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        api_exceptions.NotFound("no bucket"),
        api_exceptions.Forbidden("denied"),
        http_error(400),
        ValueError("bug"),
    ],
)
def test_permanent_errors_are_not(error):
    assert not is_transient(error)


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for attempt in range(1, 10):
        delay = backoff_delay(attempt, base=1.0)
        nominal = min(BACKOFF_MAX_SECONDS, 2 ** (attempt - 1))
        assert 0.5 * nominal <= delay <= 1.5 * nominal


def test_retries_until_success():
    calls, sleeps = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise requests.ConnectionError("down")
        return "ok"

    assert with_retries(flaky, "upload", attempts=5, sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.3


def test_gives_up_after_the_last_attempt():
    sleeps: list[float] = []
    with pytest.raises(requests.ConnectionError):
        with_retries(
            lambda: (_ for _ in ()).throw(requests.ConnectionError("down")),
            "x",
            attempts=3,
            sleep=sleeps.append,
        )
    assert len(sleeps) == 2


def test_a_permanent_error_fails_at_once():
    sleeps: list[float] = []
    with pytest.raises(api_exceptions.Forbidden):
        with_retries(lambda: (_ for _ in ()).throw(api_exceptions.Forbidden("no")), "x", sleep=sleeps.append)
    assert sleeps == []
