"""SSRF guard: Herald never connects to an address the operator did not open.

Tenants choose delivery URLs, so without a guard a URL such as ``http://169.254.169.254/`` (cloud
metadata) or ``http://localhost:6379/`` (our own Redis) would make Herald attack its own network.

Three layers, all driven by :func:`check_address`:

* :func:`check_address` -- a pure decision on one IP address;
* :func:`check_literal_url` -- the API's save-time check of URLs whose host is an IP literal
  (no DNS: a name may resolve differently at delivery time anyway);
* :class:`GuardedTransport` -- the httpx transport every delivery and token request uses. It
  resolves the host itself, checks *every* resolved address and then connects to those very
  addresses, so DNS cannot change between the check and the connection (no DNS rebinding).
  :class:`notifiers.aio.GuardedConnector` does the same for the async (aiohttp) path, through
  the same :func:`checked_addresses`.

The connect-time check sits in an httpcore network backend rather than in a URL rewrite: the
connection pool stays keyed by host name, so TLS verification and SNI use the real name and a
pooled TLS connection verified for one name is never reused for another name on the same IP.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from integrations.errors import UnsafeURL
from notifiers.deadline import DeadlineStream

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Where the refusal message tells the operator to look.
ALLOW_HINT = "allow it with HERALD_ALLOWED_NETWORKS"


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


# Most specific first: the first match names the reason.
_BLOCKED_V4 = _nets(
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "this-network"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("169.254.169.254/32", "cloud metadata"),
    ("169.254.0.0/16", "link-local"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("198.18.0.0/15", "benchmarking"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_BLOCKED_V6 = _nets(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
    ("::/96", "IPv4-compatible (deprecated)"),
)
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def _allowed(ip: IPAddress, allowed_networks: Iterable[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in allowed_networks)


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries to its destination, if any."""
    if ip in _MAPPED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-mapped IPv6"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip in _SIX_TO_FOUR and ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip in _TEREDO and ip.teredo is not None:
        return ip.teredo[1], "Teredo"
    return None


def check_address(ip: str | IPAddress, allowed_networks: Iterable[Network] = ()) -> str | None:
    """Decide whether Herald may connect to ``ip``: ``None`` if allowed, else the reason.

    Refuses loopback, private, link-local (incl. cloud metadata), CGNAT, multicast,
    unspecified, reserved and broadcast addresses, and IPv6 addresses that embed one of those
    (IPv4-mapped, NAT64, 6to4, Teredo). ``allowed_networks`` opens ranges explicitly; an
    embedded IPv4 address inside an allowed IPv4 network is allowed too.
    """
    allowed = tuple(allowed_networks)
    try:
        addr = ip if not isinstance(ip, str) else ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return f"{ip!r} is not an IP address"
    if _allowed(addr, allowed):
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_v4(addr)
        if embedded is not None:
            inner, how = embedded
            reason = check_address(inner, allowed)
            return None if reason is None else f"{reason} via {how}"
        table = _BLOCKED_V6
    else:
        table = _BLOCKED_V4
    for net, label in table:
        if addr in net:
            return label
    # Whatever the tables miss but the IANA registries mark as not globally reachable.
    if not addr.is_global:
        return "not globally routable"
    return None


def refusal(ip: str, reason: str, host: str) -> UnsafeURL:
    """The :class:`UnsafeURL` error for a refused address, with the operator's way out."""
    return UnsafeURL(f"refused to connect to {ip} ({reason}) for host {host}; {ALLOW_HINT}")


_NUMERIC_V4_PART = re.compile(r"^(?:0[xX][0-9A-Fa-f]*|[0-9]+)$")


def literal_address(host: str) -> IPAddress | None:
    """The address an IP-literal host denotes, the way the OS reads it, without DNS.

    Besides dotted quads this accepts the legacy forms ``inet_aton`` understands and
    ``getaddrinfo`` therefore connects to: ``127.1``, ``2130706433``, ``0x7f000001``,
    ``0177.0.0.1``. ``localhost`` and ``*.localhost`` count as loopback (RFC 6761).
    Returns ``None`` for ordinary host names.
    """
    host = host.strip().rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost" or host.endswith(".localhost"):
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    parts = host.split(".")
    if 1 <= len(parts) <= 4 and all(_NUMERIC_V4_PART.match(p) for p in parts):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_literal_url(url: str, allowed_networks: Iterable[Network] = ()) -> str | None:
    """Save-time check of a URL whose host is an IP literal: ``None`` if fine, else the reason.

    Host names are not resolved here (``None``): the delivery-time guard checks them.
    """
    try:
        host = urlsplit(url if "://" in url else "https://" + url).hostname
    except ValueError:
        return "URL is not valid"
    if not host:
        return None
    addr = literal_address(host)
    if addr is None:
        return None
    reason = check_address(addr, allowed_networks)
    if reason is None:
        return None
    return f"{host} is {addr} ({reason}); {ALLOW_HINT}"


Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the OS resolver; returns unique addresses in the OS's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


def checked_addresses(
    host: str, port: int, resolver: Resolver, allowed_networks: Iterable[Network]
) -> list[str]:
    """Resolve ``host`` and return its addresses if *every* one passes :func:`check_address`.

    Raises :class:`UnsafeURL` for a refused address, ``httpcore.ConnectError`` when the name
    does not resolve. Shared by the sync backend and the async connector
    (:mod:`notifiers.aio`), so both guard the same way.
    """
    try:
        addresses = list(resolver(host, port))
    except (OSError, UnicodeError) as exc:
        # DNS failures are often transient: report them as connect errors (retryable).
        raise httpcore.ConnectError(f"cannot resolve host {host}: {exc}") from None
    if not addresses:
        raise httpcore.ConnectError(f"host {host} resolved to no address")
    for ip in addresses:
        reason = check_address(ip, allowed_networks)
        if reason is not None:
            raise refusal(ip, reason, host)
    return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that resolves, checks, then connects to checked addresses.

    Every address the name resolves to must pass :func:`check_address`: a name with one
    public and one private address is refused outright, since the OS could pick either.
    """

    def __init__(
        self,
        allowed_networks: Iterable[Network] = (),
        *,
        resolver: Resolver = system_resolver,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self.allowed_networks = tuple(allowed_networks)
        self._resolve = resolver
        self._inner = inner or httpcore.SyncBackend()

    def checked_addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return its addresses, or raise :class:`UnsafeURL`."""
        return checked_addresses(host, port, self._resolve, self.allowed_networks)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to the first reachable checked address of ``host``."""
        last: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for ip in self.checked_addresses(host, port):
            try:
                # An IP literal: the inner backend connects without another DNS lookup.
                stream = self._inner.connect_tcp(ip, port, timeout, local_address, socket_options)
                return DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # checked_addresses never returns an empty list
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Unix sockets are local by definition: always refused."""
        raise UnsafeURL(f"refused to connect to unix socket {path}")

    def sleep(self, seconds: float) -> None:
        """Delegate to the inner backend (httpcore uses it between retries)."""
        self._inner.sleep(seconds)


#: Sized for many threads sharing one client (a worker child may run 64 or more): every
#: thread can hold a connection, and that many stay open between batches instead of being
#: re-established (a TLS handshake each) once the first 20 are pooled.
DEFAULT_LIMITS = httpx.Limits(
    max_connections=256, max_keepalive_connections=128, keepalive_expiry=15.0
)


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose every connection goes through :class:`GuardedBackend`.

    Proxies are not supported on purpose: through a proxy the guard would only ever see the
    proxy's address. Pass ``trust_env=False`` to the client as well.
    """

    def __init__(
        self,
        allowed_networks: Iterable[Network] = (),
        *,
        verify: bool | str = True,
        limits: httpx.Limits | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        limits = limits or DEFAULT_LIMITS
        # One SSL context, shared by httpx's pool (discarded below) and ours: building one
        # loads the CA bundle, which is slow.
        ssl_context = (
            default_ssl_context()
            if verify is True
            else httpx.create_ssl_context(verify=verify, trust_env=False)
        )
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self.backend = GuardedBackend(allowed_networks, resolver=resolver)
        # httpx builds its pool without a network_backend argument; rebuild it with ours.
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )


@functools.lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """The verifying SSL context (certifi CA bundle), built once per process."""
    return httpx.create_ssl_context(verify=True, trust_env=False)
