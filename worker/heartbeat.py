"""Keeping a lease alive while the work under it runs, so that leases can be short.

A lease (a stream entry's idle time, a delivery's lock) must outlive the work it covers, or a
second worker takes the work while the first still does it; and it must end soon after its
holder dies, or the work waits. One fixed length cannot do both: the work may take a minute
(a batch's send deadline), and a dead holder's work should resume in seconds. So leases are
short, and the holder renews its own every third of the lease, on a thread, for as long as it
works. A holder that dies stops renewing, and its lease runs out within one lease length.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)


class Heartbeat:
    """Calls ``beat`` every ``every`` seconds on a daemon thread while the block runs.

    ``with Heartbeat(renew, every=5.0): work()``. A failing beat is logged, not raised: the
    work goes on, and the worst case is the lease running out (another worker then repeats
    work that is idempotent).
    """

    def __init__(self, beat: Callable[[], object], *, every: float, name: str = "lease") -> None:
        self._beat = beat
        self._every = every
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)
        self.beats = 0

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
                self.beats += 1
            except Exception as exc:
                log.warning("renewing the %s failed (%s); it may run out", self._name, exc)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self._every + 5)
