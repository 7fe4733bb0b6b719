"""SSRF guard: the pure decision table, and end to end against loopback servers only."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from integrations.config import Settings
from integrations.errors import PermanentError, UnsafeURL
from notifiers.aio import GuardedAiohttpTransport
from notifiers.safety import (
    GuardedBackend,
    check_address,
    check_literal_url,
    literal_address,
)
from notifiers.sender import Sender
from tests.notifiers.conftest import SendPath, outbound
from tests.support.sinks import RecordingSink, Reply

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("ip", "label"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "this-network"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private (unique local)"),
        ("fd12:3456::1", "private (unique local)"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("::ffff:127.0.0.1", "loopback via IPv4-mapped IPv6"),
        ("::ffff:10.0.0.1", "private via IPv4-mapped IPv6"),
        ("::ffff:169.254.169.254", "cloud metadata via IPv4-mapped IPv6"),
        ("::ffff:0.0.0.0", "unspecified via IPv4-mapped IPv6"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata via NAT64"),
        ("64:ff9b::7f00:1", "loopback via NAT64"),
        ("2002:7f00:1::", "loopback via 6to4"),
        ("2002:c0a8:101::1", "private via 6to4"),
        # Teredo: client 127.0.0.1 is stored inverted (0x80ffffe)
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback via Teredo"),
        ("::127.0.0.1", "IPv4-compatible (deprecated)"),
    ],
)
def test_blocked_addresses(ip: str, label: str) -> None:
    assert check_address(ip, ()) == label


@pytest.mark.parametrize(
    "ip", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert check_address(ip, ()) is None


def test_allowed_networks_open_ranges() -> None:
    nets = (ipaddress.ip_network("10.1.0.0/16"), *LOOPBACK)
    assert check_address("10.1.2.3", nets) is None
    assert check_address("10.2.0.1", nets) == "private"
    assert check_address("127.0.0.1", nets) is None
    assert check_address("::1", nets) is None
    # a mapped address whose IPv4 destination is allowed is allowed too
    assert check_address("::ffff:127.0.0.1", nets) is None
    # ... but allowing loopback does not allow "unspecified" or metadata
    assert check_address("0.0.0.0", nets) == "unspecified"
    assert check_address("169.254.169.254", nets) == "cloud metadata"


def test_not_an_address() -> None:
    assert check_address("example.com", ()) == "'example.com' is not an IP address"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("localhost", "127.0.0.1"),
        ("api.localhost", "127.0.0.1"),
        ("example.com", None),
        ("cafe.be", None),
        ("1.2.3.4.5", None),
    ],
)
def test_literal_address_reads_like_the_os(host: str, expected: str | None) -> None:
    got = literal_address(host)
    assert (None if got is None else str(got)) == expected


def test_literal_address_agrees_with_getaddrinfo() -> None:
    # getaddrinfo on an IP literal does no DNS: safe to compare against.
    for host in ("127.1", "2130706433", "0x7f000001", "0177.0.0.1"):
        resolved = socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)[0][4][0]
        assert str(literal_address(host)) == resolved


@pytest.mark.parametrize(
    ("url", "blocked"),
    [
        ("http://127.0.0.1:8080/x", True),
        ("https://169.254.169.254/latest/meta-data", True),
        ("http://[::ffff:10.0.0.1]/", True),
        ("http://2130706433/", True),
        ("http://localhost/", True),
        ("10.0.0.5/x", True),
        ("https://93.184.216.34/", False),
        ("https://www.google.com/update", False),  # a name: decided at delivery time
    ],
)
def test_check_literal_url(url: str, blocked: bool) -> None:
    reason = check_literal_url(url, ())
    assert (reason is not None) is blocked
    if blocked:
        assert reason is not None and "HERALD_ALLOWED_NETWORKS" in reason


def test_backend_checks_every_resolved_address() -> None:
    # A name resolving to one public and one private address is refused outright.
    backend = GuardedBackend((), resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(UnsafeURL) as info:
        backend.connect_tcp("rebind.example", 443)
    assert "10.0.0.7 (private) for host rebind.example" in info.value.reason


def test_backend_connects_to_the_checked_address(sink: RecordingSink) -> None:
    # The resolver is called once; the connection goes to what it returned and was checked.
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    backend = GuardedBackend(LOOPBACK, resolver=resolver)
    stream = backend.connect_tcp("anything.invalid", sink.port, timeout=2)
    stream.close()
    assert calls == ["anything.invalid"]


SSRF_HOSTS = [
    "localhost",
    "127.1",
    "0.0.0.0",
    "[::ffff:127.0.0.1]",
    "2130706433",
    "0x7f000001",
    "127.0.0.1",
]


@pytest.mark.parametrize("host", SSRF_HOSTS)
def test_loopback_forms_are_refused_before_connecting(
    guarded_settings: Settings, sink: RecordingSink, host: str, path: SendPath
) -> None:
    with Sender(guarded_settings) as sender, pytest.raises(UnsafeURL) as info:
        path(sender, outbound(f"http://{host}:{sink.port}/hook"))
    reason = info.value.reason
    assert reason.startswith("refused to connect to ")
    assert "HERALD_ALLOWED_NETWORKS" in reason
    assert isinstance(info.value, PermanentError)
    assert sink.count == 0


def test_localhost_refusal_message(
    guarded_settings: Settings, sink: RecordingSink, path: SendPath
) -> None:
    with Sender(guarded_settings) as sender, pytest.raises(UnsafeURL) as info:
        path(sender, outbound(f"http://localhost:{sink.port}/"))
    assert info.value.reason == (
        "refused to connect to 127.0.0.1 (loopback) for host localhost; "
        "allow it with HERALD_ALLOWED_NETWORKS"
    )


def test_ipv6_loopback_refused_then_allowed(guarded_settings: Settings, path: SendPath) -> None:
    with RecordingSink(host="::1") as sink6:
        with Sender(guarded_settings) as sender, pytest.raises(UnsafeURL) as info:
            path(sender, outbound(f"{sink6.url}/hook"))
        assert "::1 (loopback)" in info.value.reason
        assert sink6.count == 0
        opened = dataclasses.replace(guarded_settings, allowed_networks=LOOPBACK)
        with Sender(opened) as sender:
            assert path(sender, outbound(f"{sink6.url}/hook")).http_status == 200
        assert sink6.count == 1


@pytest.mark.parametrize(
    "host", ["localhost", "127.1", "[::ffff:127.0.0.1]", "2130706433", "0x7f000001"]
)
def test_loopback_forms_succeed_when_allowed(
    settings: Settings, sink: RecordingSink, host: str, path: SendPath
) -> None:
    assert settings.allowed_networks  # the shared fixture opens loopback
    with Sender(settings) as sender:
        response = path(sender, outbound(f"http://{host}:{sink.port}/hook"))
    assert response.http_status == 200
    assert sink.count == 1


def test_unspecified_needs_its_own_allowance(
    settings: Settings, sink: RecordingSink, path: SendPath
) -> None:
    # Allowing loopback does not allow 0.0.0.0, even though Linux routes it to loopback.
    with Sender(settings) as sender, pytest.raises(UnsafeURL):
        path(sender, outbound(f"http://0.0.0.0:{sink.port}/"))
    assert sink.count == 0


def test_redirect_to_loopback_is_not_followed(settings: Settings, path: SendPath) -> None:
    with RecordingSink() as first, RecordingSink() as second:
        first.reply(Reply.redirect(f"{second.url}/elsewhere"))
        with Sender(settings) as sender, pytest.raises(PermanentError) as info:
            path(sender, outbound(f"{first.url}/hook"))
        assert info.value.error_class == "http_302"
        assert f"redirect to {second.url}/elsewhere not followed" in info.value.reason
        assert first.count == 1
        assert second.count == 0


def test_token_endpoint_is_guarded_too(
    guarded_settings: Settings, sink: RecordingSink, path: SendPath
) -> None:
    with Sender(guarded_settings) as sender, pytest.raises(UnsafeURL):
        path(
            sender,
            outbound(
                f"{sink.url}/never-reached",
                authType="OAUTH2",
                grantType="CLIENT_CREDENTIALS",
                accessTokenURL=f"http://127.0.0.1:{sink.port}/token",
                apiKey="id",
                apiSecret="secret",
            ),
        )
    assert sink.count == 0


BLOCKED_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "0.0.0.0/8",
    )
]


@given(st.ip_addresses(v=4))
@hypothesis_settings(max_examples=300, deadline=None)
def test_mapped_and_nat64_forms_decide_like_ipv4(ip: ipaddress.IPv4Address) -> None:
    plain = check_address(ip, ())
    for wrapped in (f"::ffff:{ip}", str(ipaddress.IPv6Address(int(ip) | (0x64FF9B << 96)))):
        assert (check_address(wrapped, ()) is None) == (plain is None)
    if any(ip in net for net in BLOCKED_V4):
        assert plain is not None


@given(st.sampled_from(BLOCKED_V4).flatmap(lambda net: st.ip_addresses(network=net)))
@hypothesis_settings(max_examples=200, deadline=None)
def test_every_address_of_a_blocked_range_is_refused(ip: ipaddress.IPv4Address) -> None:
    assert check_address(ip, ()) is not None
    assert check_address(ip, (ipaddress.ip_network(f"{ip}/32"),)) is None


def _async_send(settings: Settings, transport: GuardedAiohttpTransport, url: str) -> int:
    async def go() -> int:
        sender = Sender(settings, async_transport=transport)
        try:
            return (await sender.send_async(outbound(url))).http_status
        finally:
            await sender.aclose()
            sender.close()

    return asyncio.run(go())


def test_async_connector_checks_every_resolved_address(guarded_settings: Settings) -> None:
    transport = GuardedAiohttpTransport(
        (), resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"]
    )
    with pytest.raises(UnsafeURL) as info:
        _async_send(guarded_settings, transport, "http://rebind.example/hook")
    assert "10.0.0.7 (private) for host rebind.example" in info.value.reason


def test_async_connector_connects_to_the_checked_address(
    settings: Settings, sink: RecordingSink
) -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    transport = GuardedAiohttpTransport(LOOPBACK, resolver=resolver)
    assert _async_send(settings, transport, f"http://anything.invalid:{sink.port}/") == 200
    assert calls == ["anything.invalid"]
    assert sink.requests[0].header("Host") == f"anything.invalid:{sink.port}"
