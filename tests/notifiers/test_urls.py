from __future__ import annotations

import pytest

from integrations.errors import NotifierMisconfigured
from notifiers.urls import looks_like_host, redact_url, resolve_url


@pytest.mark.parametrize(
    ("base", "end", "expected"),
    [
        # the seed's own sample
        ("www.google.com", "www.google.com/update", "https://www.google.com/update"),
        # absolute endPointURI wins
        ("https://a.example", "http://b.example:8080/x?q=1", "http://b.example:8080/x?q=1"),
        (None, "https://b.example/x", "https://b.example/x"),
        ("https://a.example", "//b.example/x", "https://b.example/x"),
        # scheme-less host-looking endPointURI (same host as an explicit base: its scheme)
        ("http://www.google.com", "www.google.com/update", "http://www.google.com/update"),
        ("http://a.example", "b.example/update", "https://b.example/update"),
        (None, "hooks.example.com/in", "https://hooks.example.com/in"),
        ("https://a.example/api", "b.example.org", "https://b.example.org"),
        (None, "localhost:8080/x", "https://localhost:8080/x"),
        (None, "localhost/x", "https://localhost/x"),
        (None, "10.1.2.3/x", "https://10.1.2.3/x"),
        (None, "[::1]:8443/x", "https://[::1]:8443/x"),
        (None, "myhost:8080/x", "https://myhost:8080/x"),
        # paths joined below the base
        (
            "https://a.example/api/now",
            "/table/incident",
            "https://a.example/api/now/table/incident",
        ),
        (
            "https://a.example/api/now/",
            "table/incident",
            "https://a.example/api/now/table/incident",
        ),
        ("a.example", "/update", "https://a.example/update"),
        ("a.example", "update", "https://a.example/update"),
        ("http://a.example:81", "v1.0/tickets", "http://a.example:81/v1.0/tickets"),
        ("https://a.example", "tickets.json", "https://a.example/tickets.json"),
        ("https://a.example", "Service.asmx", "https://a.example/Service.asmx"),
        ("https://a.example/x?key=1", "/y?z=2#f", "https://a.example/x/y?key=1&z=2#f"),
        # no endPointURI: the base itself
        ("www.google.com", None, "https://www.google.com"),
        ("http://a.example/hook", "", "http://a.example/hook"),
        ("  a.example  ", "  /x  ", "https://a.example/x"),
    ],
)
def test_resolve_url(base: str | None, end: str | None, expected: str) -> None:
    assert resolve_url(base, end) == expected


@pytest.mark.parametrize(
    ("base", "end", "needle"),
    [
        (None, None, "endPointURI"),
        ("", "  ", "endPointURI"),
        (None, "/update", "endPointURI"),
        (None, "update", "endPointURI"),
        (None, "ftp://a.example/x", "ftp"),
        ("ftp://a.example", None, "ftp"),
        (None, "https:///nohost", "no host"),
    ],
)
def test_resolve_url_errors(base: str | None, end: str | None, needle: str) -> None:
    with pytest.raises(NotifierMisconfigured) as info:
        resolve_url(base, end)
    assert needle in info.value.reason


@pytest.mark.parametrize(
    ("segment", "is_host"),
    [
        ("www.google.com", True),
        ("localhost", True),
        ("LOCALHOST:80", True),
        ("127.0.0.1", True),
        ("[::1]", True),
        ("host:8080", True),
        ("update", False),
        ("v1.0", False),
        ("api:v2", False),
        ("a..b", False),
        ("", False),
    ],
)
def test_looks_like_host(segment: str, is_host: bool) -> None:
    assert looks_like_host(segment) is is_host


def test_redact_url_hides_credentials_and_query() -> None:
    assert (
        redact_url("https://user:pw@a.example:8443/p?api_key=secret#frag")
        == "https://a.example:8443/p?..."
    )
    assert redact_url("http://[::1]:80/x") == "http://[::1]:80/x"
