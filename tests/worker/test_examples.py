"""The example in ``examples/`` runs as a user would run it, against a live API, a real worker
and a loopback ticketing system: it cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys

from integrations.config import Settings
from integrations.store import Store
from tests.support.processes import ROOT, ApiServer, WorkerProcess
from tests.support.sinks import RecordingSink


def test_the_opsramp_lifecycle_example_runs_end_to_end(
    settings: Settings, store: Store, api: ApiServer, sink: RecordingSink, worker: WorkerProcess
) -> None:
    secret = store.create_tenant("client_demo")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "opsramp_lifecycle.py"),
            "--api",
            api.url,
            "--client-id",
            "client_demo",
            "--client-secret",
            secret,
            "--target",
            sink.url,
            "--redis",
            settings.redis_url,
            "--stream",
            settings.stream_key,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("token at /tenancy", "install", "test the event", "publish", "uninstall"):
        assert f"ok  {name}" in done.stdout
    [ticket] = sink.requests
    assert ticket.path == "/tickets"
    body = ticket.json()
    assert body["subject"] == "Windows host down" and body["priority"] == "P1"
    assert len(body["opened"]) == len("2026-12-01 17:00")  # $utils.convertDate
