"""The JSON Schema of entity-change messages, generated from :class:`EntityChange`.

``python -m integrations.schema`` rewrites ``entity-change.schema.json``; a test checks that the
committed file matches the model, so the published contract never drifts from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from integrations.models import EntityChange

SCHEMA_PATH = Path(__file__).with_name("entity-change.schema.json")


def entity_change_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of an entity-change message."""
    schema = EntityChange.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/herald/herald/schema/entity-change.schema.json"
    schema["title"] = "Herald entity-change message"
    schema["description"] = (
        "One change of an OpsRamp-style entity, published to the Redis stream "
        "`herald:changes` as the field `message` of an XADD entry. `id` must be unique per "
        "tenant: a repeated id within the dedupe window is dropped as a producer duplicate."
    )
    props = schema["properties"]
    props["id"]["description"] = "Unique id of this change (the producer's event id)."
    props["tenantId"]["description"] = "The tenant (OpsRamp clientId) whose events apply."
    props["entity"]["description"] = "Entity type; spelling is tolerated (Resource = RESOURCE)."
    props["occurredAt"]["description"] = "When the change happened (RFC 3339)."
    props["data"]["description"] = "The entity's fields, e.g. subject, description, priority."
    props["previous"]["description"] = "For UPDATE: the fields before the change (optional)."
    return schema


def main() -> None:
    """Write the schema file."""
    SCHEMA_PATH.write_text(json.dumps(entity_change_schema(), indent=2) + "\n")


if __name__ == "__main__":
    main()
