"""What differs between notifier types (REST, SOAP), as one strategy object per type (pure).

Everything type-specific is here, so no caller branches on ``NotifierType.SOAP_API``:

* :meth:`NotifierProtocol.render_syntax_hint` -- the content type the worker passes to
  :func:`rules.render.detect_syntax` (SOAP bodies are XML whatever the event declares);
* :meth:`~NotifierProtocol.wrap` -- the body as sent (SOAP: inside an envelope);
* :meth:`~NotifierProtocol.content_type` -- the Content-Type to send;
* :meth:`~NotifierProtocol.managed_headers` / :meth:`~NotifierProtocol.extra_headers` --
  headers the type owns (SOAP: ``SOAPAction``);
* :meth:`~NotifierProtocol.error_for` -- what an answer means (SOAP: the fault code decides).

Use :func:`for_notifier` (or :func:`for_type`) to get the strategy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from integrations.enums import NotifierType
from integrations.models import Notifier
from notifiers import soap
from notifiers.outcome import error_for_status


def _looks_like_json(body: str) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


class NotifierProtocol:
    """REST (``REST_API``): the body as rendered, outcomes by HTTP status."""

    def render_syntax_hint(self, declared: str | None) -> str | None:
        """The content type to render the template as: the event's own Content-Type."""
        return declared

    def wrap(self, body: str) -> str:
        """The body as sent."""
        return body

    def content_type(self, body: str, declared: str | None) -> str | None:
        """The event's Content-Type if given; else ``application/json`` for a JSON body,
        ``application/xml`` for an XML-looking one, ``text/plain; charset=utf-8`` otherwise,
        and none for an empty body."""
        if declared:
            return declared
        if not body:
            return None
        if _looks_like_json(body):
            return "application/json"
        if body.lstrip().startswith("<"):
            return "application/xml"
        return "text/plain; charset=utf-8"

    def managed_headers(self, notifier: Notifier) -> frozenset[str]:
        """Lower-case names this type sets itself: an event header of that name is dropped."""
        return frozenset()

    def extra_headers(
        self, notifier: Notifier, headers: Sequence[tuple[str, str]], content_type: str | None
    ) -> list[tuple[str, str]]:
        """Headers this type adds to ``headers`` (the event's, Content-Type included)."""
        return []

    #: What an answer means: ``None`` for success, else the error to raise
    #: (:func:`notifiers.outcome.error_for_status`: by HTTP status).
    error_for = staticmethod(error_for_status)


class SoapProtocol(NotifierProtocol):
    """SOAP 1.1 (``SOAP_API``): an envelope, ``SOAPAction``, outcomes by fault code."""

    def render_syntax_hint(self, declared: str | None) -> str | None:
        """Always XML: the seed's SOAP samples declare ``application/json``."""
        return "text/xml"

    def wrap(self, body: str) -> str:
        """The body in a SOAP envelope unless it already is one (:func:`soap.wrap`)."""
        return soap.wrap(body)

    def content_type(self, body: str, declared: str | None) -> str | None:
        """The event's Content-Type only if it names an XML type (no SOAP server accepts the
        ``application/json`` the seed's samples declare), else ``text/xml; charset=utf-8``."""
        return declared if declared and "xml" in declared.lower() else soap.CONTENT_TYPE

    def managed_headers(self, notifier: Notifier) -> frozenset[str]:
        """``SOAPAction`` when the notifier names one."""
        return frozenset({"soapaction"}) if notifier.soapAction else frozenset()

    def extra_headers(
        self, notifier: Notifier, headers: Sequence[tuple[str, str]], content_type: str | None
    ) -> list[tuple[str, str]]:
        """The notifier's ``SOAPAction``; else ``""`` for SOAP 1.1 (``text/xml``), which
        requires the header ("the intent is the request URI"), unless the event set one."""
        if notifier.soapAction:
            return [("SOAPAction", soap.soap_action_header(notifier.soapAction))]
        has_action = any(n.lower() == "soapaction" for n, _ in headers)
        if not has_action and content_type and content_type.startswith("text/xml"):
            return [("SOAPAction", '""')]
        return []

    #: A fault decides by its code, anything else by the HTTP status
    #: (:func:`notifiers.soap.error_for_soap_response`).
    error_for = staticmethod(soap.error_for_soap_response)


REST = NotifierProtocol()
SOAP = SoapProtocol()
_BY_TYPE: dict[NotifierType, NotifierProtocol] = {
    NotifierType.REST_API: REST,
    NotifierType.SOAP_API: SOAP,
}


def for_type(notifier_type: NotifierType) -> NotifierProtocol:
    """The strategy of a notifier type (REST for any type without its own)."""
    return _BY_TYPE.get(notifier_type, REST)


def for_notifier(notifier: Notifier) -> NotifierProtocol:
    """The strategy of ``notifier``'s type."""
    return for_type(notifier.type)
