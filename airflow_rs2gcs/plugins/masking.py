"""Secrets never go back to the browser: any value under a key that names a secret becomes ``***``."""

from __future__ import annotations

from typing import Any

MASK = "***"
SECRET_WORDS = ("secret", "password", "passwd", "token", "api_key", "apikey", "private_key", "credential")
# Keys that name where a secret lives, not the secret itself (e.g. a webhook's ``secret_conn_id``).
_REFERENCE_SUFFIXES = ("_conn_id", "_id")


def is_secret_key(key: str) -> bool:
    """Whether a value under ``key`` is a secret (``secret``, ``client_secret``, ``api_token`` ...)."""
    lowered = key.lower()
    if lowered.endswith(_REFERENCE_SUFFIXES):
        return False
    return any(word in lowered for word in SECRET_WORDS)


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with every non-empty secret replaced by ``***``, at any depth."""
    if isinstance(value, dict):
        return {
            key: MASK
            if is_secret_key(str(key)) and value[key] not in (None, "")
            else mask_secrets(value[key])
            for key in value
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value
