"""The shared domain: enum tolerance, the models, the published schema, sealed secrets, store."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from integrations.config import Settings
from integrations.crypto import SecretBox
from integrations.enums import AuthType, Entity, Operator
from integrations.errors import HeraldError, PermanentError, RetryableError
from integrations.models import EntityChange, IntegrationEventIn, decode_payload
from integrations.schema import SCHEMA_PATH, entity_change_schema
from integrations.store import Store, delivery_id_for
from tests.support.seed import sample_request


@pytest.mark.parametrize(
    ("enum", "raw", "expected"),
    [
        (Operator, "Starts with", Operator.STARTS_WITH),
        (Operator, "STARTS_WITH", Operator.STARTS_WITH),
        (Operator, "starts-with", Operator.STARTS_WITH),
        (Operator, "not contains", Operator.NOT_CONTAINS),
        (Operator, "REGEX", Operator.REGEX),
        (Entity, "Resource", Entity.RESOURCE),
        (Entity, "serviceRequest", Entity.SERVICEREQUEST),
        (AuthType, "oauth2", AuthType.OAUTH2),
    ],
)
def test_enum_spellings(enum: type, raw: str, expected: object) -> None:
    assert enum.parse(raw) is expected  # type: ignore[attr-defined]


def test_unknown_enum_value_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="expected one of: Contains, Not Contains"):
        Operator.parse("Like")


def test_the_published_schema_matches_the_model() -> None:
    """The committed JSON Schema is what the model generates: the contract cannot drift."""
    assert json.loads(SCHEMA_PATH.read_text()) == entity_change_schema()


def test_entity_change_requires_its_fields() -> None:
    with pytest.raises(ValidationError) as err:
        EntityChange.model_validate({"id": "1", "tenantId": "t", "entity": "INCIDENT"})
    missing = {e["loc"][0] for e in err.value.errors()}
    assert missing == {"eventType", "occurredAt", "data"}


@pytest.mark.parametrize("i", range(3))
def test_seed_samples_validate(i: int) -> None:
    event = IntegrationEventIn.model_validate(sample_request(i))
    assert event.template.startswith("{")


@given(st.text())
def test_payload_base64_round_trip(text: str) -> None:
    import base64

    assert decode_payload(base64.b64encode(text.encode()).decode()) == text


def test_secret_box_round_trip_and_wrong_key() -> None:
    box = SecretBox(Fernet.generate_key().decode())
    # '@', ' ' and '!' are outside the base64url alphabet of a Fernet token, so
    # this substring check cannot match the ciphertext by chance (a short
    # alphanumeric secret such as "pw" did, once in a CI run).
    secret = "p@ss word!"
    sealed = box.seal({"password": secret, "apiSecret": None})
    assert sealed is not None and secret not in sealed
    assert box.open(sealed) == {"password": secret}
    other = SecretBox(Fernet.generate_key().decode())
    with pytest.raises(PermanentError, match="HERALD_SECRET_KEY differs"):
        other.open(sealed)
    with pytest.raises(ValueError, match="not set"):
        SecretBox(None)


def test_error_tree_splits_by_what_the_caller_does_next() -> None:
    assert issubclass(RetryableError, HeraldError) and issubclass(PermanentError, HeraldError)
    assert RetryableError("x", retry_after=3).retry_after == 3


def test_delivery_ids_are_stable_and_distinct() -> None:
    a = delivery_id_for("t", "m", "e1")
    assert a == delivery_id_for("t", "m", "e1")
    assert len({a, delivery_id_for("t", "m", "e2"), delivery_id_for("u", "m", "e1")}) == 3


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {"HERALD_ALLOWED_NETWORKS": "127.0.0.0/8, ::1/128", "HERALD_RETRY_SCHEDULE": "1,2"}
    )
    assert [str(n) for n in s.allowed_networks] == ["127.0.0.0/8", "::1/128"]
    assert s.retry_schedule == (1.0, 2.0)
    with pytest.raises(ValueError, match="HERALD_ALLOWED_NETWORKS"):
        Settings.from_env({"HERALD_ALLOWED_NETWORKS": "nope"})


def test_store_on_postgresql_when_configured(postgres_url: str) -> None:
    """The store runs on PostgreSQL too (the machine's, at 127.0.0.1:5432, database test)."""
    import uuid

    url = postgres_url
    store = Store(url, Fernet.generate_key().decode())
    try:
        store.migrate()
        tenant = f"pg-{uuid.uuid4().hex[:8]}"
        secret = store.create_tenant(tenant)
        assert store.verify_tenant(tenant, secret)
        inst = store.install(tenant, "CUSTOM", "pg")
        event = store.create_event(
            tenant, inst.id, IntegrationEventIn.model_validate(sample_request(1))
        )
        assert event.spec.filterCriteria is not None
        assert [r.id for r in event.spec.filterCriteria.rules] == sorted(
            r.id for r in event.spec.filterCriteria.rules if r.id is not None
        )
        assert store.candidate_keys(tenant, Entity.INCIDENT, event.spec.eventType)[0][0] == event.id
        store.delete_event(tenant, event.id)
    finally:
        store.close()
