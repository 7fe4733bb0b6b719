"""What a template may read, checked when the event is saved (the live API)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from integrations.store import Store
from tests.api.conftest import installed_for
from tests.support.seed import sample_request


def _event(template: str, **overrides: Any) -> dict[str, Any]:
    body = sample_request(0)
    body["payload"] = base64.b64encode(template.encode()).decode()
    body.update(overrides)
    return body


def test_unknown_roots_and_functions_are_a_400_naming_them(api: httpx.Client, store: Store) -> None:
    auth, installed = installed_for(api, store)
    url = f"/api/v2/tenants/client_9/integrations/installed/{installed}/event"
    for template, field, says in [
        ('{"s": "$incidnet.subject"}', "payload", "$incidnet is not a placeholder"),
        ('{"s": "$utils.nope($incident.id)"}', "payload", "there are: $utils.extEntityId"),
        ('{"s": "$esc.html($incident.id)"}', "payload", "$esc.java, $esc.json"),
        ('{"s": "$extTicketId"}', "payload", "once that event exists"),
    ]:
        r = api.post(url, json=_event(template), headers=auth)
        assert r.status_code == 400, (template, r.text)
        error = r.json()["errors"][0]
        assert error["field"] == field and says in error["message"], (template, error)
    r = api.post(url, json=_event("{}", endPointURI="/t/$utils.nope()"), headers=auth)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "endPointURI"

    # Known: the entity (custom fields too, any case), the built-ins, the functions.
    fine = (
        '{"s": "$Incident.subject", "c": "$incident.someCustomField",'
        ' "t": "$utils.extEntityId($incident.id, $installedAppId, $entity)",'
        ' "d": "$esc.java($incident.description)"}'
    )
    assert api.post(url, json=_event(fine), headers=auth).status_code == 200
    # A captured value can be read once an event of the integration captures it.
    capture = _event("{}", responseHeaders=[{"key": "extTicketId", "value": "$result.id"}])
    assert api.post(url, json=capture, headers=auth).status_code == 200
    reader = _event('{"s": "$extTicketId"}', endPointURI="/tickets/$extTicketId")
    r = api.post(url, json=reader, headers=auth)
    assert r.status_code == 200, r.text
    # The seed's samples are accepted exactly as written.
    for i in range(3):
        r = api.post(url, json=sample_request(i), headers=auth)
        assert r.status_code == 200, r.text


def test_a_dep_event_is_checked_like_an_event_and_never_echoes_a_secret(
    api: httpx.Client, store: Store
) -> None:
    auth, installed = installed_for(api, store)
    url = f"/api/v2/tenants/client_9/integrations/installed/{installed}/event"

    def dep(template: str, **more: Any) -> dict[str, Any]:
        return {
            "depEndPointURI": "/tickets/$extTicketId/notes",
            "headers": [{"key": "X-Api-Key", "value": "dep-secret"}],
            "payload": base64.b64encode(template.encode()).decode(),
            **more,
        }

    body = _event(
        "{}",
        responseHeaders=[{"key": "extTicketId", "value": "$result.id"}],
        depEvent=dep('{"t": "$extTicketId", "s": "$incident.subject"}'),
    )
    r = api.post(url, json=body, headers=auth)
    assert r.status_code == 200, r.text
    shown = r.json()["depEvent"]
    assert shown["depEndPointURI"] == "/tickets/$extTicketId/notes"
    assert shown["headers"] == [{"key": "X-Api-Key", "value": "***"}]
    assert "dep-secret" not in r.text
    for bad, field in [
        (dep('{"t": "$incidnet.x"}'), "depEvent.payload"),
        (dep("{}", payload="not base64!"), "depEvent.payload"),
        (dep("{}", depEndPointURI="/t/$utils.nope()"), "depEvent.depEndPointURI"),
    ]:
        r = api.post(url, json={**body, "depEvent": bad}, headers=auth)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["errors"][0]["field"] == field, r.text
