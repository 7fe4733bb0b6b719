"""Herald's exception tree.

One root, :class:`HeraldError`, split by what the caller does next:

* :class:`RetryableError` -- the same work may succeed later (timeouts, 5xx, 429, a token
  server that is down). The worker schedules another attempt.
* :class:`PermanentError` -- trying again cannot help (a 4xx, a refused URL, bad credentials,
  invalid input). The worker stops and records the reason.

Every error carries a human ``reason`` that is safe to show an operator: it never contains a
secret. Delivery errors also carry what the remote side answered, for the activity log.
"""

from __future__ import annotations

from collections.abc import Mapping

from rules.errors import RuleError


class HeraldError(Exception):
    """Root of every error Herald raises on purpose."""

    #: A short, stable class name for the activity log ("timeout", "http_503", "soap_fault", ...).
    error_class: str = "error"

    def __init__(
        self,
        reason: str,
        *,
        error_class: str | None = None,
        http_status: int | None = None,
        response_excerpt: str = "",
        response_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if error_class is not None:
            self.error_class = error_class
        self.http_status = http_status
        self.response_excerpt = response_excerpt
        self.response_headers = dict(response_headers or {})

    def __str__(self) -> str:
        return self.reason


class RetryableError(HeraldError):
    """The work may succeed if tried again later."""

    error_class = "retryable"

    def __init__(self, reason: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(reason, **kwargs)  # type: ignore[arg-type]
        #: Seconds the remote side asked us to wait (``Retry-After``), when it said so.
        self.retry_after = retry_after


class PermanentError(HeraldError):
    """Trying again cannot help; give up and record why."""

    error_class = "permanent"


class InvalidInput(PermanentError):
    """Input (API body or queue message) that does not fit the model.

    ``field`` is a dotted path such as ``filterCriteria.rules[1].value``.
    """

    error_class = "invalid_input"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.problem = reason

    @classmethod
    def from_rule_error(cls, exc: RuleError) -> InvalidInput:
        """The rule engine's error (which cannot know Herald's tree) as Herald's own."""
        return cls(exc.field, exc.problem)


class UnsafeURL(PermanentError):
    """A delivery URL that resolves to an address Herald refuses to connect to (SSRF guard)."""

    error_class = "unsafe_url"


class NotifierMisconfigured(PermanentError):
    """The notifier lacks a field that its auth type or grant needs."""

    error_class = "notifier_misconfigured"


class AuthenticationFailed(PermanentError):
    """The token endpoint refused the credentials (``invalid_client``, ``invalid_grant``...)."""

    error_class = "auth_failed"


class TokenEndpointUnavailable(RetryableError):
    """The token endpoint failed in a way that may pass (5xx, timeout, connection refused)."""

    error_class = "token_unavailable"
