from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from notifiers.signing import InvalidSignature, secret_bytes, sign, signature_headers, verify

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def test_signature_matches_the_standard_webhooks_construction() -> None:
    expected = base64.b64encode(
        hmac.new(KEY, b'msg_1.1700000000.{"a":1}', hashlib.sha256).digest()
    ).decode()
    assert sign(SECRET, "msg_1", 1700000000, '{"a":1}') == f"v1,{expected}"


def test_secret_forms() -> None:
    assert secret_bytes(SECRET) == KEY
    assert secret_bytes("plain-secret") == b"plain-secret"
    unpadded = "whsec_" + base64.b64encode(b"abcd").decode().rstrip("=")
    assert secret_bytes(unpadded) == b"abcd"
    with pytest.raises(ValueError, match="base64"):
        secret_bytes("whsec_!!!")


def test_round_trip_and_tampering() -> None:
    headers = signature_headers(SECRET, "dlv-1", b"payload", timestamp=1700000000)
    assert headers["webhook-id"] == "dlv-1"
    assert headers["webhook-timestamp"] == "1700000000"
    verify(SECRET, headers, b"payload", now=1700000010)
    with pytest.raises(InvalidSignature, match="no matching"):
        verify(SECRET, headers, b"payloaD", now=1700000010)
    with pytest.raises(InvalidSignature, match="no matching"):
        verify("whsec_" + base64.b64encode(b"other").decode(), headers, b"payload", now=1700000010)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(SECRET, headers, b"payload", now=1700000000 + 301)
    with pytest.raises(InvalidSignature, match="missing header"):
        verify(SECRET, {"webhook-id": "x"}, b"payload")


def test_verify_accepts_any_of_several_signatures() -> None:
    headers = signature_headers(SECRET, "dlv-1", "body", timestamp=1700000000)
    headers["webhook-signature"] = "v1,bm90LWl0 " + headers["webhook-signature"]
    verify(SECRET, {k.upper(): v for k, v in headers.items()}, "body", now=1700000000)
