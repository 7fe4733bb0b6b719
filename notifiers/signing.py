"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Each request carries ``webhook-id`` (the delivery id, stable across retries so receivers can
deduplicate), ``webhook-timestamp`` (unix seconds) and ``webhook-signature``:
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``. A secret ``whsec_<base64>`` is
base64-decoded after the prefix; any other secret is used as its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300.0


class InvalidSignature(ValueError):
    """A webhook whose signature, timestamp or headers do not verify."""


def secret_bytes(secret: str) -> bytes:
    """The HMAC key a configured secret stands for."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("signingSecret after 'whsec_' is not valid base64") from None
    return secret.encode("utf-8")


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value ``v1,<base64>`` for this id, timestamp and body."""
    signed = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    secret: str, msg_id: str, body: bytes | str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (timestamp: now by default)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a received webhook as a receiver would; raise :class:`InvalidSignature` if bad.

    The signature header may list several space-separated signatures (during secret
    rotation); one valid ``v1`` signature suffices.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        ts_text = lowered["webhook-timestamp"]
        received = lowered["webhook-signature"]
    except KeyError as exc:
        raise InvalidSignature(f"missing header {exc.args[0]}") from None
    try:
        ts = int(ts_text)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise InvalidSignature("webhook-timestamp is outside the tolerance window")
    expected = sign(secret, msg_id, ts, body)
    for candidate in received.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate, expected):
            return
    raise InvalidSignature("no matching v1 signature")
