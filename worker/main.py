"""The composition root of a worker node: ``celery -A worker.main worker``.

Builds the Celery app from the process's settings and wires the stream-ingest and
retry-scheduler loops into it as a bootstep. Nothing else in :mod:`worker` reads settings or
builds an app at import time, so the modules import in any order without a cycle.
"""

from __future__ import annotations

from celery import signals

from integrations.config import get_settings
from worker.app import make_celery
from worker.logs import quiet_third_party
from worker.loops import HeraldLoops
from worker.sharing import freeze_before_fork

app = make_celery(get_settings())
app.steps["worker"].add(HeraldLoops)
signals.after_setup_logger.connect(quiet_third_party, weak=False)
signals.worker_init.connect(freeze_before_fork, weak=False)

__all__ = ["app"]
