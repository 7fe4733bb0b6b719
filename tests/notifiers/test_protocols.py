"""The per-type strategies (pure): what REST and SOAP notifiers do differently."""

from __future__ import annotations

import pytest

from integrations.enums import NotifierType
from integrations.errors import PermanentError, RetryableError
from integrations.models import Notifier
from notifiers.protocols import (
    REST,
    SOAP,
    NotifierProtocol,
    SoapProtocol,
    for_notifier,
    for_type,
)

FAULT = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>bad</faultstring>"
    "</soap:Fault></soap:Body></soap:Envelope>"
)


def test_one_strategy_per_type() -> None:
    assert for_notifier(Notifier(type="SOAP_API")) is SOAP
    assert isinstance(for_notifier(Notifier(type="SOAP")), SoapProtocol)
    assert for_notifier(Notifier()) is REST
    assert for_type(NotifierType.REST_API) is REST


@pytest.mark.parametrize(
    ("protocol", "declared", "hint"),
    [
        (REST, "application/json", "application/json"),
        (REST, None, None),
        (SOAP, "application/json", "text/xml"),  # the seed's SOAP samples declare JSON
        (SOAP, None, "text/xml"),
    ],
)
def test_render_syntax_hint(
    protocol: NotifierProtocol, declared: str | None, hint: str | None
) -> None:
    assert protocol.render_syntax_hint(declared) == hint


def test_bodies() -> None:
    assert REST.wrap('{"a": 1}') == '{"a": 1}'
    wrapped = SOAP.wrap("<create/>")
    assert wrapped.startswith("<?xml") and "<soap:Body><create/></soap:Body>" in wrapped
    assert SOAP.wrap(wrapped) == wrapped


def test_soap_action_headers() -> None:
    named = Notifier(type="SOAP_API", soapAction="urn:create")
    assert SOAP.managed_headers(named) == {"soapaction"}
    assert SOAP.extra_headers(named, [], "text/xml") == [("SOAPAction", '"urn:create"')]
    plain = Notifier(type="SOAP_API")
    assert SOAP.managed_headers(plain) == frozenset()
    assert SOAP.extra_headers(plain, [], "text/xml; charset=utf-8") == [("SOAPAction", '""')]
    assert SOAP.extra_headers(plain, [("SOAPAction", '"x"')], "text/xml") == []
    assert SOAP.extra_headers(plain, [], "application/soap+xml") == []  # SOAP 1.2: no header
    assert REST.extra_headers(named, [], "text/xml") == []


def test_outcomes() -> None:
    assert REST.error_for(200, {}, FAULT, max_retry_after=60) is None
    assert isinstance(SOAP.error_for(200, {}, FAULT, max_retry_after=60), PermanentError)
    server = SOAP.error_for(500, {}, FAULT.replace("Client", "Server"), max_retry_after=60)
    assert isinstance(server, RetryableError) and server.error_class == "soap_fault"
    rest = REST.error_for(500, {}, FAULT, max_retry_after=60)
    assert isinstance(rest, RetryableError) and rest.error_class == "http_500"
