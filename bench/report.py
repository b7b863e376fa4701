"""Results -> a Markdown table (one row per figure: ours, the ceiling, the ratio, the target)."""
from __future__ import annotations


def _met(flag) -> str:
    if flag is None:
        return "n/a"
    return "yes" if flag else "**no**"


def _ms(value) -> str:
    return f"{value:.3g} ms" if value < 10 else f"{value:.0f} ms"


def rows(results: dict) -> list[tuple]:
    figures = results["figures"]
    table = []
    for item in figures.get("inprocess", []):
        stages = item["stages_ns_per_lookup"]
        asn = f" + {item['asn_file']}" if item.get("asn_file") else ""
        table.append((f"1. In-process lookup, IP -> JSON bytes ({item['city_file']}{asn}, {item['addresses']:,} addresses)",
                      f"{stages['full']['best_ns'] / 1000:.1f} µs", f"{stages['raw_get']['best_ns'] / 1000:.1f} µs "
                      + ("(Reader.get on both)" if asn else "(Reader.get)"), f"{item['ratio']:.2f}x", "≤ 2.0x", _met(item["met"])))
    http = figures.get("http")
    if http:
        app, ceiling = http["app"], http["ceiling"]
        rows_ = http.get("rows", {})

        def rate(row):
            return f"{row['requests_per_s']:,.0f} req/s (p50 {_ms(row['p50_ms'])}, p99 {_ms(row['p99_ms'])})"

        table.append((f"2. HTTP GET /api/v1/lookup/<ip> ({http['city_file']}, wrk {http['wrk']['threads']}t/"
                      f"{http['wrk']['connections']}c/{http['wrk']['seconds']:g}s, best of "
                      f"{http['wrk'].get('rounds', 1)} alternating, {http['workers']} workers)",
                      rate(app), f"{rate(ceiling)}: plain Nginx -> uWSGI (2 processes, no threads, no logging) "
                      "-> raw WSGI, 900 bytes", f"{http['ratio']:.0%}", "≥ 60%", _met(http["met"])))
        if "p99_ratio" in http:
            table.append(("2a. p99 under that load, default configuration (best round of each)",
                          f"p99 {_ms(app['best_p99_ms'])} (rounds: {', '.join(_ms(v) for v in app['rounds_p99_ms'])})",
                          f"p99 {_ms(ceiling['best_p99_ms'])} (rounds: "
                          f"{', '.join(_ms(v) for v in ceiling['rounds_p99_ms'])})",
                          f"{http['p99_ratio']:.2f}x", "≤ 2.0x", _met(http["p99_met"])))
        if "naive_peer" in rows_:
            table.append(("2b. Against the naive peer: Flask + geoip2 .city().to_dict() under the plain stack",
                          rate(app), rate(rows_["naive_peer"]), f"{http['peer_ratio']:.2f}x", "≥ 4x",
                          _met(http["peer_met"])))
        if "app_metrics_off" in rows_:
            table.append(("2c. Metrics on (default) vs off (METRICS_ENABLED=false), lookups",
                          rate(app), rate(rows_["app_metrics_off"]), f"{http['metrics_cost']:.1%} fewer",
                          "≤ 5%", _met(http["metrics_met"])))
        if "ours_trivial" in rows_:
            table.append(("2d. The same raw WSGI callable through our configs (supervisord, uwsgi.ini, nginx.conf, site.conf)",
                          rate(rows_["ours_trivial"]), "the plain ceiling above",
                          f"{http['ours_trivial_share_of_ceiling']:.0%}", "(context)", "n/a"))
            for label, share in http.get("config_cost", {}).items():
                table.append((f"2d. ... with {label.removeprefix('ours_trivial_').replace('_', ' ')}",
                              rate(rows_[label]), "our configs, defaults", f"{share:.0%}", "(context)", "n/a"))
        table.append(("2e. Server CPU per request (all processes of the stack), same runs",
                      f"{app['server_cpu_ms_per_request']:.3f} ms", f"{ceiling['server_cpu_ms_per_request']:.3f} ms",
                      f"{http['cpu_ratio']:.2f}x", "(context)", "n/a"))
    batch = figures.get("batch")
    if batch:
        table.append((f"3. Batch: {batch['addresses_per_request']:,} per POST vs single GETs ({batch['city_file']})",
                      f"{batch['batch_addresses_per_s']:,.0f} addresses/s",
                      f"{batch['single_addresses_per_s']:,.0f} addresses/s (single GETs)",
                      f"{batch['ratio']:.1f}x", "≥ 20x", _met(batch["met"])))
    tz = figures.get("timezones")
    if tz and "table_rows" in tz:
        table.extend(tuple(row) for row in tz["table_rows"])
    elif tz:
        table.append(("4. Time-zone fallback", tz.get("summary", "see JSON"), "", "", "", _met(tz.get("met"))))
    dns = figures.get("dns")
    if dns:
        table.append((f"5a. Domain, DNS cache miss ({dns['names']:,} names, A+AAAA, local DNS server)",
                      f"p50 {_ms(dns['miss']['p50_ms'])}, p99 {_ms(dns['miss']['p99_ms'])}",
                      f"p50 {_ms(dns['ceiling_miss_raw_dns_query']['p50_ms'])} (one raw dnspython A query)",
                      f"{dns['ratio_miss']:.2f}x", "(context)", "n/a"))
        table.append(("5b. Domain, DNS cache hit",
                      f"p50 {_ms(dns['hit']['p50_ms'])}, p99 {_ms(dns['hit']['p99_ms'])}",
                      f"p50 {_ms(dns['ceiling_hit_ip_lookups']['p50_ms'])} (lookups of its 2 IPs)",
                      f"{dns['ratio_hit']:.2f}x", f"miss/hit {dns['miss_over_hit_p50']:.1f}x", "n/a"))
    asn_memory = figures.get("memory_asn")
    if asn_memory:
        per_count = ", ".join(f"{row['workers']}w: {row['total_pss_mb']:.0f} MB" for row in asn_memory["rows"])
        table.append((f"6b. Memory per extra uWSGI worker, City + ASN ({asn_memory['city_file']} + "
                      f"{asn_memory['asn_file']}, {asn_memory['asn_file_mb']:.0f} MB)",
                      f"{asn_memory['worst_mb_per_extra_worker']:.1f} MB PSS (total {per_count})", "35 MB budget",
                      f"{asn_memory['ratio']:.2f}x", "≤ 35 MB", _met(asn_memory["met"])))
    memory = figures.get("memory")
    if memory:
        per_count = ", ".join(f"{row['workers']}w: {row['total_pss_mb']:.0f} MB" for row in memory["rows"])
        first = memory["rows"][0]["per_worker"][0]
        caches = [row["record_caches"] for row in memory["rows"] if "record_caches" in row]
        filled = (f"; record caches {min(c['entries_min'] for c in caches):,}-{max(c['entries_max'] for c in caches):,}"
                  f" of {caches[0]['capacity']:,}" if caches else "")
        table.append((f"6. Memory per extra uWSGI worker ({memory['city_file']}, {memory['city_file_mb']:.0f} MB file)",
                      f"{memory['worst_mb_per_extra_worker']:.1f} MB PSS (total {per_count}{filled})",
                      f"30 MB budget; 1 worker: RSS {first['rss_mb']:.0f} MB, PSS {first['pss_mb']:.0f} MB, "
                      f"heap {first['anon_mb']:.0f} MB", f"{memory['ratio']:.2f}x", "≤ 30 MB", _met(memory["met"])))
        experiment = memory.get("experiment_shared_import")
        if experiment:
            table.append(("6b. Same, libraries imported once in the uWSGI master (experiment, see bench/README.md)",
                          f"{experiment['worst_mb_per_extra_worker']:.1f} MB PSS", "30 MB budget",
                          f"{experiment['worst_mb_per_extra_worker'] / 30:.2f}x", "≤ 30 MB",
                          _met(experiment['worst_mb_per_extra_worker'] <= 30)))
    cold = figures.get("coldstart")
    if cold:
        table.append((f"7a. Cold start, stack spawn -> first lookup 200 ({cold['city_file']})", f"{cold['stack_s']:.2f} s",
                      f"{cold['stack_ceiling_s']:.2f} s (trivial app)", f"{cold['ratio']:.2f}x", "(context)", "n/a"))
        table.append(("7b. Cold start, python -c create_app + one lookup", f"{cold['process_s']:.2f} s",
                      f"{cold['process_ceiling_s']:.2f} s (maxminddb open + get)", f"{cold['process_ratio']:.2f}x",
                      "(context)", "n/a"))
    table.extend(tuple(row) for row in (figures.get("bulk") or {}).get("table_rows", ()))
    return table


def markdown(results: dict) -> str:
    machine = results["machine"]
    lines = [
        f"Run {results['started']} on `{machine['host']}` ({machine['cpus']} cores, {machine['python']}), "
        f"load average {machine['load_before'][0]:.1f} before / {machine['load_after'][0]:.1f} after; "
        f"{results['duration_s']:.0f} s.",
        "",
        "| Figure | Easy GeoIP | Ceiling (same run) | Ratio | Target | Met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows(results):
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
    skipped = results.get("skipped") or {}
    for name, reason in skipped.items():
        lines.append(f"\nNot measured: {name} ({reason}).")
    return "\n".join(lines) + "\n"
