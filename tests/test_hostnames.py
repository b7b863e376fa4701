"""The hostname adapter against a real DNS server on 127.0.0.1: PTR, forward confirmation, a
missing PTR, a PTR that does not point back, a silent server, a spent deadline."""
from __future__ import annotations

import ipaddress
import time

import pytest

from app.config import Config
from app.deadline import Deadline
from app.hostnames import NO_PTR, TIMEOUT, HostnameResolver
from tests.support.dns_server import LocalDnsServer

SILENT_PTR = "171.69.2.81.in-addr.arpa"


@pytest.fixture(scope="module")
def server():
    with LocalDnsServer(silent_names=["slow.test.example", SILENT_PTR]) as dns:
        yield dns


def resolver_for(server, timeout=0.5):
    nameservers = Config.from_env({"DNS_NAMESERVERS": server.nameserver}).dns_nameservers
    return HostnameResolver(nameservers, timeout)


def lookup(server, text, **kwargs):
    return resolver_for(server).lookup(ipaddress.ip_address(text), **kwargs)


def test_forward_confirmed_ptr(server):
    answer = lookup(server, "81.2.69.160")
    assert (answer.name, answer.verified, answer.reason) == ("london.test.example", True, None)
    assert answer.ttl == 300  # min(PTR 300, A 300)
    v6 = lookup(server, "2001:218::1")
    assert (v6.name, v6.verified, v6.ttl) == ("dual.test.example", True, 60)


def test_ptr_that_does_not_point_back_is_unverified(server):
    answer = lookup(server, "81.2.69.161")
    assert (answer.name, answer.verified, answer.reason, answer.ttl) == ("liar.test.example", False, None, 120)


def test_missing_ptr(server):
    answer = lookup(server, "81.2.69.170")
    assert (answer.name, answer.verified, answer.reason) == (None, False, NO_PTR) and answer.ttl > 0


def test_silent_server_gives_a_timeout_that_is_not_kept(server):
    answer = lookup(server, "81.2.69.171")
    assert (answer.name, answer.verified, answer.reason, answer.ttl) == (None, False, TIMEOUT, 0.0)
    # The PTR answers but its name's forward lookup goes unanswered: the name, unverified, not kept.
    forward_silent = lookup(server, "81.2.69.190")
    assert (forward_silent.name, forward_silent.verified, forward_silent.ttl) == ("slow.test.example", False, 0.0)


def test_a_spent_deadline_asks_nothing(server):
    before = len(server.resolver.queries)
    answer = lookup(server, "81.2.69.160", deadline=Deadline(time.monotonic() - 1))
    assert answer.reason == TIMEOUT and len(server.resolver.queries) == before
