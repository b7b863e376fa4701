"""A real DNS server on 127.0.0.1 for the tests (dnslib, UDP and TCP, threaded).

Zone data is a dict: name -> list of ("A"|"AAAA"|"CNAME"|"PTR", value, ttl). Unknown names get NXDOMAIN;
names in `silent_names` (or every name while `silent` is set) get no answer at all; names in
`late_names` (name -> seconds) get their answer only after that delay, like an overloaded resolver.

"""
from __future__ import annotations

import socket
import threading
import time

from dnslib import AAAA, CNAME, PTR, QTYPE, RCODE, RR, A, DNSError, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

RECORD_TYPES = {"A": (A, QTYPE.A), "AAAA": (AAAA, QTYPE.AAAA), "CNAME": (CNAME, QTYPE.CNAME),
                "PTR": (PTR, QTYPE.PTR)}

STANDARD_ZONE = {
    "london.test.example": [("A", "81.2.69.160", 300)],
    "paris.test.example": [("A", "2.2.3.4", 300), ("AAAA", "2a02:d5c0::10", 300)],
    "dual.test.example": [("A", "81.2.69.161", 60), ("AAAA", "2001:218::1", 60)],
    "www.alias.test.example": [("CNAME", "cdn.alias.test.example", 60)],
    "cdn.alias.test.example": [("CNAME", "edge.cdn.test.example", 60)],
    "edge.cdn.test.example": [("A", "81.2.69.170", 60), ("AAAA", "2001:218::2", 60)],
    "internal.test.example": [("A", "10.1.2.3", 60), ("AAAA", "fd00::1", 60)],
    "mixed.test.example": [("A", "10.9.9.9", 60), ("A", "81.2.69.180", 60)],
    "noaddr.test.example": [],
    "unlocated.test.example": [("A", "8.8.8.8", 60)],
    "xn--bcher-kva.example": [("A", "81.2.69.190", 60)],
    "sea.test.example": [("A", "6.6.6.6", 60)],
    # Reverse names: one that confirms (london), one whose name does not point back (liar), IPv6,
    # one whose forward lookup goes unanswered (slow.test.example is silent in the suite's server).
    "160.69.2.81.in-addr.arpa": [("PTR", "london.test.example", 300)],
    "161.69.2.81.in-addr.arpa": [("PTR", "liar.test.example", 120)],
    "liar.test.example": [("A", "81.2.69.99", 60)],
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.1.2.0.1.0.0.2.ip6.arpa": [("PTR", "dual.test.example", 60)],
    "190.69.2.81.in-addr.arpa": [("PTR", "slow.test.example", 60)],
    "3.2.1.10.in-addr.arpa": [("PTR", "internal.test.example", 60)],
}

# Answered only after a delay in the suite's server (tests/conftest.py): apart from STANDARD_ZONE,
# whose names every test may ask expecting a prompt answer.
# One name per test that asks: a held query outlives the test that sent it.
LATE_ZONE = {name: [("A", "81.2.69.160", 60), ("AAAA", "2001:218::1", 60)]
             for name in ("late.test.example", "late-dual.test.example")}


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the server listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


class ZoneResolver(BaseResolver):
    def __init__(self, zone: dict, silent_names=(), late_names=None):
        self.zone = {name.rstrip(".").lower(): records for name, records in zone.items()}
        self.silent_names = {name.lower() for name in silent_names}
        self.late_names = {name.lower(): delay for name, delay in (late_names or {}).items()}
        self.silent = False
        self.queries: list[tuple[str, str]] = []
        self.most_late_at_once: dict[str, int] = {}  # a late name -> the most of its queries held at one time
        self._late_now: dict[str, int] = {}
        self._late_lock = threading.Lock()

    def resolve(self, request, handler):
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((qname, qtype))
        if self.silent or qname in self.silent_names:
            raise DNSError("dropped on purpose")  # the handler sends nothing: the client times out
        if qname in self.late_names:
            self._hold(qname)
        reply = request.reply()
        name = qname
        for _ in range(16):  # follow the CNAME chain like a recursive resolver would
            records = self.zone.get(name)
            if records is None:
                if name == qname:
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply
            cname = [r for r in records if r[0] == "CNAME"]
            if cname and qtype != "CNAME":
                _, target, ttl = cname[0]
                reply.add_answer(RR(DNSLabel(name), QTYPE.CNAME, rdata=CNAME(target), ttl=ttl))
                name = target.rstrip(".").lower()
                continue
            for rtype, value, ttl in records:
                if rtype == qtype:
                    cls, code = RECORD_TYPES[rtype]
                    reply.add_answer(RR(DNSLabel(name), code, rdata=cls(value), ttl=ttl))
            return reply
        return reply


    def _hold(self, name: str) -> None:
        """Waits the name's delay before answering (each request has its own thread), counting how
        many of its queries are held together: queries sent at once overlap, one after another never."""
        with self._late_lock:
            self._late_now[name] = self._late_now.get(name, 0) + 1
            self.most_late_at_once[name] = max(self.most_late_at_once.get(name, 0), self._late_now[name])
        try:
            time.sleep(self.late_names[name])
        finally:
            with self._late_lock:
                self._late_now[name] -= 1


class LocalDnsServer:
    """Start with `with LocalDnsServer(zone) as dns:`; `dns.port`, `dns.nameserver` ("127.0.0.1:PORT")."""

    def __init__(self, zone: dict | None = None, silent_names=(), late_names=None):
        self.resolver = ZoneResolver(STANDARD_ZONE if zone is None else zone, silent_names, late_names)
        self.port = free_port()
        logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self._servers = [
            DNSServer(self.resolver, address="127.0.0.1", port=self.port, logger=logger),
            DNSServer(self.resolver, address="127.0.0.1", port=self.port, tcp=True, logger=logger),
        ]

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self):
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self):
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
