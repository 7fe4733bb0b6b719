"""Serving a loopback test server on a background thread, shared by the sinks and the
OAuth2 server."""

from __future__ import annotations

import threading
from typing import Protocol


class Serving(Protocol):
    """What :class:`BackgroundServer` needs of a ``socketserver``-style server."""

    def serve_forever(self, poll_interval: float = ...) -> None: ...
    def shutdown(self) -> None: ...
    def server_close(self) -> None: ...


class BackgroundServer:
    """Runs ``server.serve_forever`` on a daemon thread until :meth:`close`."""

    def __init__(self, server: Serving) -> None:
        self.server = server
        # A short poll interval: shutdown() waits up to one interval, and tests stop servers
        # often (a sink going down and coming back).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the listening socket: new connections are refused."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
