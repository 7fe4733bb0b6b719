"""The Celery baselines, run as a real ``celery worker`` with the same pool as Herald's.

:class:`CeleryWorker` starts ``celery -A bench.celery_app worker`` (prefork, ``-c`` as given)
on its own queue; :func:`noop_run` times N bare tasks from the first publish until the last
has counted itself; :func:`naive_run` publishes one ``requests.post`` task per delivery.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

import redis

from bench.celery_app import NOOP, POST, make_app
from bench.rig import Run

ROOT = Path(__file__).resolve().parents[1]


class CeleryWorker:
    """``with CeleryWorker(broker, log_dir, concurrency=2) as w:`` a bare Celery node."""

    def __init__(self, broker_url: str, log_dir: Path, *, concurrency: int) -> None:
        self.broker_url = broker_url
        self.queue = f"bench-celery-{uuid.uuid4().hex[:8]}"
        self.concurrency = concurrency
        self.log_path = Path(log_dir) / f"{self.queue}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.app = make_app(broker_url, self.queue)

    @property
    def pid(self) -> int:
        """The node's main process."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> CeleryWorker:
        """Start the node and wait until Celery reports it ready."""
        env = {**os.environ, "BENCH_BROKER_URL": self.broker_url, "BENCH_QUEUE": self.queue}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker"),
                *("-P", "prefork", "-c", str(self.concurrency), "-Q", self.queue),
                *("-n", f"{self.queue}@%h", "--without-mingle", "--without-gossip"),
                *("--loglevel", "INFO"),
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.log_path.read_text()[-3000:]}")
            if b" ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"celery worker not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Kill the node and every pool child; drop its queue."""
        if self.proc is not None:
            # Killed, not stopped: a warm shutdown takes seconds and nothing here is kept.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self._log is not None:
            self._log.close()
        client = redis.Redis.from_url(self.broker_url)
        client.delete(self.queue, f"_kombu.binding.{self.queue}", f"{self.queue}:done")
        client.close()

    def __enter__(self) -> CeleryWorker:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def noop_run(worker: CeleryWorker, client: redis.Redis, n: int, seconds: float) -> Run:
    """Publish ``n`` no-op tasks; wait until they all ran or ``seconds`` passed."""
    counter = f"{worker.queue}:done"
    client.delete(counter)
    start = time.perf_counter()
    with worker.app.producer_or_acquire() as producer:
        for _ in range(n):
            worker.app.send_task(NOOP, args=[counter], producer=producer)
    deadline = start + seconds
    done, last, polls = 0, None, 0
    while time.perf_counter() < deadline:
        polls += 1
        now_done = int(client.get(counter) or 0)
        if now_done != done:
            done, last = now_done, time.perf_counter()
        if done >= n:
            break
        time.sleep(0.005)
    # The DEL and the polls are the bench's commands, not the tasks'.
    return Run(n, done, start, last, own_commands=polls + 1)


def publish_posts(worker: CeleryWorker, url: str, bodies: list[str]) -> float:
    """Publish one naive delivery task per body; when the first was sent."""
    start = time.perf_counter()
    with worker.app.producer_or_acquire() as producer:
        for body in bodies:
            worker.app.send_task(POST, args=[url, body], producer=producer)
    return start


def purge(worker: CeleryWorker) -> None:
    """Drop the tasks still queued (a run cut by its deadline leaves some)."""
    client = redis.Redis.from_url(worker.broker_url)
    client.delete(worker.queue)
    client.close()
