"""Encryption of stored secrets (notifier passwords, API secrets, signing secrets).

Secrets are sealed with Fernet (AES-128-CBC + HMAC-SHA256) under ``HERALD_SECRET_KEY``, so a
copy of the database alone reveals none of them.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from integrations.errors import PermanentError


class SecretBox:
    """Seals and opens small JSON documents of secrets."""

    def __init__(self, key: str | None) -> None:
        if not key:
            raise ValueError(
                "HERALD_SECRET_KEY is not set: generate one with `python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as exc:
            raise ValueError(f"HERALD_SECRET_KEY is not a valid Fernet key ({exc})") from None

    def seal(self, secrets: dict[str, Any]) -> str | None:
        """Encrypt ``secrets`` (``None`` when there is nothing to keep)."""
        kept = {k: v for k, v in secrets.items() if v is not None}
        if not kept:
            return None
        return self._fernet.encrypt(json.dumps(kept).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, Any]:
        """Decrypt what :meth:`seal` produced; a wrong key is a permanent error, not a crash."""
        if not sealed:
            return {}
        try:
            data: dict[str, Any] = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise PermanentError(
                "stored secrets cannot be decrypted: HERALD_SECRET_KEY differs from the key "
                "they were saved with",
                error_class="secret_key_mismatch",
            ) from None
        return data
