"""The placeholder catalogue: the endpoint, the reference page and OpsRamp's names."""

from __future__ import annotations

from pathlib import Path

import httpx

from integrations.enums import Entity
from integrations.placeholders import markdown, placeholders
from integrations.store import Store
from tests.api.conftest import installed_for

ROOT = Path(__file__).resolve().parents[2]


def test_every_entity_lists_opsramps_placeholders(api: httpx.Client, store: Store) -> None:
    auth, _ = installed_for(api, store)
    base = "/api/v2/tenants/client_9/integrations/events/placeHolders"
    r = api.get(f"{base}/INCIDENT", headers=auth)
    assert r.status_code == 200, r.text
    incident = {p["name"]: p for p in r.json()["results"]}
    for name in (
        "subject",
        "impact",
        "description",
        "priority.name",
        "status.name",
        "assignedTo.fullName",
        "assigneeGroup.name",
        "client.name",
        "client.uniqueId",
        "uniqueId",
        "id",
        "createdDate",
        "updatedDate",
    ):
        assert incident[name]["value"] == f"$incident.{name}" and incident[name]["description"]
    alert = api.get(f"{base}/alert", headers=auth).json()  # any spelling OpsRamp accepts
    names = {p["name"] for p in alert["results"]}
    assert {"serviceName", "resourceId", "subject", "currentState", "device.hostName"} <= names
    assert alert["entityType"] == "ALERT" and alert["totalResults"] == len(alert["results"])
    for entity in Entity:
        r = api.get(f"{base}/{entity.value}", headers=auth)
        assert r.status_code == 200 and r.json()["results"], entity
    # The names every template can read, and the functions, with how to call them.
    assert incident["installedAppId"]["value"] == "$installedAppId"
    assert incident["utils.extEntityId"]["value"] == (
        "$utils.extEntityId($incident.id, $installedAppId, $entity)"
    )
    assert "esc.java" in incident
    bad = api.get(f"{base}/TICKET", headers=auth)
    assert bad.status_code == 400 and "entityType" in bad.text
    assert api.get(f"{base}/INCIDENT").status_code == 401


def test_the_reference_page_is_the_catalogue() -> None:
    page = (ROOT / "docs" / "placeholders.md").read_text()
    assert page == markdown(), (
        "docs/placeholders.md is stale: python -m integrations.placeholders > docs/placeholders.md"
    )
    for entity in Entity:
        fields = [p for p in placeholders(entity) if p.value.startswith(f"${entity.token}.")]
        assert fields and all(p.value in page for p in fields)
