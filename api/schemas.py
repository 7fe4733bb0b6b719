"""Response models: what each route answers, for the OpenAPI document and its checks.

The views (:mod:`api.views`) build the answers; these models describe them, and FastAPI
validates every answer against its model, so the document cannot drift from what is sent.
Installed integrations keep the fields OpsRamp clients send (``category``...), so that model
allows more.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenOut(_Out):
    """A bearer token for one tenant."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str


class HeaderOut(_Out):
    key: str
    value: str


class InstalledOut(BaseModel):
    """An installed integration, with the OpsRamp fields it keeps."""

    model_config = ConfigDict(extra="allow")
    id: str
    displayName: str
    integration: dict[str, str]
    state: str
    createdTime: str | None
    updatedTime: str | None
    uninstallReason: str | None = None
    notifier: dict[str, Any] | None = None
    outboundConfig: dict[str, Any] | None = None


class EventOut(_Out):
    """An integration event, shaped like the seed's sample responses, without secrets."""

    id: str
    name: str
    entity: str
    eventType: str
    filterCriteria: dict[str, Any] | None = None
    useBaseNotifier: bool
    notifier: dict[str, Any] | None = None
    endPointURI: str | None
    thirdPartyEventType: str
    headers: list[HeaderOut]
    eventPayload: str
    responseHeaders: list[HeaderOut]
    ordering: str
    depEvent: dict[str, Any] | None
    active: bool
    disabledReason: str | None
    installedIntgId: str
    createdTime: str | None
    updatedTime: str | None


class AttemptOut(_Out):
    attempt: int
    time: str | None
    durationMs: float
    outcome: str
    httpStatus: int | None
    errorClass: str | None
    reason: str
    responseExcerpt: str


class ActivityOut(_Out):
    """A row of the activity log."""

    id: str
    status: str
    statusMessage: str
    intgMode: str
    requestUrl: str | None
    reqPayload: str | None
    resPayload: str | None
    httpStatus: int | None
    errorClass: str | None
    processedTime: int | None
    processedTimeIso: str | None
    createdTime: str | None
    nextAttemptTime: str | None
    eventId: str | None
    installedIntgId: str | None
    messageId: str | None
    entity: str | None
    eventType: str | None
    entityId: str | None
    attempts: int
    waitsOn: str | None
    warnings: list[str]
    captured: dict[str, str]
    attemptLog: list[AttemptOut]
    message: str | None


class PageOut(_Out, Generic[T]):
    """A page, as OpsRamp pages."""

    results: list[T]
    totalResults: int
    pageNo: int
    pageSize: int
    totalPages: int
    nextPage: bool
    descendingOrder: bool


class ActivityPageOut(PageOut[ActivityOut]):
    #: Producer duplicates dropped for the tenant (Herald's own).
    duplicatesDropped: int


class PlaceholderOut(_Out):
    name: str
    value: str
    description: str


class PlaceholdersOut(_Out):
    entityType: str
    results: list[PlaceholderOut]
    totalResults: int
