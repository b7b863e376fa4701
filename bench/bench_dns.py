"""Figure 5: domain lookups against a real DNS server on 127.0.0.1, cache miss against cache hit.

The zone holds `count` dual-stack names (one A and one AAAA each, pointing at located addresses).
Per name, through LookupService.lookup(name):
  miss   first lookup: A and AAAA go to the server (the resolver asks both at once)
  hit    second lookup: both answers come from the per-worker DNS cache
Ceilings, in the same run: for a miss, one plain dnspython query for the A record against the
same server (the network round trip we cannot avoid); for a hit, the IP lookups of the same
addresses (a cached name should cost little more than looking up its addresses).
"""
from __future__ import annotations


import dns.resolver

from app.config import Config
from app.services import Services
from tests.support.dns_server import LocalDnsServer

from .timing import latencies_ms, summary_ms


def zone_for(ipv4: list[str], ipv6: list[str]) -> dict:
    return {f"host{index}.bench.example": [("A", v4, 300), ("AAAA", v6, 300)]
            for index, (v4, v6) in enumerate(zip(ipv4, ipv6))}


def measure(city_file, ipv4: list[str], ipv6: list[str], count: int = 1000) -> dict:
    zone = zone_for(ipv4[:count], ipv6[:count])
    names = list(zone)
    zone["warmup.bench.example"] = [("A", ipv4[0], 300), ("AAAA", ipv6[0], 300)]
    with LocalDnsServer(zone) as server:
        config = Config.from_env({"GEOIP_CITY_DB": str(city_file.path), "DNS_NAMESERVERS": server.nameserver,
                                  "DNS_TIMEOUT": "5"})
        services = Services(config)
        lookup = services.lookup.lookup
        lookup("warmup.bench.example")  # threads, the City map, the time-zone index: up before timing
        asked = len(server.resolver.queries)
        miss = latencies_ms(lookup, names)
        asked_on_miss = len(server.resolver.queries) - asked
        hit = latencies_ms(lookup, names)
        asked_on_hit = len(server.resolver.queries) - asked - asked_on_miss
        pairs = [(v4, v6) for v4, v6 in zip(ipv4[:count], ipv6[:count])]
        ip_pair = latencies_ms(lambda pair: (lookup(pair[0]), lookup(pair[1])), pairs)
        raw = dns.resolver.Resolver(configure=False)
        raw.nameservers = ["127.0.0.1"]
        raw.port = server.port
        raw_query = latencies_ms(lambda name: raw.resolve(name, "A", search=False), names)
    miss_s, hit_s, ip_s, raw_s = (summary_ms(samples) for samples in (miss, hit, ip_pair, raw_query))
    return {
        "city_file": city_file.label,
        "names": len(names),
        "records_per_name": "1 A + 1 AAAA",
        "miss": miss_s,
        "hit": hit_s,
        "ceiling_miss_raw_dns_query": raw_s,
        "ceiling_hit_ip_lookups": ip_s,
        "miss_over_hit_p50": round(miss_s["p50_ms"] / hit_s["p50_ms"], 1),
        "ratio_miss": round(miss_s["p50_ms"] / raw_s["p50_ms"], 2),
        "ratio_hit": round(hit_s["p50_ms"] / ip_s["p50_ms"], 2),
        # the server was asked for A and AAAA of each name on the miss pass, and nothing on the hit pass
        "server_queries_on_miss": asked_on_miss,
        "server_queries_on_hit": asked_on_hit,
    }
