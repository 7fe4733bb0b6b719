"""The composition root of a worker node: ``celery -A worker.main worker``.

Builds the Celery app from the process's settings and wires the stream-ingest and
retry-scheduler loops into it as a bootstep. Nothing else in :mod:`worker` reads settings or
builds an app at import time, so the modules import in any order without a cycle.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

# Each node sums its own processes' metrics (integrations.metrics): a fresh directory,
# chosen before prometheus_client is imported, and inherited by the pool children.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="herald-metrics-")

from celery import signals

from integrations import metrics
from integrations.config import get_settings
from worker.app import make_celery
from worker.logs import quiet_third_party
from worker.loops import HeraldLoops
from worker.sharing import freeze_before_fork

app = make_celery(get_settings())
app.steps["worker"].add(HeraldLoops)
signals.after_setup_logger.connect(quiet_third_party, weak=False)
signals.worker_init.connect(freeze_before_fork, weak=False)


def _child_exited(pid: int, exitcode: int, **_: Any) -> None:
    metrics.process_exited(pid)


signals.worker_process_shutdown.connect(_child_exited, weak=False)

__all__ = ["app"]
