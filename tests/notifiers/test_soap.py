from __future__ import annotations

import defusedxml.ElementTree as SafeET
import pytest

from integrations.errors import PermanentError, RetryableError
from integrations.models import Notifier
from notifiers import soap
from tests.notifiers.conftest import Send, outbound
from tests.support.sinks import SOAP11_NS, RecordingSink, Reply

CREATE = (
    '<ns:createIncident xmlns:ns="urn:itsm"><ns:subject>disk full</ns:subject></ns:createIncident>'
)


def _body_child(xml: str) -> str:
    root = SafeET.fromstring(xml)
    assert root.tag == f"{{{SOAP11_NS}}}Envelope"
    body = root.find(f"{{{SOAP11_NS}}}Body")
    assert body is not None
    return next(iter(body)).tag if len(body) else (body.text or "")


def test_wrap_fragment() -> None:
    assert _body_child(soap.wrap(CREATE)) == "{urn:itsm}createIncident"
    assert _body_child(soap.wrap('<?xml version="1.0"?>\n' + CREATE)) == "{urn:itsm}createIncident"


def test_wrap_keeps_existing_envelopes() -> None:
    envelope = (
        f'<s:Envelope xmlns:s="{SOAP11_NS}"><s:Header/><s:Body>{CREATE}</s:Body></s:Envelope>'
    )
    assert soap.wrap(envelope) == envelope
    assert soap.is_envelope("  " + envelope)
    assert not soap.is_envelope(CREATE)
    assert not soap.is_envelope('{"a": 1}')


def test_wrap_escapes_non_xml_text() -> None:
    # The seed's SOAP samples render JSON: it travels as text, and the envelope stays valid.
    assert _body_child(soap.wrap('{"a": "<b> & c"}')) == '{"a": "<b> & c"}'
    assert _body_child(soap.wrap("")) == ""


@pytest.mark.parametrize(
    ("action", "header"),
    [("urn:create", '"urn:create"'), ('"urn:create"', '"urn:create"'), ("", '""')],
)
def test_soap_action_is_quoted(action: str, header: str) -> None:
    assert soap.soap_action_header(action) == header


@pytest.mark.parametrize(
    ("code", "version", "retryable"),
    [
        ("soap:Server", "1.1", True),
        ("Server", "1.1", True),
        ("SOAP-ENV:Server.userException", "1.1", True),
        ("soap:Client", "1.1", False),
        ("Client.Authentication", "1.1", False),
        ("soap:VersionMismatch", "1.1", False),
        ("soap:MustUnderstand", "1.1", False),
        ("ns1:InvalidTicket", "1.1", False),
        ("env:Receiver", "1.2", True),
        ("env:Sender", "1.2", False),
    ],
)
def test_fault_classification(code: str, version: str, retryable: bool) -> None:
    reply = Reply.soap_fault(code, "went wrong", version=version)
    error = soap.error_for_soap_response(
        500, dict(reply.header_items()), reply.body_bytes(), max_retry_after=60
    )
    assert isinstance(error, RetryableError if retryable else PermanentError)
    assert error is not None
    assert error.error_class == "soap_fault"
    assert error.reason == f"SOAP fault {code}: went wrong (HTTP 500)"


def test_fault_with_200_is_still_a_fault() -> None:
    reply = Reply.soap_fault("soap:Client", "bad ticket", status=200)
    error = soap.error_for_soap_response(200, {}, reply.body_bytes(), max_retry_after=60)
    assert isinstance(error, PermanentError)


def test_non_fault_answers_use_the_status() -> None:
    assert (
        soap.error_for_soap_response(200, {}, Reply.soap().body_bytes(), max_retry_after=1) is None
    )
    error = soap.error_for_soap_response(503, {}, b"<html>down</html>", max_retry_after=1)
    assert isinstance(error, RetryableError) and error.error_class == "http_503"


def test_hostile_xml_is_not_expanded() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Envelope><Body><Fault>'
        "<faultcode>Server</faultcode><faultstring>&lol2;</faultstring></Fault></Body></Envelope>"
    )
    assert soap.parse_fault(bomb) is None


def _soap_notifier(**extra: str) -> Notifier:
    return Notifier(type="SOAP_API", baseURI="unused.example", **extra)


def test_soap_delivery(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply.soap("<ns:createIncidentResponse xmlns:ns='urn:itsm'/>"))
    response = send(
        outbound(
            f"{sink.url}/Service.asmx",
            _soap_notifier(soapAction="urn:itsm/createIncident"),
            body=CREATE,
            # the seed's SOAP samples declare JSON: a SOAP server needs text/xml
            headers=[("Content-Type", "application/json"), ("Accept", "application/json")],
        )
    )
    assert response.http_status == 200
    [req] = sink.requests
    assert req.header("Content-Type") == "text/xml; charset=utf-8"
    assert req.header("SOAPAction") == '"urn:itsm/createIncident"'
    assert _body_child(req.text) == "{urn:itsm}createIncident"


def test_soap_action_defaults_to_empty(send: Send, sink: RecordingSink) -> None:
    send(outbound(sink.url, _soap_notifier(), body=CREATE))
    assert sink.requests[0].header("SOAPAction") == '""'


def test_soap_server_fault_is_retryable(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply.soap_fault("soap:Server", "database unavailable"))
    with pytest.raises(RetryableError) as info:
        send(outbound(sink.url, _soap_notifier(), body=CREATE))
    assert info.value.error_class == "soap_fault"
    assert "database unavailable" in info.value.reason
    assert info.value.http_status == 500


def test_soap_client_fault_is_permanent(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply.soap_fault("soap:Client", "unknown field subject"))
    with pytest.raises(PermanentError) as info:
        send(outbound(sink.url, _soap_notifier(), body=CREATE))
    assert info.value.error_class == "soap_fault"
    assert "soap:Client: unknown field subject" in info.value.reason


def test_soap_response_values_are_captured(send: Send, sink: RecordingSink) -> None:
    """``responseHeaders`` reach into a SOAP answer as into JSON: the sys_id a ServiceNow-style
    endpoint returns can be captured for later UPDATE events."""
    sink.reply(
        Reply.soap(
            "<ns:insertResponse xmlns:ns='urn:itsm'><ns:sys_id>9d3c</ns:sys_id>"
            "<ns:number>INC0010001</ns:number></ns:insertResponse>"
        )
    )
    response = send(outbound(sink.url, _soap_notifier(), body=CREATE))
    assert response.json_body is None
    assert response.capture(
        [
            {"key": "extTicketId", "value": "$insertResponse.sys_id"},
            {"key": "extTicketNumber", "value": "$Envelope.Body.insertResponse.number"},
            {"key": "absent", "value": "$insertResponse.nothing"},
        ]
    ) == {"extTicketId": "9d3c", "extTicketNumber": "INC0010001"}
