"""cli.py lookup / status and main.py, run as real processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args, env_extra, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEOIP_", "TZ_", "DNS_"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_lookup_table(city_db, dns_server):
    done = run(["cli.py", "lookup", "81.2.69.160", "paris.test.example"],
               {"GEOIP_CITY_DB": str(city_db), "DNS_NAMESERVERS": dns_server.nameserver})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["QUERY", "IP", "CITY"]
    assert "London" in lines[1] and "Europe/London (mmdb)" in lines[1]
    assert "2.2.3.4" in lines[2] and "Europe/Paris (tz_world)" in lines[2]
    assert "2a02:d5c0::10" in lines[3] and "Madrid" in lines[3]


def test_lookup_json_and_failure_exit_status(city_db, dns_server):
    done = run(["cli.py", "lookup", "--json", "81.2.69.160", "8.8.8"],
               {"GEOIP_CITY_DB": str(city_db), "DNS_NAMESERVERS": dns_server.nameserver})
    assert done.returncode == 1
    docs = json.loads(done.stdout)
    assert docs[0]["results"][0]["city"]["name"] == "London"
    assert docs[1]["error"]["code"] == "INVALID_TARGET"


def test_status(city_db):
    done = run(["cli.py", "status", "--json"], {"GEOIP_CITY_DB": str(city_db)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["database"]["type"] == "GeoIP2-City" and report["timezone"]["backend"] == "embedded"
    text = run(["cli.py", "status"], {"GEOIP_CITY_DB": str(city_db)}).stdout
    assert "build date" in text and "embedded (ok)" in text


def test_status_without_database_fails(tmp_path):
    done = run(["cli.py", "status"], {"GEOIP_CITY_DB": str(tmp_path / "missing.mmdb")})
    assert done.returncode == 1 and "missing" in done.stdout


def test_bad_configuration_is_a_usage_error(city_db):
    done = run(["cli.py", "lookup", "81.2.69.160"], {"GEOIP_CITY_DB": str(city_db), "DNS_TIMEOUT": "x"})
    assert done.returncode == 2 and "DNS_TIMEOUT" in done.stderr and "Traceback" not in done.stderr


def test_dev_server_help():
    done = run(["main.py", "--help"], {})
    assert done.returncode == 0 and "--debug" in done.stdout and "--port" in done.stdout
