"""Logging of a worker node: Herald's lines at the node's level, third-party chatter above it.

httpx logs every request at INFO ("HTTP Request: POST ... 200 OK"). A worker runs at INFO, so
that was one line per delivery: a few percent of a delivery's CPU at a thousand a second, and
noise that buries Herald's own lines. Outcomes are Herald's to report (the activity log and
its task results), so these loggers speak only from WARNING.
"""

from __future__ import annotations

import logging
from typing import Any

#: Libraries that log per request or per connection at INFO or DEBUG.
CHATTY = ("httpx", "httpcore", "aiohttp.access", "aiohttp.client")


def quiet_third_party(**_: Any) -> None:
    """Raise the chatty libraries' loggers to WARNING (a Celery ``after_setup_logger`` hook)."""
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
