"""The caller's address: X-Forwarded-For is believed only through proxies we trust."""
from __future__ import annotations

import ipaddress


def _parse(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address, trusted_proxies) -> bool:
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in trusted_proxies if network.version == address.version)


def client_address(request, trusted_proxies) -> str | None:
    """The right-most hop not in `trusted_proxies`, walking X-Forwarded-For from the peer inwards.

    A client can prepend anything to X-Forwarded-For, so only hops added by trusted proxies count;
    the first untrusted one is the client. An unparseable hop ends the walk at the last good one.
    """
    peer = _parse(request.remote_addr or "")
    if peer is None:
        return None
    current = peer
    if not _trusted(current, trusted_proxies):
        return str(current)
    hops = []
    for header in request.headers.getlist("X-Forwarded-For"):
        hops.extend(part for part in header.split(",") if part.strip())
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        current = address
        if not _trusted(current, trusted_proxies):
            break
    return str(current)
