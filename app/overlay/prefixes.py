"""Most-specific-prefix matching over a fixed set of networks: one dict per prefix length in use.

A lookup costs one shift and one dict probe per distinct prefix length in the table (longest
first), which is a handful for real geofeeds, with no tree to walk in Python.
"""
from __future__ import annotations

import ipaddress
from typing import Generic, Iterable, TypeVar

V = TypeVar("V")


class PrefixTable(Generic[V]):
    def __init__(self, items: Iterable[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, V]]):
        by_version: dict[int, dict[int, dict[int, V]]] = {4: {}, 6: {}}
        self._count = 0
        for network, value in items:
            width = network.max_prefixlen
            shift = width - network.prefixlen
            by_version[network.version].setdefault(shift, {})[int(network.network_address) >> shift] = value
            self._count += 1
        # (shift, entries) with the longest prefixes (smallest shifts) first.
        self._v4 = tuple(sorted(by_version[4].items()))
        self._v6 = tuple(sorted(by_version[6].items()))

    def __len__(self) -> int:
        return self._count

    def ipv4_ranges(self) -> list[tuple[int, int]]:
        """Every IPv4 network of the table as (first, last) integers, unsorted, overlapping as they are."""
        return [(key << shift, ((key + 1) << shift) - 1) for shift, entries in self._v4 for key in entries]

    def longest_match(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> V | None:
        if address.version == 6:
            mapped = address.ipv4_mapped  # ::ffff:a.b.c.d is the IPv4 address a.b.c.d
            if mapped is not None:
                address = mapped
        levels = self._v4 if address.version == 4 else self._v6
        value = int(address)
        for shift, entries in levels:
            found = entries.get(value >> shift)
            if found is not None:
                return found
        return None
