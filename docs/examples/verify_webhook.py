"""Check a webhook delivery's signature on the receiving side (X-Rs2gcs-Signature header)."""

import hashlib
import hmac


def is_signed_by(secret: str, body: bytes, signature_header: str) -> bool:
    """True when the header is ``sha256=<hex HMAC-SHA256 of the raw body>`` with this secret."""
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature_header, expected)
