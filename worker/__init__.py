"""Herald's worker: the Celery tasks, the stream ingest, delivery and the retry schedule.

``celery -A worker.main worker`` loads the app from :mod:`worker.main`, the composition root.
"""
