"""The activity log with OpsRamp's query parameters, over the live API."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from integrations.store import DeliveryStatus, NewDelivery, Store
from tests.api.conftest import installed_for

ACTIVITY = "/api/v2/tenants/client_9/integrations/activity"


def _seed(store: Store, installed: str, other: str) -> tuple[int, int]:
    """Three rows (two of ``installed``, one FAILED of ``other``), and epoch ms around the
    third."""
    rows = [
        ("m1", installed, DeliveryStatus.SUCCESS, "INC-1"),
        ("m2", installed, DeliveryStatus.PENDING, "INC-2"),
    ]
    for mid, inst, status, entity_id in rows:
        store.ingest_batch(
            [("client_9", mid)],
            [_row(mid, inst, status, entity_id)],
            86400.0,
        )
        time.sleep(0.01)
    before = int(time.time() * 1000)
    time.sleep(0.01)
    store.ingest_batch(
        [("client_9", "m3")], [_row("m3", other, DeliveryStatus.FAILED, "INC-3")], 86400.0
    )
    return before, int(time.time() * 1000) + 1


def _row(mid: str, installed: str, status: DeliveryStatus, entity_id: str) -> NewDelivery:
    return NewDelivery(
        id=f"DLV-{mid}",
        tenant_id="client_9",
        message="{}",
        event_id=f"E-{installed}",
        installed_id=installed,
        message_id=mid,
        entity="INCIDENT",
        event_type="CREATE",
        entity_id=entity_id,
        status=status,
        error_class="http_4xx" if status == DeliveryStatus.FAILED else None,
    )


def _ids(api: httpx.Client, auth: dict[str, str], **params: object) -> list[str]:
    r = api.get(ACTIVITY, params=params, headers=auth)
    assert r.status_code == 200, r.text
    return [row["id"] for row in r.json()["results"]]


def test_opsramps_parameters_filter_sort_and_page(api: httpx.Client, store: Store) -> None:
    auth, installed = installed_for(api, store)
    other = "INTG-other"
    before, after = _seed(store, installed, other)
    assert _ids(api, auth) == ["DLV-m3", "DLV-m2", "DLV-m1"]  # newest first
    assert _ids(api, auth, isDescendingOrder="false") == ["DLV-m1", "DLV-m2", "DLV-m3"]
    assert _ids(api, auth, installedIntgId=installed) == ["DLV-m2", "DLV-m1"]
    assert _ids(api, auth, startTime=before) == ["DLV-m3"]
    assert _ids(api, auth, endTime=before) == ["DLV-m2", "DLV-m1"]
    assert _ids(api, auth, startTime=before, endTime=after) == ["DLV-m3"]
    assert _ids(api, auth, queryString="status:failed+errorClass:http_4xx") == ["DLV-m3"]
    assert _ids(api, auth, queryString="entityId:INC-2") == ["DLV-m2"]
    assert _ids(api, auth, intgMode="OUTBOUND") == ["DLV-m3", "DLV-m2", "DLV-m1"]
    assert _ids(api, auth, intgMode="INBOUND") == []
    # Sorted by processedTime: the PENDING row has none and sorts first ascending.
    by_processed = _ids(api, auth, sortName="processedTime", isDescendingOrder="false")
    assert by_processed[0] == "DLV-m2"
    # processedTime as OpsRamp gives it, and Herald's ISO time beside it.
    [row] = api.get(ACTIVITY, params={"messageId": "m3"}, headers=auth).json()["results"]
    assert isinstance(row["processedTime"], int) and before <= row["processedTime"] <= after
    iso = datetime.fromisoformat(row["processedTimeIso"].replace("Z", "+00:00"))
    assert abs(iso.timestamp() * 1000 - row["processedTime"]) < 1
    assert row["intgMode"] == "OUTBOUND"


def test_out_of_range_parameters_are_a_400_naming_them(api: httpx.Client, store: Store) -> None:
    auth, _ = installed_for(api, store)
    far = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)
    for params, field in [
        ({"startTime": far}, "startTime"),
        ({"endTime": -1}, "endTime"),
        ({"from": "9999-12-31T00:00:00Z"}, "from"),
        ({"pageNo": 2**63}, "pageNo"),
        ({"sortName": "colour"}, "sortName"),
        ({"intgMode": "SIDEWAYS"}, "intgMode"),
        ({"queryString": "colour:red"}, "queryString"),
    ]:
        r = api.get(ACTIVITY, params=params, headers=auth)
        assert r.status_code == 400, (params, r.text)
        assert field in r.text, (params, r.text)
