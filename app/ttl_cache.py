"""A bounded LRU whose entries expire: what the lookup service keeps of DNS answers that carry a
TTL (hostnames). Reads and writes without a lock, like the service's other caches: an entry lost
to a race between threads is only asked for again."""
from __future__ import annotations

import time
from collections import OrderedDict


class TtlCache:
    def __init__(self, capacity: int, clock=time.monotonic):
        self.capacity = capacity
        self._clock = clock
        self._entries: OrderedDict = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key):
        found = self._entries.get(key)
        if found is not None:
            value, expires = found
            if self._clock() < expires:
                self.hits += 1
                try:
                    self._entries.move_to_end(key)
                except KeyError:
                    pass
                return value
            self._entries.pop(key, None)
        self.misses += 1
        return None

    def put(self, key, value, ttl: float) -> None:
        """Keep `value` for `ttl` seconds; a ttl of 0 (or a cache of no capacity) keeps nothing."""
        if ttl <= 0 or self.capacity <= 0:
            return
        entries = self._entries
        entries[key] = (value, self._clock() + ttl)
        entries.move_to_end(key)
        while len(entries) > self.capacity:
            try:
                entries.popitem(last=False)
            except KeyError:
                break

    def info(self) -> dict:
        return {"entries": len(self._entries), "capacity": self.capacity, "hits": self.hits, "misses": self.misses}
