"""Run a command with a Redis for the tests: the one at HERALD_TEST_REDIS_URL, else a private one.

``python -m tests.support.with_redis pytest ...`` is what ``make test`` runs, so the suite works
on a machine with no Redis running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from worker.redis_server import RedisServer, answers


def main(argv: list[str]) -> int:
    """Run ``argv`` with ``HERALD_TEST_REDIS_URL`` pointing at a Redis that answers."""
    url = os.environ.get("HERALD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    env = dict(os.environ)
    if answers(url):
        print(f"tests: using the Redis at {url}", flush=True)
        return subprocess.call(argv, env=env)
    with tempfile.TemporaryDirectory(prefix="herald-test-redis-") as tmp:
        server = RedisServer(Path(tmp), appendonly=False).start()
        print(f"tests: no Redis at {url}; started a private one at {server.url}", flush=True)
        env["HERALD_TEST_REDIS_URL"] = server.url
        try:
            return subprocess.call(argv, env=env)
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
