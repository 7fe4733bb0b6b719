"""The ``herald`` command: run the API, a worker, or both; manage tenants; publish changes.

herald dev [--host H] [--port P]     API + worker on embedded defaults (the quick start)
herald api [--host H] [--port P]     the HTTP API
herald worker [CELERY ARGS...]       a Celery worker (``celery -A worker.main worker``)
herald tenants create CLIENT_ID      prints {"client_id": ..., "client_secret": ...}
herald tenants rotate CLIENT_ID      a new secret; every token issued before is revoked
herald publish [--file F]            XADD one change (or a JSON array of them)
herald dead-letters                  messages no event could take, kept for an operator
herald sink [--port P]               print requests received on loopback (demos)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from integrations import herald_version
from integrations.config import DEFAULT_REDIS_URL, Settings, get_settings

VAR = Path("var")


DEV_ENV = VAR / "dev.env"


def load_dev_env() -> None:
    """Adopt the settings a running ``herald dev`` chose, for variables not set here.

    ``herald dev`` writes them to ``./var/dev.env`` so that ``herald tenants create`` and
    ``herald publish`` in another terminal reach the same database, key and Redis.
    """
    if not DEV_ENV.exists():
        return
    for line in DEV_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("HERALD_"):
            os.environ.setdefault(key, value)


def _settings() -> Settings:
    load_dev_env()
    try:
        return get_settings()
    except ValueError as exc:
        sys.exit(f"herald: configuration error: {exc}")


def _require_key(settings: Settings) -> None:
    if not settings.secret_key:
        sys.exit(
            "herald: HERALD_SECRET_KEY is not set. Generate one with\n"
            "  python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'\n"
            "(`herald dev` makes and keeps one under ./var/ for you)"
        )


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the HTTP API."""
    import uvicorn

    from api.app import create_app

    settings = _settings()
    _require_key(settings)
    migrate_database(settings.database_url)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


def migrate_database(database_url: str) -> None:
    """Bring the database to the newest schema revision, as ``herald db upgrade`` does.

    Run where a deployment starts (``herald api``, ``herald dev``), never per worker process:
    a :class:`~integrations.store.Store` does not migrate on open.
    """
    from integrations.migrate import migrate
    from integrations.store import make_engine

    engine = make_engine(database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()


def cmd_worker(args: argparse.Namespace) -> int:
    """Run ``celery -A worker.main worker`` with Herald's queue and any extra Celery arguments."""
    settings = _settings()
    _require_key(settings)
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.main",
        "worker",
        "-Q",
        f"{settings.queue},{settings.keys.batch_queue}",
        "--loglevel",
        "INFO",
        *args.celery_args,
    ]
    os.execv(sys.executable, argv)


def _dev_secret_key() -> str:
    path = VAR / "secret.key"
    if path.exists():
        return path.read_text().strip()
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    VAR.mkdir(exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def dev_environment() -> tuple[dict[str, str], Any]:
    """The environment of ``herald dev``; starts a private Redis if none answers."""
    from worker.redis_server import RedisServer, answers

    VAR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("HERALD_DATABASE_URL", f"sqlite:///{(VAR / 'herald.db').resolve()}")
    env.setdefault("HERALD_SECRET_KEY", _dev_secret_key())
    # A developer's endpoints (``herald sink``, a local mock) live on loopback, which the URL
    # guard refuses in production; the dev default opens loopback only.
    env.setdefault("HERALD_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
    server = None
    url = env.get("HERALD_REDIS_URL", DEFAULT_REDIS_URL)
    if not answers(url):
        server = RedisServer(VAR / "redis", unix_socket=True, appendonly=True).start()
        print(
            f"herald dev: no Redis at {url}; started a private one at {server.url} (AOF on)",
            flush=True,
        )
        env["HERALD_REDIS_URL"] = server.url
    else:
        env["HERALD_REDIS_URL"] = url
        print(f"herald dev: using the Redis at {url}", flush=True)
    DEV_ENV.write_text(
        "".join(f"{k}={v}\n" for k, v in sorted(env.items()) if k.startswith("HERALD_"))
    )
    DEV_ENV.chmod(0o600)
    return env, server


def cmd_dev(args: argparse.Namespace) -> int:
    """Run the API and one worker together until interrupted."""
    env, server = dev_environment()
    # Before the worker starts, so its pool children find the schema at head.
    migrate_database(env["HERALD_DATABASE_URL"])
    herald = [sys.executable, "-m", "api.cli"]
    procs: list[tuple[str, subprocess.Popen[bytes]]] = [
        (
            "api",
            subprocess.Popen(
                [*herald, "api", "--host", args.host, "--port", str(args.port)], env=env
            ),
        ),
        (
            "worker",
            subprocess.Popen([*herald, "worker", "--concurrency", str(args.concurrency)], env=env),
        ),
    ]
    print(f"herald dev: API on http://{args.host}:{args.port}  (Ctrl-C stops)", flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        while not stopping:
            for name, p in procs:
                if p.poll() is not None:
                    print(f"herald dev: {name} exited with {p.returncode}", flush=True)
                    code = p.returncode or 1
                    stopping = True
            time.sleep(0.3)
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if server is not None:
            server.stop()
    return code


def cmd_tenants_create(args: argparse.Namespace) -> int:
    """Create a tenant and print its credentials (an existing one: see rotate)."""
    from integrations.store import Store

    settings = _settings()
    _require_key(settings)
    store = Store(settings.database_url, settings.secret_key)
    if store.known_tenants([args.client_id]):
        print(
            f"herald: tenant {args.client_id!r} exists; `herald tenants rotate "
            f"{args.client_id}` gives it a new secret and revokes its tokens",
            file=sys.stderr,
        )
        return 1
    secret = store.create_tenant(args.client_id)
    print(json.dumps({"client_id": args.client_id, "client_secret": secret}))
    return 0


def cmd_tenants_rotate(args: argparse.Namespace) -> int:
    """Give a tenant a new secret, revoke every token it was issued, print the credentials."""
    from integrations.store import Store

    settings = _settings()
    _require_key(settings)
    store = Store(settings.database_url, settings.secret_key)
    secret = store.rotate_tenant(args.client_id)
    if secret is None:
        print(f"herald: no tenant {args.client_id!r}", file=sys.stderr)
        return 1
    print(json.dumps({"client_id": args.client_id, "client_secret": secret}))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """Show the database's schema revision, or upgrade it to the newest (``upgrade``)."""
    from integrations.migrate import current_revision, head_revision, migrate
    from integrations.store import make_engine

    engine = make_engine(_settings().database_url)
    try:
        if args.db_command == "upgrade":
            migrate(engine)
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    print(json.dumps({"current": current, "head": head, "upToDate": current == head}))
    return 0


def read_messages(text: str) -> list[str]:
    """Split ``text`` (one JSON object or an array of them) into message texts."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"herald publish: input is not JSON ({exc})") from None
    items = doc if isinstance(doc, list) else [doc]
    return [json.dumps(item) for item in items]


def cmd_publish(args: argparse.Namespace) -> int:
    """XADD entity changes to the stream, exactly as any producer would."""
    import redis

    settings = _settings()
    text = Path(args.file).read_text() if args.file and args.file != "-" else sys.stdin.read()
    client = redis.Redis.from_url(settings.redis_url)
    for message in read_messages(text):
        entry = client.xadd(settings.stream_key, {"message": message})
        entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
        print(json.dumps({"stream": settings.stream_key, "entry": entry_id}))
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """List malformed messages kept for an operator (any tenant)."""
    from api.views import activity_view
    from integrations.store import Store

    settings = _settings()
    _require_key(settings)
    store = Store(settings.database_url, settings.secret_key)
    for d in store.dead_letters(args.limit):
        view = activity_view(d)
        shown = ("id", "errorClass", "statusMessage", "createdTime", "message")
        print(json.dumps({k: view.get(k) for k in shown}))
    return 0


def cmd_sink(args: argparse.Namespace) -> int:
    """Print every request received on a loopback port, answering 200 (for demos and checks)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # answer at once, not after the client's delayed ACK

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            shown = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            if "Authorization" in self.headers:
                shown["Authorization"] = self.headers["Authorization"].split(" ")[0] + " ***"
            print(
                json.dumps(
                    {"method": self.command, "path": self.path, "headers": shown, "body": body},
                    indent=2,
                ),
                flush=True,
            )
            reply = json.dumps({"id": f"SINK-{int(time.time() * 1000)}", "received": True})
            self.send_response(args.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply.encode())

        do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _any

        def log_message(self, *_: object) -> None:  # the JSON above is the log
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"herald sink: listening on http://{args.host}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def parser() -> argparse.ArgumentParser:
    """The ``herald`` argument parser."""
    p = argparse.ArgumentParser(
        prog="herald", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"herald {herald_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, port in (("api", cmd_api, 8080), ("dev", cmd_dev, 8080)):
        sp = sub.add_parser(name, help=fn.__doc__)
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--port", type=int, default=port)
        if name == "dev":
            sp.add_argument("--concurrency", type=int, default=2)
        sp.set_defaults(fn=fn)
    sp = sub.add_parser("worker", help=cmd_worker.__doc__)
    # Anything else on the command line is passed to Celery (see main()).
    sp.set_defaults(fn=cmd_worker, celery_args=[])
    tenants = sub.add_parser("tenants", help="manage API tenants").add_subparsers(
        dest="tenants_command", required=True
    )
    sp = tenants.add_parser("create", help=cmd_tenants_create.__doc__)
    sp.add_argument("client_id")
    sp.set_defaults(fn=cmd_tenants_create)
    sp = tenants.add_parser("rotate", help=cmd_tenants_rotate.__doc__)
    sp.add_argument("client_id")
    sp.set_defaults(fn=cmd_tenants_rotate)
    sp = sub.add_parser("db", help=cmd_db.__doc__)
    sp.add_argument("db_command", choices=["current", "upgrade"])
    sp.set_defaults(fn=cmd_db)
    sp = sub.add_parser("publish", help=cmd_publish.__doc__)
    sp.add_argument("--file", "-f", help="JSON file (default: stdin)")
    sp.set_defaults(fn=cmd_publish)
    sp = sub.add_parser("sink", help=cmd_sink.__doc__)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=9000)
    sp.add_argument("--status", type=int, default=200)
    sp.set_defaults(fn=cmd_sink)
    sp = sub.add_parser("dead-letters", help=cmd_dead_letters.__doc__)
    sp.add_argument("--limit", type=int, default=100)
    sp.set_defaults(fn=cmd_dead_letters)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``herald`` console script."""
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra:
        if args.command != "worker":
            p.error(f"unrecognized arguments: {' '.join(extra)}")
        # Options for Celery (``herald worker --concurrency 4``) pass through untouched.
        args.celery_args = extra
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
