"""The DNS adapter: every A and AAAA address of a name, asked concurrently within one time budget.

dnspython does the work; its LRUCache keeps answers per worker for their TTL. The two queries
run on a shared thread pool (`DNS_POOL_SIZE` threads per worker) so a name costs one round trip.

The budget (`DNS_TIMEOUT`) bounds the whole answer: the caller passes the `Deadline` its request
got on arrival, and every step stops at it. A query still queued for a pool thread when the
deadline passes never starts, so with many names in flight on a silent server the names beyond
the pool's capacity get DNS_TIMEOUT at their deadline instead of starting late and holding a
thread for a budget of their own.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from .config import Nameserver
from .deadline import Clock, Deadline
from .errors import DnsFailure, DnsTimeout, DomainNotFound


@dataclass(frozen=True)
class Resolution:
    canonical_name: str
    addresses: tuple[str, ...]
    ttl: int | None = None  # seconds the answer may still be used: the shortest left of its A and AAAA answers'


def dnspython_resolver(nameservers: tuple[Nameserver, ...], timeout: float, cache_size: int = 0) -> dns.resolver.Resolver:
    """A dnspython resolver asking `nameservers` (the system's when empty), with `timeout` per
    query and an answer cache of `cache_size` (none at 0). DnsFailure when there is no server."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [server.host for server in nameservers]
        resolver.nameserver_ports = {server.host: server.port for server in nameservers}
        resolver.port = nameservers[0].port
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise DnsFailure("No DNS server is configured.") from None
    resolver.cache = dns.resolver.LRUCache(cache_size) if cache_size else None
    resolver.timeout = resolver.lifetime = timeout
    return resolver


class DnsResolver:
    def __init__(self, nameservers: tuple[Nameserver, ...] = (), timeout: float = 2.0, cache_size: int = 10_000,
                 pool_size: int = 32, clock: Clock = time.monotonic):
        self.nameservers = nameservers
        self.timeout = timeout
        self.cache_size = cache_size
        self.pool_size = pool_size
        self.clock = clock
        self._resolver: dns.resolver.Resolver | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _setup(self):
        # Built on first use, i.e. after uWSGI forks: threads do not survive a fork.
        with self._lock:
            if self._resolver is None:
                resolver = dnspython_resolver(self.nameservers, self.timeout, self.cache_size)
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.pool_size, thread_name_prefix="dns")
                self._resolver = resolver
        return self._resolver, self._pool

    def deadline(self, seconds: float | None = None, start: float | None = None) -> Deadline:
        """`seconds` (DNS_TIMEOUT by default) from `start`, a reading of this resolver's clock:
        when the request arrived. Now when not given."""
        return Deadline.after(self.timeout if seconds is None else seconds, self.clock, start)

    def resolve_addresses(self, name: str, deadline: Deadline | None = None) -> Resolution:
        deadline = self.deadline() if deadline is None else deadline.at_most(self.timeout)
        if deadline.expired():
            raise DnsTimeout()
        resolver, pool = self._setup()
        futures = [pool.submit(self._query, resolver, name, rdtype, deadline) for rdtype in ("A", "AAAA")]
        done, pending = concurrent.futures.wait(futures, timeout=deadline.remaining())
        if pending:
            for future in pending:
                future.cancel()
            raise DnsTimeout()
        answers = [future.result() for future in futures]  # re-raises the first failure
        if any(isinstance(answer, DomainNotFound) for answer in answers):
            raise DomainNotFound()
        canonical = name
        addresses: list[str] = []
        for answer in answers:
            if answer is None:
                continue
            canonical = answer.canonical_name.to_text(omit_final_dot=True)
            addresses.extend(rdata.address for rdata in answer.rrset or ())
        if not addresses:
            raise DomainNotFound()
        # An answer taken from the cache keeps its expiration: what is left of its TTL, not all of it.
        now = time.time()
        expirations = [answer.expiration for answer in answers if getattr(answer, "expiration", None) is not None]
        ttl = max(0, int(min(expirations) - now)) if expirations else None
        return Resolution(canonical, tuple(dict.fromkeys(addresses)), ttl)

    @staticmethod
    def _query(resolver, name, rdtype, deadline: Deadline):
        remaining = deadline.remaining()
        if remaining <= 0:  # queued past the deadline: the caller has answered already
            raise DnsTimeout()
        try:
            return resolver.resolve(name, rdtype, lifetime=remaining, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return DomainNotFound()
        except dns.resolver.YXDOMAIN:
            return DomainNotFound()
        except dns.exception.Timeout:
            raise DnsTimeout() from None
        except dns.resolver.NoNameservers:
            raise DnsFailure() from None
        except dns.exception.DNSException:
            raise DnsFailure() from None
