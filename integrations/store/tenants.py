"""Tenants and their API tokens: client secrets and tokens are kept only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, insert, literal, select
from sqlalchemy.orm import Session

from integrations.store.engine import StoreBase
from integrations.tables import ApiTokenRow, TenantRow, UTCDateTime, utcnow

_PBKDF2_ROUNDS = 60_000


def _hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, _PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${_PBKDF2_ROUNDS}${salt.hex()}${digest.hex()}"


def _verify_secret(secret: str, stored: str) -> bool:
    try:
        _, rounds, salt, digest = stored.split("$")
    except ValueError:
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), int(rounds))
    return hmac.compare_digest(candidate.hex(), digest)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TenantStore(StoreBase):
    """Tenants (OAuth2 clients) and the bearer tokens issued to them."""

    def create_tenant(self, client_id: str) -> str:
        """Create a tenant (or rotate its secret, see :meth:`rotate_tenant`) and return the
        new client secret, shown once."""
        secret = secrets.token_urlsafe(32)
        with self.session() as s:
            row = s.get(TenantRow, client_id)
            if row is None:
                s.add(TenantRow(client_id=client_id, secret_hash=_hash_secret(secret)))
            else:
                self._rotate(s, row, secret)
        return secret

    def rotate_tenant(self, client_id: str) -> str | None:
        """Give a tenant a new client secret and revoke every token issued with the old one;
        the new secret (shown once), or ``None`` if there is no such tenant."""
        secret = secrets.token_urlsafe(32)
        with self.session() as s:
            row = s.get(TenantRow, client_id)
            if row is None:
                return None
            self._rotate(s, row, secret)
        return secret

    @staticmethod
    def _rotate(s: Session, row: TenantRow, secret: str) -> None:
        # A rotation answers a leaked secret: tokens obtained with it must stop working too.
        row.secret_hash = _hash_secret(secret)
        s.execute(delete(ApiTokenRow).where(ApiTokenRow.client_id == row.client_id))

    def known_tenants(self, client_ids: Iterable[str]) -> set[str]:
        """Which of ``client_ids`` are tenants (one primary-key lookup for them all)."""
        wanted = set(client_ids)
        if not wanted:
            return set()
        with self.session() as s:
            found = s.scalars(select(TenantRow.client_id).where(TenantRow.client_id.in_(wanted)))
            return set(found)

    def verify_tenant(self, client_id: str, secret: str) -> bool:
        """Whether ``secret`` is the client secret of ``client_id``."""
        with self.session() as s:
            row = s.get(TenantRow, client_id)
            return row is not None and _verify_secret(secret, row.secret_hash)

    def login(self, client_id: str, secret: str, ttl: int) -> str | None:
        """A bearer token for ``client_id`` if ``secret`` is its client secret, else ``None``.

        The token is written only if the secret checked is still the tenant's when it is
        written: a rotation that lands between the check and the write (the check takes
        about 25 ms of hashing) leaves no token behind. Its ``INSERT … SELECT`` reads the
        tenant row under a share lock on PostgreSQL, so it either waits for the rotation and
        finds the new hash, or the rotation waits for it and then revokes the new token.
        """
        with self.session() as s:
            row = s.get(TenantRow, client_id)
            checked = row.secret_hash if row is not None else None
        if checked is None or not _verify_secret(secret, checked):
            return None
        token = secrets.token_urlsafe(32)
        now = utcnow()
        tenant = (
            select(
                literal(_token_hash(token)),
                TenantRow.client_id,
                literal(now + timedelta(seconds=ttl), UTCDateTime()),
            )
            .where(TenantRow.client_id == client_id, TenantRow.secret_hash == checked)
            .with_for_update(read=True)
        )
        with self.session() as s:
            s.execute(delete(ApiTokenRow).where(ApiTokenRow.expires_at < now))
            written = s.scalar(
                insert(ApiTokenRow)
                .from_select(["token_hash", "client_id", "expires_at"], tenant)
                .returning(ApiTokenRow.token_hash)
            )
            return token if written is not None else None

    def tenant_for_token(self, token: str) -> str | None:
        """The tenant a live bearer token belongs to, or ``None``."""
        with self.session() as s:
            row = s.get(ApiTokenRow, _token_hash(token))
            if row is None or row.expires_at < utcnow():
                return None
            return row.client_id
