"""What the user asked about: an IP literal or a domain name, parsed strictly.

Nothing is "fixed up" beyond trimming surrounding whitespace: `8.8.8`, `01.2.3.4`, `1.2.3.4/24`
and zone ids are refused, and a name without a dot never reaches DNS.
"""
from __future__ import annotations

import bisect
import ipaddress
import re
import socket
from dataclasses import dataclass

import idna

from .errors import InvalidTarget

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_TARGET_LENGTH = 1024  # longer input is refused before any parsing work
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_IP_LIKE = re.compile(r"^[0-9./]+$|:")
_inet_pton, _AF_INET = socket.inet_pton, socket.AF_INET


class IPTarget:
    """An IP literal: the address and its canonical text. A plain slotted class, not a frozen
    dataclass: it is built on every lookup, and a frozen dataclass's __init__ costs several times more."""

    __slots__ = ("address", "text")
    kind = "ip"

    def __init__(self, address: IPAddress, text: str | None = None):
        self.address = address
        self.text = text or str(address)

    def __repr__(self) -> str:
        return f"IPTarget({self.address!r}, {self.text!r})"


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
        return IPTarget(ipaddress.IPv4Address(int.from_bytes(_inet_pton(_AF_INET, raw), "big")), raw)
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
        return IPTarget(address, text if address.version == 4 else str(address))
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
# Only 2000::/3 is global unicast; inside it, these are special-purpose.
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_RESERVED_V6 = _ranges("2001::/23 2001:db8::/32 2002::/16 3fff::/20")


def _in_ranges(value: int, ranges) -> bool:
    starts, ends = ranges
    index = bisect.bisect_right(starts, value) - 1
    return index >= 0 and value <= ends[index]


def is_reserved(address: IPAddress) -> bool:
    """True for addresses that never locate anyone on the public internet."""
    if address.version == 4:
        return _in_ranges(int(address), _RESERVED_V4)
    if address.ipv4_mapped is not None:
        return is_reserved(address.ipv4_mapped)
    return address not in _GLOBAL_UNICAST_V6 or _in_ranges(int(address), _RESERVED_V6)
