import ipaddress

import pytest

from app.errors import InvalidTarget
from app.targets import DomainTarget, IPTarget, is_reserved, parse_target


@pytest.mark.parametrize("raw, expected", [
    ("8.8.8.8", "8.8.8.8"),
    ("  81.2.69.160\t\n", "81.2.69.160"),
    ("2001:218::1", "2001:218::1"),
    ("2001:0218:0000::0001", "2001:218::1"),
    ("::ffff:81.2.69.160", "::ffff:5102:45a0"),
])
def test_ip_literals(raw, expected):
    target = parse_target(raw)
    assert isinstance(target, IPTarget) and target.text == expected


@pytest.mark.parametrize("raw", [
    "8.8.8", "01.2.3.4", "1.2.3.4/24", "fe80::1%eth0", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", ":::", "2001:db8::/32",
    "", "   ", "8.8.8.8 8.8.4.4", "localhost", "tz_world", "exa mple.com", "<script>.com", "a..b.com",
    "-bad.example", "bad-.example", "a" * 64 + ".example", ("a" * 63 + ".") * 4 + "com", "example.123",
    "example.com\x00", "exam\nple.com", None, 12, ["8.8.8.8"], "x" * 5000,
])
def test_invalid_targets(raw):
    with pytest.raises(InvalidTarget):
        parse_target(raw)


def test_domains_are_idna_encoded():
    target = parse_target("bücher.example")
    assert isinstance(target, DomainTarget)
    assert target.name == "xn--bcher-kva.example" and target.display == "bücher.example"
    assert parse_target("Example.COM.").name == "example.com"


def test_length_limits():
    label = "a" * 63
    ok = ".".join([label, label, label, "b" * 57, "com"])  # 253 characters
    assert len(ok) == 253 and parse_target(ok).name == ok
    with pytest.raises(InvalidTarget):
        parse_target(ok[:-3] + "comm")  # 254


@pytest.mark.parametrize("text", [
    "10.0.0.1", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1", "224.0.0.1", "239.1.1.1", "0.0.0.0",
    "255.255.255.255", "192.0.2.1", "198.51.100.1", "203.0.113.1", "100.64.0.1", "100.127.255.255", "198.18.0.1",
    "240.0.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1", "::ffff:10.0.0.1",
    "::ffff:127.0.0.1", "2002:0a00:0001::1", "64:ff9b:1::1",
])
def test_reserved_addresses(text):
    assert is_reserved(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", [
    "8.8.8.8", "81.2.69.160", "100.128.0.1", "100.63.255.255", "172.32.0.1", "172.15.255.255", "192.0.3.1",
    "2001:218::1", "2a02:d5c0::1", "::ffff:81.2.69.160",
])
def test_routable_addresses(text):
    assert not is_reserved(ipaddress.ip_address(text))


def test_reserved_agrees_with_ipaddress_on_random_addresses():
    """The fast range table matches Python's own is_global, but for documented deliberate choices."""
    import random
    rnd = random.Random(7)
    deliberate = [ipaddress.ip_network(n) for n in ("192.0.0.0/24", "2001::/23", "64:ff9b::/96")]
    checked = 0
    for _ in range(100_000):
        address = ipaddress.IPv4Address(rnd.getrandbits(32))
        assert is_reserved(address) == (not address.is_global or address.is_multicast), address
    for _ in range(50_000):
        address = ipaddress.IPv6Address((1 << 125) | rnd.getrandbits(125))  # inside 2000::/3
        if any(address in net for net in deliberate if net.version == 6):
            continue
        assert is_reserved(address) == (not address.is_global or address.is_multicast), address
        checked += 1
    assert checked > 40_000
    # Outside 2000::/3 nothing is allocated for unicast: Python calls unallocated space global, we do not.
    for _ in range(1000):
        address = ipaddress.IPv6Address(rnd.getrandbits(125) | (rnd.choice([0, 2, 3, 4, 5, 6, 7]) << 125))
        assert is_reserved(address)
