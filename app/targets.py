"""What the user asked about: an IP literal or a domain name, parsed strictly.

Nothing is "fixed up" beyond trimming surrounding whitespace: `8.8.8`, `01.2.3.4`, `1.2.3.4/24`
and zone ids are refused, and a name without a dot never reaches DNS.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import idna

from .errors import InvalidTarget

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_TARGET_LENGTH = 1024  # longer input is refused before any parsing work
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_IP_LIKE = re.compile(r"^[0-9./]+$|:")
# Shared address space (RFC 6598) and 6to4/Teredo relays are not flagged by every Python version.
_EXTRA_RESERVED = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),
)


@dataclass(frozen=True)
class IPTarget:
    address: IPAddress
    kind = "ip"

    @property
    def text(self) -> str:
        return str(self.address)


@dataclass(frozen=True)
class DomainTarget:
    name: str      # ASCII (A-label) form, lower case, no trailing dot
    display: str   # as the user wrote it, trimmed (Unicode allowed)
    kind = "domain"

    @property
    def text(self) -> str:
        return self.display


def parse_target(raw: object) -> IPTarget | DomainTarget:
    if not isinstance(raw, str) or len(raw) > MAX_TARGET_LENGTH:
        raise InvalidTarget()
    text = raw.strip()
    if not text or not text.isprintable():
        raise InvalidTarget()
    if _IP_LIKE.search(text):
        return IPTarget(parse_ip(text))
    return DomainTarget(_parse_domain(text), text)


def parse_ip(text: str) -> IPAddress:
    if "%" in text or "/" in text:  # zone ids and prefixes are not addresses
        raise InvalidTarget("The target is not a valid IP address.")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
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


def is_reserved(address: IPAddress) -> bool:
    """True for addresses that never locate anyone on the public internet."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if address.ipv4_mapped is not None:
            return is_reserved(address.ipv4_mapped)
        if mapped is not None and is_reserved(mapped):
            return True
    if address.is_multicast or not address.is_global:
        return True
    return any(address in network for network in _EXTRA_RESERVED if network.version == address.version)
