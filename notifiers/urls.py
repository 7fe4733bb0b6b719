"""Where a delivery goes: the notifier's ``baseURI`` combined with the event's ``endPointURI``.

OpsRamp clients are loose about URLs: the seed itself pairs ``baseURI: www.google.com`` with
``endPointURI: www.google.com/update`` and means ``https://www.google.com/update``. The rules:

* an ``endPointURI`` with a scheme (``https://...``) is used as is;
* an ``endPointURI`` without a scheme whose first segment looks like a host (``a.b``,
  ``localhost``, an IP literal, ``host:port``) is absolute: ``https://`` is prepended;
* any other ``endPointURI`` is a path, appended to ``baseURI`` (a path below the base, not an
  RFC 3986 replacement, because ``baseURI`` usually carries an API prefix such as ``/api/now``);
* a ``baseURI`` without a scheme gets ``https://``.

Everything here is pure string work: no DNS, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

from integrations.errors import NotifierMisconfigured

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")
#: ``name.ext`` segments that are file names rather than hosts, when a baseURI exists to join
#: them to (``tickets.json``, ``oauth_token.do``, ``Service.asmx``).
_FILE_EXTENSIONS = frozenset(
    {"json", "xml", "php", "asp", "aspx", "asmx", "svc", "wsdl", "jsp", "do", "html", "htm"}
    | {"cgi", "txt", "csv", "action"}
)
SUPPORTED_SCHEMES = ("http", "https")


def _is_ip_literal(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def looks_like_host(segment: str) -> bool:
    """Whether the first segment of a scheme-less URL names a host rather than a path.

    ``localhost``, IP literals, ``host:port`` and dotted names whose last label is alphabetic
    (``www.google.com``) are hosts; ``v1.0``, ``update`` and ``api`` are not.
    """
    host = segment
    if host.startswith("["):
        return _is_ip_literal(host.split("]", 1)[0] + "]")
    if ":" in host:
        host, _, port = host.rpartition(":")
        if not _PORT.match(port):
            return False
        if host and all(_LABEL.match(label) for label in host.split(".")):
            return True  # "myhost:8080" names a host even without a dot
    if host.lower() == "localhost" or _is_ip_literal(host):
        return True
    labels = host.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    return labels[-1].isalpha() and len(labels[-1]) >= 2


def _with_scheme(url: str) -> str:
    if url.startswith("//"):
        return "https:" + url
    if _SCHEME.match(url):
        return url
    return "https://" + url


def _check_scheme(url: str, field: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise NotifierMisconfigured(
            f"{field} uses scheme {scheme!r}; only http and https are supported"
        )
    if not urlsplit(url).hostname:
        raise NotifierMisconfigured(f"{field} {redact_url(url)!r} has no host")
    return url


def _join(base: str, path: str) -> str:
    b = urlsplit(base)
    p = urlsplit(path)
    joined_path = b.path.rstrip("/") + "/" + p.path.lstrip("/")
    query = "&".join(q for q in (b.query, p.query) if q)
    return urlunsplit((b.scheme, b.netloc, joined_path, query, p.fragment))


def resolve_url(base_uri: str | None, end_point_uri: str | None) -> str:
    """Combine ``notifier.baseURI`` and the event's ``endPointURI`` into an absolute URL.

    Raises :class:`NotifierMisconfigured` naming ``endPointURI`` when neither is given, when a
    relative ``endPointURI`` has no ``baseURI`` to join, or when the scheme is not http(s).
    """
    base = (base_uri or "").strip()
    end = (end_point_uri or "").strip()
    if not end:
        if not base:
            raise NotifierMisconfigured("endPointURI is required (notifier.baseURI is not set)")
        return _check_scheme(_with_scheme(base), "notifier.baseURI")
    if _SCHEME.match(end) or end.startswith("//"):
        return _check_scheme(_with_scheme(end), "endPointURI")
    first = re.split(r"[/?#]", end, maxsplit=1)[0]
    if not end.startswith("/") and looks_like_host(first) and not _is_file_name(first, base):
        scheme = "https"
        if base and _SCHEME.match(base) and urlsplit(base).netloc.lower() == first.lower():
            # Same host as an explicit-scheme baseURI ("http://h" + "h/x"): keep its scheme.
            scheme = base.split("://", 1)[0].lower()
        return _check_scheme(f"{scheme}://{end}", "endPointURI")
    if not base:
        raise NotifierMisconfigured(
            f"endPointURI {end!r} is a relative path and notifier.baseURI is not set"
        )
    return _check_scheme(_join(_with_scheme(base), end), "endPointURI")


def _is_file_name(segment: str, base: str) -> bool:
    # "tickets.json" is a host only if there is nothing to join it to.
    if not base:
        return False
    labels = segment.split(".")
    return len(labels) == 2 and labels[1].lower() in _FILE_EXTENSIONS


def redact_url(url: str) -> str:
    """The URL without user info, query or fragment: safe to log and to put in a reason."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = "..." if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
