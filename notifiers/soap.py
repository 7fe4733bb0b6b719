"""SOAP 1.1 notifiers: envelope wrapping, headers, and fault classification.

A SOAP fault usually arrives with HTTP 500 whatever its cause, so the status says little: the
fault code decides. ``Server`` (SOAP 1.2: ``Receiver``) faults may pass and are retried;
``Client`` (``Sender``), ``VersionMismatch``, ``MustUnderstand`` and application-specific codes
are permanent -- retrying the same envelope cannot fix them. Dotted SOAP 1.1 codes such as
``Server.userException`` are classified by their first part.

Responses are parsed with defusedxml (:mod:`notifiers.xmldoc`): a remote endpoint must not be
able to make us expand entities or fetch external DTDs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from integrations.errors import HeraldError, PermanentError, RetryableError
from notifiers.outcome import error_for_status, excerpt, header, parse_retry_after
from notifiers.xmldoc import child, local_name, parse

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
CONTENT_TYPE = "text/xml; charset=utf-8"

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>\s*")
_RETRYABLE_CODES = frozenset({"server", "receiver"})


def is_envelope(body: str) -> bool:
    """Whether ``body`` already is a SOAP envelope (its root element is ``Envelope``)."""
    stripped = body.strip()
    if not stripped.startswith("<"):
        return False
    root = parse(stripped.encode("utf-8"))
    return root is not None and local_name(root.tag) == "Envelope"


def wrap(body: str) -> str:
    """Wrap a rendered body in a SOAP 1.1 envelope unless it already is one.

    A body that starts with ``<`` is embedded as XML (an XML declaration is dropped, since it
    may only open a document); any other text is escaped, so the envelope stays well formed
    even for a template that renders JSON.
    """
    if is_envelope(body):
        return body
    content = _XML_DECLARATION.sub("", body).strip()
    if content and not content.startswith("<"):
        content = escape(content)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP11_NS}"><soap:Body>{content}</soap:Body></soap:Envelope>'
    )


def soap_action_header(action: str) -> str:
    """The ``SOAPAction`` value: SOAP 1.1 wants the URI in double quotes."""
    action = action.strip()
    if len(action) >= 2 and action.startswith('"') and action.endswith('"'):
        return action
    return f'"{action}"'


@dataclass(frozen=True)
class SoapFault:
    """A parsed SOAP fault (1.1 ``faultcode``/``faultstring`` or 1.2 ``Code``/``Reason``)."""

    code: str
    string: str
    detail: str = ""

    @property
    def retryable(self) -> bool:
        """``Server``/``Receiver`` faults (and their dotted subcodes) may pass later."""
        local = self.code.rsplit(":", 1)[-1].split(".", 1)[0].lower()
        return local in _RETRYABLE_CODES


def _text(elem: Element | None) -> str:
    return "".join(elem.itertext()).strip() if elem is not None else ""


def parse_fault(body: bytes | str) -> SoapFault | None:
    """The fault in a SOAP response body, or ``None`` when it holds none (or is not SOAP)."""
    root = parse(body)
    if root is None or local_name(root.tag) != "Envelope":
        return None
    soap_body = child(root, "Body")
    fault = child(soap_body, "Fault") if soap_body is not None else None
    if fault is None:
        return None
    code = child(fault, "faultcode")
    if code is not None:  # SOAP 1.1
        return SoapFault(
            code=_text(code),
            string=_text(child(fault, "faultstring")),
            detail=_text(child(fault, "detail")),
        )
    code12 = child(fault, "Code")
    value = child(code12, "Value") if code12 is not None else None
    reason = child(fault, "Reason")
    text = child(reason, "Text") if reason is not None else None
    return SoapFault(code=_text(value), string=_text(text), detail=_text(child(fault, "Detail")))


def error_for_soap_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    max_retry_after: float,
    url: str | None = None,
) -> HeraldError | None:
    """``None`` for a successful SOAP exchange, else the error: a fault decides by its code,
    anything else by the HTTP status (see :func:`notifiers.outcome.error_for_status`)."""
    fault = parse_fault(body)
    if fault is None:
        return error_for_status(status, headers, body, max_retry_after=max_retry_after, url=url)
    reason = f"SOAP fault {fault.code or '(no code)'}: {fault.string or '(no faultstring)'}"
    reason += f" (HTTP {status})"
    if fault.retryable:
        return RetryableError(
            reason,
            retry_after=parse_retry_after(header(headers, "Retry-After"), max_retry_after),
            error_class="soap_fault",
            http_status=status,
            response_excerpt=excerpt(body),
            response_headers=dict(headers.items()),
        )
    return PermanentError(
        reason,
        error_class="soap_fault",
        http_status=status,
        response_excerpt=excerpt(body),
        response_headers=dict(headers.items()),
    )
