"""Pydantic models of the OpsRamp "Create integration event" API and of entity-change messages.

Request models follow ``shared/seed/create-integration-event.txt`` field for field. They are
tolerant where OpsRamp's own clients vary (enum spelling, ``accessTokenURI``, a ``baseURI``
without a scheme, a payload template that is not valid JSON) and strict elsewhere: an unknown
field is an error, so a typo such as ``fitlerCriteria`` is reported instead of silently ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from integrations.enums import (
    AuthType,
    AuthTypeField,
    EntityField,
    EventTypeField,
    GrantTypeField,
    HttpMethod,
    HttpMethodField,
    MatchType,
    MatchTypeField,
    NotifierType,
    NotifierTypeField,
    OperatorField,
    Ordering,
    OrderingField,
)

#: Secrets a notifier may hold. They are encrypted at rest and never echoed by the API.
SECRET_FIELDS: tuple[str, ...] = (
    "password",
    "apiSecret",
    "signingSecret",
    "tokenPayload",
    "tokenHeaders",
)


def _json_text(raw: Any) -> Any:
    """A JSON object or list as its compact JSON text; anything else as it is."""
    return json.dumps(raw, separators=(",", ":")) if isinstance(raw, dict | list) else raw


#: Request headers known to carry no secret. Every other header's value is sealed at rest,
#: masked by the API and redacted in the activity log: a credential header's name cannot be
#: guessed (``Ocp-Apim-Subscription-Key`` was echoed in plain text when the test was a list
#: of words like "auth" and "token"), so the safe default is to treat an unknown one as one.
NON_SECRET_HEADERS = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "content-encoding",
        "content-language",
        "content-length",
        "content-type",
        "date",
        "expect",
        "host",
        "idempotency-key",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-unmodified-since",
        "origin",
        "pragma",
        "prefer",
        "referer",
        "soapaction",
        "te",
        "traceparent",
        "tracestate",
        "user-agent",
        "x-correlation-id",
        "x-request-id",
        # Standard Webhooks: an id, a time and a signature (derived, not the key).
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)

#: What the API shows instead of a secret value.
MASK = "***"


def is_credential_header(name: str) -> bool:
    """Whether a request header's value is kept secret: every header not known to carry no
    secret (:data:`NON_SECRET_HEADERS`)."""
    return name.strip().lower() not in NON_SECRET_HEADERS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


#: Control characters, which no header name or value may hold (a tab is allowed in a value).
#: A value ending in a newline was accepted, then leaked into the activity row and the log
#: through the HTTP library's error; CR and LF are also how headers are smuggled.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _no_control(text: str, where: str) -> str:
    found = _CONTROL.search(text)
    if found:
        code = f"U+{ord(found.group()):04X}"
        raise ValueError(f"{where} contains a control character ({code}) at {found.start()}")
    return text


class Header(_Strict):
    """A ``{key, value}`` pair: request header, or response-capture mapping."""

    key: str = Field(min_length=1, max_length=256)
    value: str = Field(max_length=8192)

    @field_validator("key")
    @classmethod
    def _key_is_text(cls, key: str) -> str:
        if "\t" in key:
            raise ValueError("the header name contains a tab")
        return _no_control(key, "the header name")

    @field_validator("value")
    @classmethod
    def _value_is_text(cls, value: str) -> str:
        return _no_control(value, "the header value")


class Rule(_Strict):
    """One filter rule: ``resourceType``, ``key``, ``operator``, ``value``."""

    resourceType: EntityField | None = None
    key: str = Field(min_length=1, max_length=256)
    operator: OperatorField
    value: str = Field(default="", max_length=4096)
    id: int | None = None


class FilterCriteria(_Strict):
    """``matchType`` (ANY/ALL) over a list of rules. No rules matches everything."""

    matchType: MatchTypeField = MatchType.ANY
    rules: list[Rule] = Field(default_factory=list, max_length=100)
    id: int | None = None
    name: str | None = Field(default=None, max_length=255)
    actions: list[Any] = Field(default_factory=list, max_length=100)


class Notifier(_Strict):
    """Where and how to send: type, base URI and authentication.

    Fields the seed marks "mandatory if authType is OAUTH2" are *not* enforced here: the seed's
    own samples omit them and must be accepted. A delivery through such a notifier fails
    permanently with a reason naming the missing field (see ``notifiers.auth``).
    """

    type: NotifierTypeField = NotifierType.REST_API
    baseURI: str | None = Field(default=None, max_length=2048)
    authType: AuthTypeField = AuthType.NONE
    grantType: GrantTypeField | None = None
    userName: str | None = Field(default=None, max_length=512)
    password: str | None = Field(default=None, max_length=4096)
    apiKey: str | None = Field(default=None, max_length=4096)
    apiSecret: str | None = Field(default=None, max_length=4096)
    accessTokenURL: str | None = Field(
        default=None,
        max_length=2048,
        validation_alias=AliasChoices("accessTokenURL", "accessTokenURI", "accessTokenUrl"),
    )
    scope: str | None = Field(default=None, max_length=1024)
    #: SOAP 1.1 ``SOAPAction`` header, for ``SOAP_API`` notifiers.
    soapAction: str | None = Field(default=None, max_length=1024)
    #: Standard Webhooks signing secret (``whsec_<base64>``); signing is off when unset.
    signingSecret: str | None = Field(default=None, max_length=1024)
    #: OpsRamp JWT auth: token endpoint, request body, path to the token in the answer, and
    #: headers to send with ``$jwtToken`` substituted.
    tokenURL: str | None = Field(default=None, max_length=2048)
    #: Text, or (as OpsRamp's clients send it) a JSON object, kept as its JSON text.
    tokenPayload: Annotated[str | None, BeforeValidator(_json_text)] = Field(
        default=None, max_length=8192
    )
    #: Headers of the token request (sealed like the payload: they may carry credentials).
    tokenHeaders: list[Header] | None = Field(default=None, max_length=50)
    #: Where the token is in the answer: a path, or OpsRamp's ``[{key, value}]``, whose first
    #: entry's ``value`` is the path and ``key`` a name ``resourceAuthHeaders`` may use
    #: besides ``$jwtToken``.
    tokensPath: str | list[Header] | None = Field(default=None)
    resourceAuthHeaders: list[Header] = Field(default_factory=list, max_length=50)

    @field_validator("tokensPath")
    @classmethod
    def _tokens_path(cls, raw: str | list[Header] | None) -> str | list[Header] | None:
        if isinstance(raw, str) and len(raw) > 256:
            raise ValueError("at most 256 characters")
        if isinstance(raw, list) and not 1 <= len(raw) <= 10:
            raise ValueError("between 1 and 10 {key, value} entries")
        return raw

    def public(self) -> dict[str, Any]:
        """The notifier as the API echoes it: never a password, secret or token."""
        shown: dict[str, Any] = {"baseURI": self.baseURI, "authType": self.authType.value}
        if self.userName is not None:
            shown["userName"] = self.userName
        return shown


#: Key names that say a value is a secret, in fields Herald keeps without knowing them.
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential|auth|cert|private", re.IGNORECASE)


def mask_secrets(value: Any) -> Any:
    """``value`` with every string under a secret-sounding key masked, at any depth (pure).

    For what OpsRamp clients send that Herald keeps unread (``inboundConfig``...): it is
    stored and echoed, so a password in it must be neither.
    """
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(v, str) and _SECRET_KEY.search(str(k)) else mask_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def field_path(loc: Sequence[int | str]) -> str:
    """``("filterCriteria", "rules", 0, "operator")`` -> ``filterCriteria.rules[0].operator``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def decode_payload(raw: str) -> str:
    """Decode a base64 payload template to text, or raise ``ValueError`` saying why."""
    compact = "".join(raw.split())
    try:
        data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"is not valid base64 ({exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("base64 decodes to bytes that are not UTF-8 text") from None


class _Templated(_Strict):
    """A body with a base64 ``payload`` template: checked on input, decoded on use. Each
    subclass declares the field itself, where it stands among its own."""

    if TYPE_CHECKING:
        payload: str | None

    @field_validator("payload", check_fields=False)
    @classmethod
    def _payload_is_base64(cls, raw: str | None) -> str | None:
        if raw is not None and raw.strip():
            decode_payload(raw)
        return raw

    @property
    def template(self) -> str:
        """The decoded payload template ('' when none was given)."""
        if self.payload is None or not self.payload.strip():
            return ""
        return decode_payload(self.payload)


class DepEvent(_Templated):
    """OpsRamp's ``depEvent``: a second call made once the event's own call succeeded, with
    the values that call captured (``$extTicketId``...). Its attempts are its own: it retries
    on its own schedule and never repeats the first call."""

    depEndPointURI: str | None = Field(default=None, max_length=2048)
    thirdPartyEventType: HttpMethodField = HttpMethod.POST
    headers: list[Header] = Field(default_factory=list, max_length=100)
    payload: str | None = Field(default=None, max_length=1_000_000)
    responseHeaders: list[Header] = Field(default_factory=list, max_length=50)


class IntegrationEventIn(_Templated):
    """Body of ``POST .../integrations/installed/{installedIntgId}/event``."""

    name: str = Field(min_length=1, max_length=255)
    entity: EntityField
    eventType: EventTypeField
    filterCriteria: FilterCriteria | None = None
    useBaseNotifier: bool = False
    notifier: Notifier | None = None
    endPointURI: str | None = Field(default=None, max_length=2048)
    thirdPartyEventType: HttpMethodField = HttpMethod.POST
    headers: list[Header] = Field(default_factory=list, max_length=100)
    payload: str | None = Field(default=None, max_length=1_000_000)
    responseHeaders: list[Header] = Field(default_factory=list, max_length=50)
    #: Herald's own: ``NONE`` lets this event's deliveries overtake earlier ones of their
    #: ticket (:class:`~integrations.enums.Ordering`).
    ordering: OrderingField = Ordering.ENTITY
    depEvent: DepEvent | None = None

    @model_validator(mode="after")
    def _notifier_present(self) -> IntegrationEventIn:
        if not self.useBaseNotifier and self.notifier is None:
            raise ValueError("notifier is required when useBaseNotifier is false")
        return self


class EntityChange(BaseModel):
    """A message on the entity-change stream (see ``integrations/schema``)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    tenantId: str = Field(min_length=1, max_length=256)
    entity: EntityField
    eventType: EventTypeField
    occurredAt: datetime
    data: dict[str, Any]
    previous: dict[str, Any] | None = None
