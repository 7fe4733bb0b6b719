"""The seed's enums, with the spelling tolerance OpsRamp's own clients need.

OpsRamp clients send ``Starts with`` as well as ``STARTS_WITH``, ``Resource`` as well as
``RESOURCE`` and ``REST API`` as well as ``REST_API``. Each enum parses any of these by
folding case and dropping spaces, underscores and hyphens; the canonical value (the one
echoed by the API) is the seed's own spelling.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BeforeValidator


def fold(text: str) -> str:
    """Fold an enum spelling to its comparison key: upper case, no spaces, ``_`` or ``-``."""
    return "".join(ch for ch in text.upper() if ch not in " _-\t")


class TolerantEnum(StrEnum):
    """A string enum that parses case-, space- and underscore-insensitively."""

    @classmethod
    def aliases(cls) -> dict[str, str]:
        """Extra folded spellings mapped to a member's value."""
        return {}

    @classmethod
    def parse(cls, raw: object) -> Self:
        """Return the member that ``raw`` spells, or raise ``ValueError`` listing the choices."""
        if isinstance(raw, cls):
            return raw
        if not isinstance(raw, str):
            raise ValueError(f"must be a string, one of: {', '.join(m.value for m in cls)}")
        key = fold(raw)
        for member in cls:
            if fold(member.value) == key or fold(member.name) == key:
                return member
        alias = cls.aliases().get(key)
        if alias is not None:
            return cls(alias)
        raise ValueError(
            f"unknown value {raw!r}; expected one of: {', '.join(m.value for m in cls)}"
        )


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


class MatchType(TolerantEnum):
    """Whether ANY or ALL filter rules must match."""

    ANY = "ANY"
    ALL = "ALL"


class Operator(TolerantEnum):
    """Filter-rule operators, spelled as the seed spells them."""

    CONTAINS = "Contains"
    NOT_CONTAINS = "Not Contains"
    EQUALS = "Equals"
    NOT_EQUALS = "Not Equals"
    STARTS_WITH = "Starts with"
    ENDS_WITH = "Ends with"
    REGEX = "Regex"

    @classmethod
    def aliases(cls) -> dict[str, str]:
        return {
            "DOESNOTCONTAIN": "Not Contains",
            "NOTEQUAL": "Not Equals",
            "EQUAL": "Equals",
            "STARTSWITH": "Starts with",
            "ENDSWITH": "Ends with",
            "MATCHES": "Regex",
            "REGEXP": "Regex",
        }


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


class HttpMethod(TolerantEnum):
    """``thirdPartyEventType``: the HTTP method of the outbound request."""

    POST = "POST"
    PUT = "PUT"
    GET = "GET"
    DELETE = "DELETE"
    PATCH = "PATCH"


EntityField = Annotated[Entity, _tolerant(Entity)]
EventTypeField = Annotated[EventType, _tolerant(EventType)]
MatchTypeField = Annotated[MatchType, _tolerant(MatchType)]
OperatorField = Annotated[Operator, _tolerant(Operator)]
NotifierTypeField = Annotated[NotifierType, _tolerant(NotifierType)]
AuthTypeField = Annotated[AuthType, _tolerant(AuthType)]
GrantTypeField = Annotated[GrantType, _tolerant(GrantType)]
HttpMethodField = Annotated[HttpMethod, _tolerant(HttpMethod)]
