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


def test_lookup_table_has_the_network_owner(city_db, dns_server, tmp_path):
    from tests.support.city_fixtures import write_asn_db
    asn = write_asn_db(tmp_path / "asn.mmdb")
    done = run(["cli.py", "lookup", "81.2.69.160", "8.8.4.4", "9.9.9.9"],
               {"GEOIP_CITY_DB": str(city_db), "GEOIP_ASN_DB": str(asn), "DNS_NAMESERVERS": dns_server.nameserver})
    assert done.returncode == 0, done.stderr
    header, london, google, zurich = done.stdout.splitlines()
    assert header.split()[-2:] == ["NETWORK", "OWNER"]
    assert london.endswith("AS20712, Andrews & Arnold Ltd") and "London" in london
    assert google.endswith("AS15169, Google LLC")
    assert "Zurich" in zurich and "AS" not in zurich.split("Zurich", 1)[1]


def test_status_lists_every_database(city_db, tmp_path):
    from tests.support.city_fixtures import write_asn_db
    asn = write_asn_db(tmp_path / "asn.mmdb")
    env = {"GEOIP_CITY_DB": str(city_db), "GEOIP_ASN_DB": str(asn)}
    report = json.loads(run(["cli.py", "status", "--json"], env).stdout)
    assert [db["kind"] for db in report["databases"]] == ["city", "asn"]
    asn_report = report["databases"][1]
    assert asn_report["type"] == "GeoLite2-ASN" and asn_report["stale"] is False and "updates" in asn_report
    text = run(["cli.py", "status"], env).stdout
    assert "city database:" in text and "asn database:" in text and "GeoLite2-ASN" in text
    without = run(["cli.py", "status"], {"GEOIP_CITY_DB": str(city_db)}).stdout
    assert "asn database:  not configured" in without


def test_the_cli_imports_only_what_its_command_needs():
    # The bulk command's start-up is part of every run: no Flask, no updater HTTP client, no
    # PostgreSQL driver until a command that needs them runs; every command is still listed.
    probe = ("import sys, cli; from app.services import Services; import app.bulk; "
             "print(sorted(m for m in ('flask', 'werkzeug', 'requests', 'psycopg2') if m in sys.modules))")
    done = run(["-c", probe], {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    listed = run(["cli.py", "--help"], {})
    assert all(name in listed.stdout for name in ("lookup", "status", "update-db", "load-tz-world",
                                                 "check-overlay", "pull-db"))
    assert run(["cli.py", "check-overlay", "--help"], {}).returncode == 0
    factory = run(["-c", "import app; print(app.create_app.__module__)"], {})
    assert factory.stdout.strip() == "app.web", factory.stderr
