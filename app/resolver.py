"""The DNS adapter: every A and AAAA address of a name, asked concurrently within one time budget.

dnspython does the work; its LRUCache keeps answers per worker for their TTL. The two queries
run on a small shared thread pool so a name costs one round trip, and the budget (`DNS_TIMEOUT`)
bounds the whole resolution, not each query.
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
from .errors import DnsFailure, DnsTimeout, DomainNotFound


@dataclass(frozen=True)
class Resolution:
    canonical_name: str
    addresses: tuple[str, ...]


class DnsResolver:
    def __init__(self, nameservers: tuple[Nameserver, ...] = (), timeout: float = 2.0, cache_size: int = 10_000):
        self.nameservers = nameservers
        self.timeout = timeout
        self.cache_size = cache_size
        self._resolver: dns.resolver.Resolver | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _setup(self):
        # Built on first use, i.e. after uWSGI forks: threads do not survive a fork.
        with self._lock:
            if self._resolver is None:
                if self.nameservers:
                    resolver = dns.resolver.Resolver(configure=False)
                    resolver.nameservers = [server.host for server in self.nameservers]
                    resolver.nameserver_ports = {server.host: server.port for server in self.nameservers}
                    resolver.port = self.nameservers[0].port
                else:
                    try:
                        resolver = dns.resolver.Resolver()
                    except dns.resolver.NoResolverConfiguration:
                        raise DnsFailure("No DNS server is configured.") from None
                resolver.cache = dns.resolver.LRUCache(self.cache_size) if self.cache_size else None
                resolver.timeout = self.timeout
                resolver.lifetime = self.timeout
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="dns")
                self._resolver = resolver
        return self._resolver, self._pool

    def resolve_addresses(self, name: str) -> Resolution:
        resolver, pool = self._setup()
        deadline = time.monotonic() + self.timeout
        futures = [pool.submit(self._query, resolver, name, rdtype, deadline) for rdtype in ("A", "AAAA")]
        done, pending = concurrent.futures.wait(futures, timeout=self.timeout + 0.1)
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
        return Resolution(canonical, tuple(dict.fromkeys(addresses)))

    @staticmethod
    def _query(resolver, name, rdtype, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
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
