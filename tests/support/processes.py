"""Real processes for end-to-end and fault-injection tests: Celery workers and the API.

A :class:`WorkerProcess` is a real ``celery -A worker.main worker`` subprocess configured through
``HERALD_*`` variables, exactly as a deployment runs it; never Celery's eager mode.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from integrations.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def herald_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment variables that configure a Herald process like ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update(
        {
            "HERALD_REDIS_URL": settings.redis_url,
            "HERALD_DATABASE_URL": settings.database_url,
            "HERALD_SECRET_KEY": settings.secret_key or "",
            "HERALD_REDIS_PREFIX": settings.redis_prefix,
            "HERALD_ALLOWED_NETWORKS": ",".join(str(n) for n in settings.allowed_networks),
            "HERALD_RETRY_SCHEDULE": ",".join(str(s) for s in settings.retry_schedule),
            "HERALD_CONNECT_TIMEOUT": str(settings.connect_timeout),
            "HERALD_READ_TIMEOUT": str(settings.read_timeout),
            "HERALD_INGEST_CLAIM_IDLE": str(settings.ingest_claim_idle),
            "HERALD_INGEST_BATCH": str(settings.ingest_batch),
            **({"HERALD_BROKER_URL": settings.broker_url} if settings.broker_url else {}),
            "HERALD_SEND_CONCURRENCY": str(settings.send_concurrency),
            "HERALD_ENDPOINT_CONCURRENCY": str(settings.endpoint_concurrency),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def run_herald(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``herald`` command as an operator would, configured like ``settings``."""
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=herald_env(settings),
        timeout=60,
        check=False,
    )


class WorkerProcess:
    """A ``celery -A worker.main worker`` subprocess; its log goes to ``log_path``."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        *,
        name: str = "w1",
        concurrency: int = 2,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.concurrency = concurrency
        self.log_path = Path(log_dir) / f"worker-{name}.log"
        self.env = herald_env(settings, **(extra_env or {}))
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        """Start the worker and wait until Celery reports it ready."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        start_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            # Started through `herald worker`, exactly as the Procfile runs it.
            [
                sys.executable,
                "-m",
                "api.cli",
                "worker",
                "-c",
                str(self.concurrency),
                "-n",
                f"{self.name}-{self.settings.redis_prefix}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            with open(self.log_path, "rb") as f:
                f.seek(start_offset)
                if b" ready." in f.read():
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """The worker's log so far (for failure messages)."""
        return self.log_path.read_text(errors="replace")[-6000:]

    def children(self) -> list[int]:
        """PIDs of the worker's pool processes."""
        assert self.proc is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(p) for p in out.split()]

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the worker's main process."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill_node(self) -> None:
        """SIGKILL the whole node (main process and pool children), as a crash would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """Warm shutdown (SIGTERM), then SIGKILL if it does not exit in time."""
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                code = self.proc.wait()
        elif self.proc is not None:
            code = self.proc.returncode
        if self.proc is not None:
            # Pool children of a killed node may linger; never leave processes behind.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ApiServer:
    """The real API app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_for(predicate: Any, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
