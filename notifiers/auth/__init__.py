"""Authentication of outbound requests: NONE, BASIC, OAUTH2 (three grants) and JWT.

Modules, each owning one concern:

* :mod:`~notifiers.auth.config` -- which OAuth2 grant a notifier uses and what it needs;
* :mod:`~notifiers.auth.tokens` -- :class:`CachedToken` and reading tokens from answers;
* :mod:`~notifiers.auth.cache` -- the :class:`TokenStore` protocol (Redis and in-memory) and
  :class:`TokenCache`, the renewal policy (one token request for many deliveries);
* :mod:`~notifiers.auth.oauth2` and :mod:`~notifiers.auth.jwt` -- the token endpoints;
* :mod:`~notifiers.auth.apply` -- :class:`Authenticator`: a notifier's auth headers;
* :mod:`~notifiers.auth.flow` -- :class:`NotifierAuth`, the ``httpx.Auth`` flow the sender
  uses, sync and async alike: headers, and one retry with a fresh token after a 401.

Every clock is injected (``now``, epoch seconds), so token expiry is tested without waiting.
"""

from notifiers.auth.apply import AppliedAuth, Authenticator, basic_auth, jwt_headers
from notifiers.auth.cache import MemoryTokenStore, RedisTokenStore, TokenCache, TokenStore
from notifiers.auth.config import OAuth2Config, effective_grant
from notifiers.auth.flow import NotifierAuth, auth_header_names
from notifiers.auth.jwt import JWTTokens
from notifiers.auth.oauth2 import OAuth2Tokens
from notifiers.auth.tokens import CachedToken, jwt_expiry, token_from_response

__all__ = [
    "AppliedAuth",
    "Authenticator",
    "CachedToken",
    "JWTTokens",
    "MemoryTokenStore",
    "NotifierAuth",
    "OAuth2Config",
    "OAuth2Tokens",
    "RedisTokenStore",
    "TokenCache",
    "TokenStore",
    "auth_header_names",
    "basic_auth",
    "effective_grant",
    "jwt_expiry",
    "jwt_headers",
    "token_from_response",
]
