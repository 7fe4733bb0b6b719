"""A real OAuth2 authorization server for tests, built on authlib's Flask integration.

It issues bearer tokens for the ``client_credentials``, ``password`` and ``refresh_token``
grants and protects a resource endpoint with them::

    with OAuthServer(expires_in=2) as auth:
        auth.add_client("cid", "secret")            # basic or post client authentication
        auth.add_user("alice", "pw")
        ...token endpoint: auth.token_url; protected endpoint: auth.resource_url...
        auth.token_requests["client_credentials"]   # requests per grant (also failed ones)
        auth.revoke()                               # every access token now gets 401
        auth.down = True                            # the token endpoint answers 503

The resource endpoint (any method, ``/api/resource`` and below) answers
``{"id": "T-1", "result": {"url": ...}}`` for a valid token and records the request in
``auth.resource_requests``; an unknown, expired or revoked token gets authlib's 401.

Runs werkzeug's threaded server on 127.0.0.1 with a free port, in a daemon thread.
``AUTHLIB_INSECURE_TRANSPORT`` is set because the test server speaks plain HTTP.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from flask import Flask, Response, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.support.serving import BackgroundServer

_METHODS = ["client_secret_basic", "client_secret_post", "none"]
ALL_GRANTS = ("client_credentials", "password", "refresh_token")


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str | None
    grant_types: tuple[str, ...] = ALL_GRANTS
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class Token(TokenMixin):  # type: ignore[misc]
    client_id: str
    access_token: str
    expires_in: int
    refresh_token: str | None = None
    user: str | None = None
    scope: str = ""
    issued_at: float = field(default_factory=time.time)
    revoked: bool = False
    refresh_revoked: bool = False
    refresh_expires_at: float = float("inf")

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str | None:
        return self.user

    def get_client(self) -> Any:
        return self.client_id


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # keep test output clean


class OAuthServer:
    """Token endpoint + protected resource on one loopback server (see module docstring)."""

    def __init__(self, *, expires_in: int = 3600, refresh_expires_in: float = float("inf")) -> None:
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
        self.expires_in = expires_in
        self.refresh_expires_in = refresh_expires_in
        self.down = False
        self.clients: dict[str, Client] = {}
        self.users: dict[str, str] = {}
        self.tokens: list[Token] = []
        self.token_requests: Counter[str] = Counter()
        self.resource_requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served: BackgroundServer | None = None
        self.port = 0

    # -- configuration

    def add_client(
        self,
        client_id: str,
        secret: str | None,
        *,
        grants: tuple[str, ...] = ALL_GRANTS,
        auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post"),
    ) -> Client:
        """Register a client; ``auth_methods`` limits how it may authenticate."""
        client = Client(client_id, secret, grants, auth_methods)
        self.clients[client_id] = client
        return client

    def add_user(self, username: str, password: str) -> None:
        """Register a resource owner for the password grant."""
        self.users[username] = password

    def revoke(self, access_token: str | None = None) -> None:
        """Revoke one access token, or all of them (refresh tokens stay valid)."""
        with self._lock:
            for token in self.tokens:
                if access_token is None or token.access_token == access_token:
                    token.revoked = True

    def revoke_refresh_tokens(self) -> None:
        """Make every refresh token issued so far invalid."""
        with self._lock:
            for token in self.tokens:
                token.refresh_revoked = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    @property
    def resource_url(self) -> str:
        return f"{self.url}/api/resource"

    @property
    def total_token_requests(self) -> int:
        return sum(self.token_requests.values())

    # -- authlib wiring

    def _find(self, **match: Any) -> Token | None:
        with self._lock:
            for token in self.tokens:
                if all(getattr(token, k) == v for k, v in match.items()):
                    return token
        return None

    def _build_app(self) -> Flask:
        app = Flask("herald-test-oauth")
        server_ref = self

        def query_client(client_id: str) -> Client | None:
            return server_ref.clients.get(client_id)

        def save_token(data: dict[str, Any], req: Any) -> None:
            token = Token(
                client_id=req.client.client_id,
                access_token=data["access_token"],
                expires_in=int(data["expires_in"]),
                refresh_token=data.get("refresh_token"),
                user=req.user,
                scope=data.get("scope", ""),
            )
            token.refresh_expires_at = time.time() + server_ref.refresh_expires_in
            with server_ref._lock:
                server_ref.tokens.append(token)

        authorization = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        authorization.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: os.urandom(18).hex(),
                refresh_token_generator=lambda **_: os.urandom(24).hex(),
                expires_generator=lambda client, grant_type: server_ref.expires_in,
            ),
        )

        class ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = _METHODS

        class Password(grants.ResourceOwnerPasswordCredentialsGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = _METHODS

            def authenticate_user(self, username: str, password: str) -> str | None:
                known = server_ref.users.get(username)
                return username if known is not None and known == password else None

        class Refresh(grants.RefreshTokenGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = _METHODS
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotate refresh tokens, as many servers do

            def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
                token = server_ref._find(refresh_token=refresh_token)
                if token is None or token.refresh_revoked:
                    return None
                if time.time() >= token.refresh_expires_at:
                    return None
                return token

            def authenticate_user(self, credential: Token) -> str | None:
                return credential.user

            def revoke_old_credential(self, credential: Token) -> None:
                credential.refresh_revoked = True

        authorization.register_grant(ClientCredentials)
        authorization.register_grant(Password)
        authorization.register_grant(Refresh)

        class Validator(BearerTokenValidator):  # type: ignore[misc]
            def authenticate_token(self, token_string: str) -> Token | None:
                return server_ref._find(access_token=token_string)

        protect = ResourceProtector()
        protect.register_token_validator(Validator())

        @app.post("/oauth/token")
        def issue_token() -> Any:
            grant = request.form.get("grant_type", "")
            with server_ref._lock:
                server_ref.token_requests[grant] += 1
            if server_ref.down:
                return Response(
                    '{"error": "temporarily_unavailable"}',
                    status=503,
                    headers={"Content-Type": "application/json", "Retry-After": "7"},
                )
            return authorization.create_token_response()

        @app.route(
            "/api/resource",
            defaults={"rest": ""},
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        )
        @app.route("/api/resource/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        def resource(rest: str) -> Any:
            with protect.acquire() as token:
                with server_ref._lock:
                    server_ref.resource_requests.append(
                        {
                            "method": request.method,
                            "path": request.full_path,
                            "headers": dict(request.headers),
                            "body": request.get_data(),
                            "user": token.user,
                        }
                    )
                return jsonify({"id": "T-1", "result": {"url": f"{server_ref.url}/tickets/T-1"}})

        return app

    # -- lifecycle

    def start(self) -> OAuthServer:
        """Start serving (idempotent)."""
        if self._served is None:
            server = make_server(
                "127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler
            )
            self.port = int(server.server_port)
            self._served = BackgroundServer(server)
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._served is not None:
            self._served.close()
            self._served = None

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
