"""Drive an integration's whole life over Herald's HTTP API, the way an OpsRamp user would.

Token (at OpsRamp's /tenancy path), install, base notifier, create an event, test it,
update it, activate it, list placeholders, publish a change (XADD, as any producer would),
read the activity, search, disable, uninstall.

    python examples/opsramp_lifecycle.py --api http://127.0.0.1:8080 \\
        --client-id client_demo --client-secret "$SECRET" \\
        --target http://127.0.0.1:9000 --redis redis://127.0.0.1:6379/0

``--target`` is your ticketing system (it receives ``POST /tickets``); a tenant is made with
``herald tenants create client_demo``. Each step prints one line; the script stops at the
first answer that is not what it expects.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import redis


def step(name: str, response: httpx.Response, expect: int = 200) -> dict[str, Any]:
    """Check one answer and print a line about it."""
    if response.status_code != expect:
        sys.exit(f"{name}: HTTP {response.status_code}: {response.text}")
    body: dict[str, Any] = response.json() if response.content else {}
    print(f"ok  {name}")
    return body


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--target", required=True, help="the ticketing system's base URL")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--stream", default="herald:changes")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    tenant = args.client_id
    base = f"/api/v2/tenants/{tenant}/integrations"

    with httpx.Client(base_url=args.api, timeout=30) as api:
        token = step(
            "token at /tenancy/auth/oauth/token",
            api.post(
                "/tenancy/auth/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": tenant,
                    "client_secret": args.client_secret,
                },
            ),
        )
        api.headers["Authorization"] = f"Bearer {token['access_token']}"

        installed = step(
            "install",
            api.post(
                f"{base}/install/CUSTOM",
                json={"displayName": "Ticketing", "category": "ITSM"},
            ),
        )["id"]
        step(
            "base notifier",
            api.post(
                f"{base}/installed/{installed}/notifier",
                json={"type": "REST_API", "baseURI": args.target, "authType": "NONE"},
            ),
        )
        event = {
            "name": "Windows incidents to ticketing",
            "entity": "INCIDENT",
            "eventType": "CREATE",
            "filterCriteria": {
                "matchType": "ANY",
                "rules": [{"key": "subject", "operator": "Contains", "value": "Windows"}],
            },
            "useBaseNotifier": True,
            "endPointURI": "/tickets",
            "headers": [{"key": "Content-Type", "value": "application/json"}],
            "payload": b64(
                '{"subject": "$incident.subject", "priority": "$incident.priority.name"}'
            ),
        }
        created = step("create event", api.post(f"{base}/installed/{installed}/event", json=event))
        event_id = created["id"]

        ticket = str(uuid.uuid4())[:8]
        change = {
            "id": f"demo-{ticket}",
            "tenantId": tenant,
            "entity": "INCIDENT",
            "eventType": "CREATE",
            "occurredAt": datetime.now(UTC).isoformat(),
            "data": {
                "id": f"INC-{ticket}",
                "subject": "Windows host down",
                "priority": {"name": "P1"},
            },
        }
        tested = step(
            "test the event",
            api.post(
                f"{base}/installed/{installed}/event/{event_id}/test", json={"change": change}
            ),
        )
        if not tested["matches"]:
            sys.exit(f"the test says the event does not match: {json.dumps(tested)}")

        event["payload"] = b64(
            '{"subject": "$incident.subject", "priority": "$incident.priority.name",'
            ' "opened": "$utils.convertDate($incident.createdDate, \'yyyy-MM-dd HH:mm\')"}'
        )
        step("update event", api.post(f"{base}/installed/{installed}/event/{event_id}", json=event))
        step("deactivate", api.post(f"{base}/installed/{installed}/event/{event_id}/deactivate"))
        step("activate", api.post(f"{base}/installed/{installed}/event/{event_id}/activate"))
        places = step("placeholders", api.get(f"{base}/events/placeHolders/INCIDENT"))
        print(f"    {places['totalResults']} placeholders, e.g. {places['results'][0]['value']}")

        change["data"]["createdDate"] = datetime.now(UTC).isoformat()
        client = redis.Redis.from_url(args.redis, decode_responses=True)
        entry = client.xadd(args.stream, {"message": json.dumps(change)})
        shown = entry if isinstance(entry, str) else entry.decode()
        print(f"ok  publish (stream entry {shown})")

        deadline = time.monotonic() + args.timeout
        while True:
            rows = step(
                "activity",
                api.get(f"{base}/activity", params={"queryString": f"messageId:{change['id']}"}),
            )["results"]
            if rows and rows[0]["status"] in ("SUCCESS", "FAILED"):
                break
            if time.monotonic() > deadline:
                sys.exit(f"no outcome for {change['id']} within {args.timeout} s: {rows}")
            time.sleep(0.5)
        print(f"    {rows[0]['status']}: {rows[0]['statusMessage']}")

        found = step(
            "search",
            api.get(f"{base}/installed/search", params={"queryString": "displayName:ticketing"}),
        )
        print(f"    {found['totalResults']} installed integration(s) named like 'ticketing'")
        state = step("disable", api.post(f"{base}/installed/{installed}/disable"))["state"]
        print(f"    state: {state}")
        gone = step(
            "uninstall",
            api.request(
                "DELETE", f"{base}/installed/{installed}", json={"uninstallReason": "demo over"}
            ),
        )
        print(f"    state: {gone['state']}")
        if rows[0]["status"] != "SUCCESS":
            sys.exit("the change was not delivered")


if __name__ == "__main__":
    main()
