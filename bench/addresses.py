"""Seeded sets of random public IPv4 addresses, so two runs (or two machines) look up the same ones.

Drawn uniformly from the whole IPv4 space, skipping what `app.targets.is_reserved` refuses (the
service would answer 422 without touching the City DB, which is not what we time). IPv4 only:
uniform random IPv6 addresses almost never fall in an allocated block, so they would time the
"not found" path instead of a lookup.
"""
from __future__ import annotations

import ipaddress
import random

from app.targets import is_reserved

DEFAULT_SEED = 20260401


def public_ipv4(count: int, seed: int = DEFAULT_SEED) -> list[str]:
    rng = random.Random(seed)
    addresses: list[str] = []
    while len(addresses) < count:
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if not is_reserved(address):
            addresses.append(str(address))
    return addresses


def located(addresses: list[str], reader) -> list[str]:
    """The subset a City reader has a record for (the HTTP bench wants 200s, not 404s)."""
    return [address for address in addresses if reader.get(address) is not None]


def located_ipv6(count: int, reader, seed: int = DEFAULT_SEED, max_tries: int = 1_000_000) -> list[str]:
    """Random addresses in 2a00::/12 (RIPE's IPv6 block) that the reader has a record for."""
    rng = random.Random(seed)
    found: list[str] = []
    for _ in range(max_tries):
        address = ipaddress.IPv6Address((0x2A00 << 112) | rng.getrandbits(116))
        if not is_reserved(address) and reader.get(address) is not None:
            found.append(str(address))
            if len(found) == count:
                break
    return found
