"""What the user asked about: an IP literal or a domain name, parsed strictly.

Nothing is "fixed up" beyond trimming surrounding whitespace: `8.8.8`, `01.2.3.4`, `1.2.3.4/24`
and zone ids are refused, and a name without a dot never reaches DNS.
"""
from __future__ import annotations

from bisect import bisect_right as _bisect_right
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import NamedTuple

import idna

from .errors import InvalidTarget

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_TARGET_LENGTH = 1024  # longer input is refused before any parsing work
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_IP_LIKE = re.compile(r"^[0-9./]+$|:")
_inet_pton, _AF_INET = socket.inet_pton, socket.AF_INET


class IPTarget(NamedTuple):
    """An IP literal: the address as an integer with its IP version, and its canonical text. The
    lookup path works on the integer (the reserved check, the databases' trees); an ipaddress
    object is made only when something asks for `address` (the overlay, hostnames). A tuple: it
    is built on every lookup, and an ipaddress object or a class's __init__ costs more than the
    tree walk."""

    value: int
    version: int
    text: str
    kind = "ip"

    @classmethod
    def of(cls, address: IPAddress) -> "IPTarget":
        return _new(cls, (int(address), address.version, str(address)))

    @property
    def address(self) -> IPAddress:
        return address_of(self.value, self.version)


def address_of(value: int, version: int) -> IPAddress:
    """The ipaddress object of an address given as its integer and IP version (ip_address(value)
    would take ::1 for 0.0.0.1)."""
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


_new = tuple.__new__  # IPTarget(...) is a Python-level __new__; tuple.__new__(IPTarget, values) is C


@dataclass(frozen=True)
class DomainTarget:
    name: str      # ASCII (A-label) form, lower case, no trailing dot
    display: str   # as the user wrote it, trimmed (Unicode allowed)
    kind = "domain"

    @property
    def text(self) -> str:
        return self.display


def parse_target(raw: object) -> IPTarget | DomainTarget:
    try:
        # Most targets are dotted quads, and inet_pton accepts nothing else (no whitespace, no
        # leading zeros, no short forms): one C call settles them.
        return _new(IPTarget, (int.from_bytes(_inet_pton(_AF_INET, raw), "big"), 4, raw))
    except (OSError, TypeError, ValueError):
        pass
    if not isinstance(raw, str) or len(raw) > MAX_TARGET_LENGTH:
        raise InvalidTarget()
    text = raw.strip()
    if not text or not text.isprintable():
        raise InvalidTarget()
    if _IP_LIKE.search(text):
        address = parse_ip(text)
        # inet_pton accepted it, so a dotted quad is already canonical; IPv6 text is not.
        return _new(IPTarget, (int(address), address.version, text if address.version == 4 else str(address)))
    return DomainTarget(_parse_domain(text), text)


def parse_ip(text: str) -> IPAddress:
    if "%" in text or "/" in text:  # zone ids and prefixes are not addresses
        raise InvalidTarget("The target is not a valid IP address.")
    # inet_pton is as strict as ipaddress (no leading zeros, no short forms) and much faster.
    try:
        if ":" in text:
            return ipaddress.IPv6Address(int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big"))
        return ipaddress.IPv4Address(int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"))
    except (OSError, ValueError):
        raise InvalidTarget("The target is not a valid IP address.") from None


def _parse_domain(text: str) -> str:
    name = text[:-1] if text.endswith(".") else text
    try:
        ascii_name = idna.encode(name, uts46=True, std3_rules=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise InvalidTarget("The target is not a valid domain name.") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidTarget("A domain name needs at least one dot; single-label names are not looked up.")
    if len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidTarget("The target is not a valid domain name.")
    if labels[-1].isdigit():
        raise InvalidTarget("The target is not a valid domain name.")
    return ascii_name


def _ranges(cidrs: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    networks = sorted(ipaddress.ip_network(cidr) for cidr in cidrs.split())
    return (tuple(int(n.network_address) for n in networks), tuple(int(n.broadcast_address) for n in networks))


# IANA's special-purpose registries (RFC 6890 and successors): nothing here locates anyone.
# Kept as integer ranges and searched with bisect: ipaddress's is_global walks lists of network
# objects and costs more than the City lookup itself.
_RESERVED_V4 = _ranges("""
    0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24 192.0.2.0/24
    192.88.99.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24 224.0.0.0/4 240.0.0.0/4
""")
# Special-purpose ranges inside 2000::/3, the only global unicast space.
_RESERVED_V6 = _ranges("2001::/23 2001:db8::/32 2002::/16 3fff::/20")


def _in_ranges(value: int, ranges) -> bool:
    starts, ends = ranges
    index = _bisect_right(starts, value) - 1
    return index >= 0 and value <= ends[index]


def reserved_ipv4_ranges() -> list[tuple[int, int]]:
    """The reserved IPv4 ranges as (first, last) integers, sorted (for a caller that searches them in C)."""
    return list(zip(*_RESERVED_V4))


def is_reserved(address: IPAddress) -> bool:
    """True for addresses that never locate anyone on the public internet."""
    return reserved(int(address), address.version)


_V4_MAPPED = 0xFFFF  # ::ffff:a.b.c.d, above the low 32 bits


def reserved(value: int, version: int) -> bool:
    """is_reserved for an address given as its integer and IP version (the lookup path's form)."""
    if version == 4:  # every lookup: _in_ranges, without the call
        starts, ends = _RESERVED_V4
        index = _bisect_right(starts, value) - 1
        return index >= 0 and value <= ends[index]
    if value >> 32 == _V4_MAPPED:
        return _in_ranges(value & 0xFFFFFFFF, _RESERVED_V4)
    # Only 2000::/3 is global unicast (its first three bits are 001); inside it, special-purpose ranges.
    return value >> 125 != 1 or _in_ranges(value, _RESERVED_V6)
