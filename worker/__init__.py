"""Herald's worker: the Celery app, the stream ingest, delivery and the retry schedule.

``celery -A worker worker`` finds :data:`app` here.
"""

from worker.app import app

__all__ = ["app"]
