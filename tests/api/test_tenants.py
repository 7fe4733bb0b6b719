"""Issue 8, secret hygiene: rotating a tenant's secret is explicit and revokes its tokens
(the ``herald`` command as an operator runs it, the real app on a loopback server)."""

from __future__ import annotations

import json

import httpx

from integrations.config import Settings
from integrations.store import Store
from tests.support.processes import run_herald as herald


def token(api: httpx.Client, client_id: str, secret: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return api.post("/auth/oauth/token", data=data)


def test_rotation_is_explicit_and_revokes_the_old_tokens(
    settings: Settings, store: Store, api: httpx.Client
) -> None:
    made = herald(settings, "tenants", "create", "client_r")
    assert made.returncode == 0, made.stderr
    old_secret = json.loads(made.stdout)["client_secret"]
    access = token(api, "client_r", old_secret).json()["access_token"]
    page = "/api/v2/tenants/client_r/integrations/installed/none"
    assert api.get(page, headers={"Authorization": f"Bearer {access}"}).status_code == 404

    again = herald(settings, "tenants", "create", "client_r")
    assert again.returncode == 1
    assert "herald tenants rotate client_r" in again.stderr and not again.stdout

    rotated = herald(settings, "tenants", "rotate", "client_r")
    assert rotated.returncode == 0, rotated.stderr
    new_secret = json.loads(rotated.stdout)["client_secret"]
    assert new_secret != old_secret
    # The token issued with the old secret no longer works, nor does the old secret.
    assert api.get(page, headers={"Authorization": f"Bearer {access}"}).status_code == 401
    assert token(api, "client_r", old_secret).status_code == 401
    assert token(api, "client_r", new_secret).status_code == 200

    missing = herald(settings, "tenants", "rotate", "client_nobody")
    assert missing.returncode == 1 and "no tenant 'client_nobody'" in missing.stderr
