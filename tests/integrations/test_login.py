"""Token issue against a rotation: a token is written only while the secret it was issued
for is still the tenant's (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from integrations.store import Store
from integrations.store import tenants as tenants_module


def test_login_issues_a_token_for_the_right_secret_only(any_store: Store) -> None:
    secret = any_store.create_tenant("client_l")
    token = any_store.login("client_l", secret, 60)
    assert token is not None and any_store.tenant_for_token(token) == "client_l"
    assert any_store.login("client_l", "wrong", 60) is None
    assert any_store.login("client_nobody", secret, 60) is None


def test_a_rotation_during_the_check_leaves_no_token(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation lands while the old secret is being hashed (the 25 ms window): the old
    secret was right when checked, but no token may outlive the rotation."""
    old = any_store.create_tenant("client_l")
    verify = tenants_module._verify_secret
    rotated: list[str] = []

    def verify_while_rotating(secret: str, stored: str) -> bool:
        result = verify(secret, stored)
        if not rotated:
            rotated.append(any_store.rotate_tenant("client_l") or "")
        return result

    monkeypatch.setattr(tenants_module, "_verify_secret", verify_while_rotating)
    assert any_store.login("client_l", old, 60) is None
    monkeypatch.setattr(tenants_module, "_verify_secret", verify)
    token = any_store.login("client_l", rotated[0], 60)
    assert token is not None and any_store.tenant_for_token(token) == "client_l"
