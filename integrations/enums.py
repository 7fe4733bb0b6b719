"""The seed's enums, with the spelling tolerance OpsRamp's own clients need.

OpsRamp clients send ``Starts with`` as well as ``STARTS_WITH``, ``Resource`` as well as
``RESOURCE`` and ``REST API`` as well as ``REST_API``. Each enum parses any of these by
folding case and dropping spaces, underscores and hyphens; the canonical value (the one
echoed by the API) is the seed's own spelling.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

# The rule engine owns the tolerant parsing and the spellings of its own two enums; they are
# re-exported here so that Herald's models and its rules share one definition.
from rules.names import MatchType, Operator, TolerantEnum, fold

__all__ = [
    "AuthType",
    "Entity",
    "EventType",
    "GrantType",
    "HttpMethod",
    "MatchType",
    "NotifierType",
    "Operator",
    "Ordering",
    "TolerantEnum",
    "fold",
]


def _tolerant(enum: type[TolerantEnum]) -> BeforeValidator:
    def validate(raw: Any) -> Any:
        return enum.parse(raw)

    return BeforeValidator(validate)


class Entity(TolerantEnum):
    """Entities whose changes can trigger an integration event."""

    INCIDENT = "INCIDENT"
    SERVICEREQUEST = "SERVICEREQUEST"
    CHANGE = "CHANGE"
    PROBLEM = "PROBLEM"
    TASK = "TASK"
    RESOURCE = "RESOURCE"
    ALERT = "ALERT"

    @classmethod
    def aliases(cls) -> dict[str, str]:
        return {"SERVICEREQUESTS": "SERVICEREQUEST", "CHANGEREQUEST": "CHANGE"}

    @property
    def token(self) -> str:
        """The placeholder prefix for this entity: ``incident`` in ``$incident.subject``."""
        return self.value.lower()


class EventType(TolerantEnum):
    """The action performed on the entity."""

    NONE = "NONE"
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class NotifierType(TolerantEnum):
    """How the rendered payload is sent."""

    REST_API = "REST_API"
    SOAP_API = "SOAP_API"

    @classmethod
    def aliases(cls) -> dict[str, str]:
        return {"REST": "REST_API", "SOAP": "SOAP_API"}


class AuthType(TolerantEnum):
    """Authentication used against the third-party endpoint."""

    NONE = "NONE"
    BASIC = "BASIC"
    OAUTH2 = "OAUTH2"
    JWT = "JWT"


class GrantType(TolerantEnum):
    """OAuth2 grant used to obtain an access token."""

    CLIENT_CREDENTIALS = "CLIENT_CREDENTIALS"
    PASSWORD = "PASSWORD"
    REFRESH_TOKEN = "REFRESH_TOKEN"

    @classmethod
    def aliases(cls) -> dict[str, str]:
        # OpsRamp's integrations write the resource-owner grant PASSWORD_CREDENTIALS.
        return {"PASSWORDCREDENTIALS": "PASSWORD"}  # folded, as every alias key


class HttpMethod(TolerantEnum):
    """``thirdPartyEventType``: the HTTP method of the outbound request."""

    POST = "POST"
    PUT = "PUT"
    GET = "GET"
    DELETE = "DELETE"
    PATCH = "PATCH"


class Ordering(TolerantEnum):
    """Whether an event's deliveries wait for earlier ones of the same ticket.

    ``ENTITY`` (the default): deliveries that share (tenant, installed integration, entity,
    entity id) are sent in the order of their changes, so an UPDATE never overtakes its
    CREATE. ``NONE``: sent at once, for endpoints that take changes in any order.
    """

    ENTITY = "ENTITY"
    NONE = "NONE"


EntityField = Annotated[Entity, _tolerant(Entity)]
EventTypeField = Annotated[EventType, _tolerant(EventType)]
MatchTypeField = Annotated[MatchType, _tolerant(MatchType)]
OperatorField = Annotated[Operator, _tolerant(Operator)]
NotifierTypeField = Annotated[NotifierType, _tolerant(NotifierType)]
AuthTypeField = Annotated[AuthType, _tolerant(AuthType)]
GrantTypeField = Annotated[GrantType, _tolerant(GrantType)]
HttpMethodField = Annotated[HttpMethod, _tolerant(HttpMethod)]
OrderingField = Annotated[Ordering, _tolerant(Ordering)]
