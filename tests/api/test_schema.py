"""The API against its own OpenAPI document (schemathesis): no answer is a 5xx, and every
answer fits the schema the document gives. Bounded: a few examples per operation."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from starlette.testclient import TestClient

from api.app import create_app
from integrations.config import Settings
from integrations.store import Store
from tests.support.seed import sample_request


@pytest.fixture
def api_schema(settings: Settings, store: Store, redis_client: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, store))


@pytest.fixture
def tenant_headers(settings: Settings, store: Store, redis_client: Any) -> dict[str, str]:
    secret = store.create_tenant("client_9")
    with TestClient(create_app(settings, store)) as client:
        r = client.post(
            "/auth/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "client_9",
                "client_secret": secret,
            },
        )
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_no_5xx_and_every_answer_fits_the_schema(
    api_schema: Any, tenant_headers: dict[str, str]
) -> None:
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20  # every route is in the document

    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            if "clientId" in (case.path_parameters or {}):
                case.path_parameters["clientId"] = "client_9"
            case.call_and_validate(headers=tenant_headers, checks=checks)

        run()


def test_the_document_carries_the_seeds_samples_and_the_real_error_shape(
    settings: Settings, store: Store, redis_client: Any
) -> None:
    with TestClient(create_app(settings, store)) as client:
        doc = client.get("/openapi.json").json()
    create = doc["paths"][
        "/api/v2/tenants/{clientId}/integrations/installed/{installedIntgId}/event"
    ]
    examples = create["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert [e["value"] for e in examples.values()] == [sample_request(i) for i in range(3)]
    responses = create["post"]["responses"]
    assert "422" not in responses and responses["400"]["content"]["application/json"]
    assert create["post"]["security"] == [{"bearer": []}]
    assert "bearer" in doc["components"]["securitySchemes"]
    assert "422" not in json.dumps(doc)
