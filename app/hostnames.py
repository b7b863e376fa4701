"""The hostname adapter: an address's PTR name, and whether that name's A/AAAA records contain
the address (forward-confirmed reverse DNS), asked of the configured nameservers with dnspython.

`HostnameResolver.lookup(address, deadline)` never raises for DNS trouble: the answer says what
happened (`reason`), and how long it may be kept (`ttl`, from the records; failures briefly, a
timeout not at all). Caching belongs to the lookup service, so dnspython's own cache is off.
"""
from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass

import dns.exception
import dns.rdatatype
import dns.resolver
import dns.reversename

from .config import Nameserver
from .errors import DnsFailure
from .resolver import dnspython_resolver
from .deadline import Deadline

# Reasons a hostname is missing (the codes a result carries).
NO_PTR = "PTR_NOT_FOUND"
TIMEOUT = "DNS_TIMEOUT"
FAILURE = "DNS_FAILURE"
WITHHELD = "HOSTNAME_WITHHELD"
REASONS = {
    WITHHELD: "Names of internal (reserved) addresses are not looked up.",
    NO_PTR: "The address has no PTR record.",
    TIMEOUT: "The DNS servers did not answer in time.",
    FAILURE: "The DNS servers could not answer for the address.",
}

NEGATIVE_TTL = 60.0   # a missing PTR or a failing server, kept briefly
MAX_TTL = 86400.0


@dataclass(frozen=True)
class Hostname:
    name: str | None        # the PTR name without the final dot, or None (then `reason` says why)
    verified: bool          # a forward lookup of `name` gave back the address
    reason: str | None      # one of REASONS, None when there is a name
    ttl: float              # seconds this answer may be kept (0: not at all)


class HostnameResolver:
    def __init__(self, nameservers: tuple[Nameserver, ...] = (), timeout: float = 2.0):
        self.nameservers = nameservers
        self.timeout = timeout
        self._resolver: dns.resolver.Resolver | None = None
        self._lock = threading.Lock()

    def _setup(self) -> dns.resolver.Resolver | None:
        # Built on first use (after uWSGI forks), without dnspython's cache: the service keeps answers.
        with self._lock:
            if self._resolver is None:
                try:
                    self._resolver = dnspython_resolver(self.nameservers, self.timeout)
                except DnsFailure:
                    return None
            return self._resolver

    def lookup(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, deadline: Deadline | None = None) -> Hostname:
        """PTR, then the forward confirmation, both within `deadline` (and at most DNS_TIMEOUT
        from now); a deadline already passed asks nothing."""
        resolver = self._setup()
        if resolver is None:
            return Hostname(None, False, FAILURE, NEGATIVE_TTL)
        deadline = Deadline.after(self.timeout) if deadline is None else deadline.at_most(self.timeout)
        reverse = dns.reversename.from_address(str(address))
        answer = _ask(resolver, reverse, "PTR", deadline)
        if isinstance(answer, str):
            return Hostname(None, False, answer, 0.0 if answer == TIMEOUT else NEGATIVE_TTL)
        names = [rdata.target.to_text(omit_final_dot=True) for rdata in answer.rrset or ()]
        if not names:
            return Hostname(None, False, NO_PTR, NEGATIVE_TTL)
        ttl = float(answer.rrset.ttl)
        wanted = "A" if address.version == 4 else "AAAA"
        for name in names[:4]:  # a few PTR names at most: the budget is shared
            forward = _ask(resolver, name + ".", wanted, deadline)
            if isinstance(forward, str):
                if forward == TIMEOUT:  # unconfirmed for now, and worth asking again soon
                    return Hostname(names[0], False, None, 0.0)
                continue
            if any(ipaddress.ip_address(rdata.address) == address for rdata in forward.rrset or ()):
                return Hostname(name, True, None, min(ttl, float(forward.rrset.ttl), MAX_TTL))
        return Hostname(names[0], False, None, min(ttl, MAX_TTL))


def _ask(resolver, name, rdtype: str, deadline: Deadline):
    """The answer, or the reason there is none."""
    remaining = deadline.remaining()
    if remaining <= 0:
        return TIMEOUT
    try:
        return resolver.resolve(name, rdtype, lifetime=remaining, raise_on_no_answer=False, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN):
        return NO_PTR
    except dns.exception.Timeout:
        return TIMEOUT
    except dns.exception.DNSException:
        return FAILURE
