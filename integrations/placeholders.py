"""The placeholder catalogue: what a payload template can read about each entity.

One catalogue drives ``GET …/integrations/events/placeHolders/{entityType}``, the reference
in ``docs/placeholders.md`` (:func:`markdown`; a test keeps the file equal to it) and what
the API says about a template. The names are OpsRamp's, so templates written for OpsRamp
read the same fields here. Fields not in the catalogue stay allowed: entities carry custom
fields (``$incident.someCustomField``), and a field with no value renders empty, with a
warning in the activity log.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.enums import Entity
from rules.functions import USAGE


@dataclass(frozen=True)
class Placeholder:
    """One field a template can read: ``$incident.priority.name``."""

    name: str
    value: str
    description: str


#: Fields every ticket-like entity (incident, service request, change, problem, task) has.
_TICKET = (
    ("id", "its id, as the producer sends it"),
    ("uniqueId", "its unique id (OpsRamp's `uniqueId`)"),
    ("subject", "the subject line"),
    ("description", "the full description"),
    ("status.name", "its status (New, Open, Resolved...)"),
    ("priority.name", "its priority (P1...P5, or the producer's names)"),
    ("assignedTo.fullName", "the full name of the person it is assigned to"),
    ("assignedTo.loginName", "the login name of the person it is assigned to"),
    ("assigneeGroup.name", "the group it is assigned to"),
    ("requester.fullName", "who raised it"),
    ("client.name", "the client (tenant) it belongs to"),
    ("client.uniqueId", "the client's unique id"),
    ("category", "its category"),
    ("subCategory", "its sub-category"),
    ("createdDate", "when it was created"),
    ("updatedDate", "when it last changed"),
    ("resolutionTime", "when it was resolved, if it was"),
)

_OWN: dict[Entity, tuple[tuple[str, str], ...]] = {
    Entity.INCIDENT: (
        ("impact", "the incident's description, as OpsRamp's templates name it"),
        ("urgency.name", "its urgency"),
        ("resources", "the resources it is about"),
    ),
    Entity.SERVICEREQUEST: (("serviceCategory.name", "the catalogue item requested"),),
    Entity.CHANGE: (
        ("changeType", "standard, normal or emergency"),
        ("risk.name", "its risk"),
        ("plannedStartDate", "when the change is planned to start"),
        ("plannedEndDate", "when the change is planned to end"),
    ),
    Entity.PROBLEM: (
        ("rootCause", "the root cause, once known"),
        ("workaround", "the workaround, if any"),
    ),
    Entity.TASK: (
        ("parent.id", "the ticket it belongs to"),
        ("dueDate", "when it is due"),
    ),
}

_RESOURCE = (
    ("id", "its id"),
    ("uniqueId", "its unique id"),
    ("name", "its name"),
    ("hostName", "its host name"),
    ("ipAddress", "its IP address"),
    ("resourceType", "server, network device, cloud instance..."),
    ("os", "its operating system"),
    ("state", "its state (active, inactive...)"),
    ("client.name", "the client it belongs to"),
    ("client.uniqueId", "the client's unique id"),
    ("createdDate", "when it was discovered"),
    ("updatedDate", "when it last changed"),
)

_ALERT = (
    ("id", "its id"),
    ("uniqueId", "its unique id"),
    ("subject", "the alert's subject"),
    ("description", "the alert's full text"),
    ("serviceName", "the service (metric) that raised it"),
    ("currentState", "CRITICAL, WARNING, OK..."),
    ("previousState", "its state before this change"),
    ("resourceId", "the id of the resource it is about"),
    ("resourceName", "the name of the resource it is about"),
    ("device.hostName", "the host name of the resource it is about"),
    ("device.ipAddress", "the IP address of the resource it is about"),
    ("problemArea", "the problem area (availability, performance...)"),
    ("alertType", "monitoring, event, synthetic..."),
    ("repeatCount", "how many times it repeated"),
    ("client.name", "the client it belongs to"),
    ("client.uniqueId", "the client's unique id"),
    ("createdDate", "when it was first raised"),
    ("updatedDate", "when it last changed"),
)


#: Names every template can read besides its entity, with what they hold.
BUILTINS: dict[str, str] = {
    "installedAppId": "the id of the event's installed integration (INTG-...)",
    "entity": "the entity type of the change (INCIDENT, ALERT...)",
}
#: The function roots (:mod:`rules.functions`).
FUNCTION_ROOTS = ("utils", "esc")


def builtin_values(installed_id: str, entity: Entity) -> dict[str, str]:
    """The values of :data:`BUILTINS` for one delivery."""
    return {"installedAppId": installed_id, "entity": entity.value}


def _fields(entity: Entity) -> tuple[tuple[str, str], ...]:
    if entity is Entity.RESOURCE:
        return _RESOURCE
    if entity is Entity.ALERT:
        return _ALERT
    return _TICKET + _OWN.get(entity, ())


def placeholders(entity: Entity) -> list[Placeholder]:
    """The catalogue of ``entity``, in the order of the reference: its fields, the names
    every template can read, then the functions."""
    found = [
        Placeholder(name, f"${entity.token}.{name}", description)
        for name, description in _fields(entity)
    ]
    found += [Placeholder(name, f"${name}", what) for name, what in BUILTINS.items()]
    found += [
        Placeholder(f"{root}.{name}", example.replace("{entity}", entity.token), what)
        for (root, name), (example, what) in USAGE.items()
    ]
    return found


def markdown() -> str:
    """The reference page, ``docs/placeholders.md``, made from the catalogue."""
    lines = [
        "# Placeholders",
        "",
        "What a payload template can read about each entity, as",
        "`GET …/integrations/events/placeHolders/{entityType}` lists it. Generated from",
        "`integrations/placeholders.py` (a test keeps this page equal to it). Fields not listed",
        "stay allowed: entities carry custom fields, and a field with no value renders empty",
        "with a warning in the activity log. Values captured from earlier responses",
        "(`responseHeaders`) are read by their own name, `$extTicketId`.",
        "",
        "## Every entity",
        "",
        "| placeholder | what |",
        "| --- | --- |",
    ]
    lines += [f"| `${name}` | {what} |" for name, what in BUILTINS.items()]
    lines += ["", "## Functions", "", "| call | what |", "| --- | --- |"]
    lines += [
        f"| `{example.replace('{entity}', 'incident')}` | {what} |"
        for example, what in USAGE.values()
    ]
    lines += ["", "Their exact meaning is in `rules/functions.py`."]
    for entity in Entity:
        lines += ["", f"## {entity.value}", "", "| placeholder | what |", "| --- | --- |"]
        lines += [f"| `${entity.token}.{name}` | {what} |" for name, what in _fields(entity)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m integrations.placeholders > docs/placeholders.md
    print(markdown(), end="")
