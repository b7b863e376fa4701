"""The benchmark harness runs end to end on tiny sizes, so `make test` keeps it from rotting.

No speed is asserted (speed targets live in bench/, measured as ratios); this checks that every
figure is produced from real runs: the real stack (supervisord, uWSGI, Nginx), wrk, the local DNS
server, /proc memory figures, the plot and the Markdown table.
"""
from __future__ import annotations

import json
import shutil

import pytest
from mmdb_writer import MMDBWriter, MmdbF64, MmdbU16
from netaddr import IPSet

from app.http.responses import json_response
from bench import bench_inprocess, run


def _place(city: str, country: tuple[str, str], lat: float, lon: float, time_zone: str | None) -> dict:
    location = {"latitude": MmdbF64(lat), "longitude": MmdbF64(lon), "accuracy_radius": MmdbU16(20)}
    if time_zone:
        location["time_zone"] = time_zone
    return {"city": {"geoname_id": 1, "names": {"en": city}},
            "country": {"iso_code": country[0], "names": {"en": country[1]}},
            "location": location}


def wide_city_db(path):
    """Records for every IPv4 address and for 2a00::/12, so random public addresses are located;
    half of them without a time zone, so the fallback index is exercised too."""
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", languages=["en"], ipv4_compatible=True,
                        description="bench smoke test")
    writer.insert_network(IPSet(["0.0.0.0/1"]), _place("Paris", ("FR", "France"), 48.8566, 2.3522, None))
    writer.insert_network(IPSet(["128.0.0.0/1"]), _place("Tokyo", ("JP", "Japan"), 35.69, 139.69, "Asia/Tokyo"))
    writer.insert_network(IPSet(["2a00::/12"]), _place("Madrid", ("ES", "Spain"), 40.4168, -3.7038, None))
    writer.to_db_file(str(path))
    return path


@pytest.mark.slow
@pytest.mark.timeout(900)  # every figure's stacks, started one after the other on a shared machine
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (it is in the Makefile's TEST_APT)")
def test_harness_produces_every_figure(tmp_path):
    city = wide_city_db(tmp_path / "wide-city.mmdb")
    out = tmp_path / "results"
    plot = tmp_path / "throughput.png"
    figures = ["inprocess", "http", "batch", "dns", "memory", "coldstart"]

    status = run.main(["--quick", "--city-file", str(city), "--out", str(out), "--plot", str(plot),
                       "--only", *figures])

    [json_path] = out.glob("*-quick*.json")
    results = json.loads(json_path.read_text())
    assert results["failed"] == {}, results["failed"]
    assert status == 0
    assert sorted(results["figures"]) == sorted(figures)
    got = results["figures"]
    stages = got["inprocess"][0]["stages_ns_per_lookup"]
    assert all(stages[name]["best_ns"] > 0 for name in ("raw_get", "adapter", "document", "full"))
    # The HTTP figure came from both stacks, without errors, and each served its own app.
    assert got["http"]["app"]["requests"] > 0 and got["http"]["ceiling"]["requests"] > 0
    assert got["http"]["app"]["errors"] == 0 and got["http"]["ceiling"]["errors"] == 0
    assert len(got["http"]["curve"]["app_requests_per_s"]) == len(results["sizes"]["curve_connections"])
    assert got["batch"]["batch_addresses_per_s"] > 0 and got["batch"]["single_addresses_per_s"] > 0
    # The hit pass really was served from the cache, and the miss pass really asked the server.
    assert got["dns"]["server_queries_on_hit"] == 0
    assert got["dns"]["server_queries_on_miss"] == 2 * got["dns"]["names"]
    # Every worker mapped the City file, and with two workers its pages are shared.
    two = got["memory"]["rows"][1]
    assert two["workers_with_city_map"] == 2
    assert all(worker["city_map"]["pss_kb"] < worker["city_map"]["rss_kb"] for worker in two["per_worker"])
    assert got["coldstart"]["stack_s"] > 0 and got["coldstart"]["process_s"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / json_path.name.replace(".json", ".md")).read_text()
    assert "| 2. HTTP GET" in table and "| 6. Memory" in table


def test_in_process_figure_serialises_like_the_http_layer(tmp_path):
    """Figure 1's JSON bytes are exactly the body json_response sends."""
    services = bench_inprocess.open_services(str(wide_city_db(tmp_path / "wide-city.mmdb")))
    for address in ("81.2.69.160", "200.1.2.3", "2a00:1450::1"):
        document = services.lookup.lookup(address)
        assert bench_inprocess.json_bytes(document) == json_response(document).get_data()
