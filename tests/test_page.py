"""GET /: the server-rendered page (no browser here; tests/test_page_browser.py drives Chromium).

The page runs against the real app: a City database written by mmdb-writer, a real DNS server on
127.0.0.1, the embedded time-zone index.
"""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from app.config import Config, Nameserver
from app.http.page import CONTENT_SECURITY_POLICY, ERROR_HELP, clock_text, flag_emoji, map_view, osm_url
from tests.support.city_fixtures import STANDARD_ASN, STANDARD_RECORDS, place, write_asn_db, write_city_db
from tests.support.dns_server import STANDARD_ZONE, LocalDnsServer

HOSTILE_CITY = '<img src=x onerror="window.pwned=1">'
HOSTILE_REGION = "</dd><script>window.pwned=2</script>"
HOSTILE_NAME = "<svg/onload=alert(1)>.test.example"

# The suite's standard records, plus one whose names are markup.
PAGE_RECORDS = dict(STANDARD_RECORDS)
PAGE_RECORDS["7.7.0.0/16"] = place(HOSTILE_CITY, 1, ("XX", HOSTILE_REGION), ("FR", "France"), lat=45.0, lon=5.0,
                                   radius=50, eu=True)
# A point next to the date line: the map must wrap.
PAGE_RECORDS["4.4.0.0/16"] = place("Suva", 2198148, None, ("FJ", "Fiji"), ("OC", "Oceania"), lat=-18.1416,
                                   lon=178.4419, radius=20, time_zone="Pacific/Fiji")

HOSTILE_OWNER = "<b onmouseover=alert(3)>Evil AS</b>"
# The standard owners, plus one whose organisation is markup.
PAGE_ASN = dict(STANDARD_ASN, **{"7.7.0.0/16": (64666, HOSTILE_OWNER)})

# The standard zone, plus a CNAME to a name that is markup.
PAGE_ZONE = dict(STANDARD_ZONE)
PAGE_ZONE["hostile.test.example"] = [("CNAME", HOSTILE_NAME, 60)]
PAGE_ZONE[HOSTILE_NAME] = [("A", "7.7.7.7", 60)]
SILENT_NAME = "slow.test.example"

STATIC = Path(__file__).resolve().parent.parent / "app" / "static"


def page_config(city_db_path, dns_port, **overrides) -> Config:
    settings = dict(city_db_path=str(city_db_path), city_db_check_interval=0.05, dns_timeout=0.5,
                    dns_nameservers=(Nameserver("127.0.0.1", dns_port),),
                    asn_db_path=str(write_asn_db(Path(city_db_path).with_name("asn.mmdb"), PAGE_ASN)))
    settings.update(overrides)
    return Config(**settings)


@pytest.fixture(scope="module")
def page_dns():
    # The helper picks a port free for UDP; TCP on it may be taken by then: try another port.
    for attempt in range(5):
        try:
            server = LocalDnsServer(PAGE_ZONE, silent_names=[SILENT_NAME])
            break
        except OSError:
            if attempt == 4:
                raise
    with server:
        yield server


@pytest.fixture(scope="module")
def page_city_db(tmp_path_factory):
    return write_city_db(tmp_path_factory.mktemp("page") / "city.mmdb", PAGE_RECORDS)


@pytest.fixture(scope="module")
def client(page_city_db, page_dns):
    return create_app(page_config(page_city_db, page_dns.port)).test_client()


class Markup(HTMLParser):
    """What the tests check in the HTML: scripts, styles, event handlers, element text by id."""

    def __init__(self, text: str):
        super().__init__()
        self.scripts, self.style_elements, self.style_attributes, self.handlers, self.tags = [], 0, [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "script":
            self.scripts.append(attributes)
        if tag == "style":
            self.style_elements += 1
        if "style" in attributes:
            self.style_attributes.append(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


def visible(response) -> str:
    """The page's text with tags removed and entities decoded (templates included)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def shown_rows(response) -> set[str]:
    """The card rows a person sees (not hidden), outside the script's <template>s."""
    body = response.get_data(as_text=True).split('<template id="card-template">')[0]
    return {attributes["data-row"] for tag, attributes in Markup(body).tags
            if "data-row" in attributes and "hidden" not in attributes}


def test_empty_page_has_form_and_strict_csp(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    markup = Markup(response.get_data(as_text=True))
    assert ("label", {"for": "q"}) in markup.tags
    assert ("form", {"class": "lookup", "id": "lookup-form", "method": "get", "action": "/", "role": "search"}) \
        in markup.tags


def test_no_inline_script_style_or_handler(client):
    for path in ["/", "/?q=2.2.3.4", "/?q=paris.test.example", "/?q=nope"]:
        markup = Markup(client.get(path).get_data(as_text=True))
        assert markup.scripts and all(script.get("src", "").startswith("/static/") for script in markup.scripts)
        assert markup.style_elements == 0 and markup.style_attributes == [] and markup.handlers == []
        for tag, attributes in markup.tags:
            for name in ("src", "href"):
                value = attributes.get(name) or ""
                # Only the OpenStreetMap link (a plain link, never fetched) leaves the origin.
                assert not value.startswith(("http:", "https:", "//")) or value.startswith(
                    "https://www.openstreetmap.org/"), (tag, name, value)


def test_ip_result_is_rendered_on_the_server(client):
    response = client.get("/?q=2.2.3.4")
    assert response.status_code == 200
    text = visible(response)
    for words in ["Paris, Île-de-France, France", "2.2.0.0/16", "France (FR)", "Member of the European Union",
                  "Europe", "48.8566° N, 2.3522° E (within 20 km)",
                  "Europe/Paris, from the time-zone map (the database has none for this place)",
                  "Open in OpenStreetMap", "GeoIP2-City"]:
        assert words in text, words
    assert "\U0001F1EB\U0001F1F7" in text  # 🇫🇷
    assert re.search(r"UTC\+0[12]:00", text)
    body = response.get_data(as_text=True)
    assert 'aria-label="Flag of France"' in body
    assert 'href="https://www.openstreetmap.org/?mlat=48.85660&amp;mlon=2.35220#map=' in body
    assert '<ellipse class="accuracy" data-map-accuracy cx="23.52" cy="-488.57"' in body
    assert '"city": {\n' in html.unescape(body)  # the raw JSON, pretty-printed


def test_the_network_owner_is_on_the_card(client):
    text = visible(client.get("/?q=8.8.4.4"))  # an address only the ASN file knows
    assert "Network owner" in text and "AS15169, Google LLC" in text and "network 8.8.4.0/24" in text
    assert "Location unknown" in text
    text = visible(client.get("/?q=81.2.69.160"))
    assert "AS20712, Andrews & Arnold Ltd" in text and "London" in text
    assert "asn" in shown_rows(client.get("/?q=81.2.69.160"))
    assert "asn" not in shown_rows(client.get("/?q=9.9.9.9"))  # the ASN file does not know it
    assert "GeoLite2-ASN" in visible(client.get("/?q=8.8.4.4"))  # the ASN database's line


def test_database_time_zone_and_registered_country(client):
    text = visible(client.get("/?q=9.9.9.9"))
    assert "Europe/Zurich, from the City database" in text
    assert "Registered in" in text and "United States (US)" in text
    assert "registered_country" in shown_rows(client.get("/?q=9.9.9.9"))
    assert "registered_country" not in shown_rows(client.get("/?q=81.2.69.160"))


def test_domain_lists_every_address_and_the_canonical_name(client):
    response = client.get("/?q=www.alias.test.example")
    assert response.status_code == 200
    text = visible(response)
    assert "www.alias.test.example: 2 addresses" in text
    assert "Canonical name:" in text and "edge.cdn.test.example" in text
    assert "81.2.69.170" in text and "2001:218::2" in text
    assert text.count("Open in OpenStreetMap") == 3  # two cards and the card template


def test_domain_result_without_a_record_explains_it(client):
    text = visible(client.get("/?q=unlocated.test.example"))
    assert "8.8.8.8" in text and ERROR_HELP["IP_ADDRESS_NOT_FOUND"][0] in text


def test_withheld_private_addresses_are_counted_not_shown(client):
    response = client.get("/?q=mixed.test.example")
    text = visible(response)
    assert "1 private or reserved address is not shown." in text
    assert "10.9.9.9" not in response.get_data(as_text=True)


@pytest.mark.parametrize("query, status, code", [
    ("not an address", 400, "INVALID_TARGET"),
    ("8.8.8", 400, "INVALID_TARGET"),
    ("localhost", 400, "INVALID_TARGET"),
    ("10.1.2.3", 422, "IP_ADDRESS_RESERVED"),
    ("internal.test.example", 422, "IP_ADDRESS_RESERVED"),
    ("8.8.8.8", 404, "IP_ADDRESS_NOT_FOUND"),
    ("nope.test.example", 404, "DOMAIN_NOT_FOUND"),
    (SILENT_NAME, 504, "DNS_TIMEOUT"),
])
def test_error_states_are_explained_with_the_right_status(client, query, status, code):
    response = client.get("/", query_string={"q": query})
    assert response.status_code == status
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    body = response.get_data(as_text=True)
    assert f'data-code="{code}"' in body
    title, advice = ERROR_HELP[code]
    error_panel = html.unescape(body.split('id="error"')[1].split("</div>")[0])
    assert title in error_panel and advice in error_panel
    assert 'id="answer" hidden' in body


def test_missing_database_is_explained(page_dns, tmp_path):
    client = create_app(page_config(tmp_path / "absent.mmdb", page_dns.port)).test_client()
    response = client.get("/?q=2.2.3.4")
    assert response.status_code == 503 and 'data-code="DATABASE_UNAVAILABLE"' in response.get_data(as_text=True)


def test_empty_query_looks_up_the_caller(client):
    response = client.get("/?q=")  # the test client's address is 127.0.0.1
    assert response.status_code == 422 and 'data-code="MY_ADDRESS_RESERVED"' in response.get_data(as_text=True)
    # Behind a trusted proxy (loopback by default) the forwarded address is the caller.
    response = client.get("/?q=", headers={"X-Forwarded-For": "81.2.69.160"})
    assert response.status_code == 200
    text = visible(response)
    assert "Your address" in text and "London, England, United Kingdom" in text


def test_hostile_input_and_records_stay_text(client):
    response = client.get("/", query_string={"q": '"><script>window.pwned=3</script>'})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "<script>window" not in body and 'value="&#34;&gt;&lt;script&gt;' in body
    for query in ["7.7.7.7", "hostile.test.example"]:
        response = client.get("/", query_string={"q": query})
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        markup = Markup(body)
        assert markup.handlers == [] and [tag for tag, _ in markup.tags].count("img") == 0
        assert not any(tag == "script" and not attributes.get("src") for tag, attributes in markup.tags)
        assert HOSTILE_CITY not in body and HOSTILE_CITY in html.unescape(body)
        assert HOSTILE_REGION not in body
        assert HOSTILE_OWNER not in body and [tag for tag, _ in markup.tags].count("b") == 0
    body = client.get("/?q=hostile.test.example").get_data(as_text=True)
    assert "<svg/onload" not in body and "<svg/onload=alert\\(1\\)>.test.example" in html.unescape(body)


def test_overlong_query_is_refused_and_not_echoed_whole(client):
    response = client.get("/", query_string={"q": "a" * 5000 + ".example"})
    assert response.status_code == 400 and "a" * 301 not in response.get_data(as_text=True)


def test_legacy_route_sends_browsers_to_the_page(client):
    response = client.get("/2.2.3.4", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/?q=2.2.3.4")


def test_static_assets_are_served(client):
    for path in ["/static/page.css", "/static/js/main.js", "/static/js/view.js", "/static/js/render.js",
                 "/static/js/clock.js", "/static/world.svg", "/static/favicon.svg"]:
        response = client.get(path)
        assert response.status_code == 200, path
        response.close()


# -- the display model ---------------------------------------------------------------------

def test_flag_emoji():
    assert flag_emoji("FR") == "\U0001F1EB\U0001F1F7"
    assert flag_emoji("jp") == "\U0001F1EF\U0001F1F5"
    assert flag_emoji(None) is None and flag_emoji("EUR") is None and flag_emoji("1A") is None


def test_clock_text():
    assert clock_text("2025-11-21T14:03:22+01:00") == "Fri 21 Nov, 14:03:22"
    assert clock_text(None) is None


def test_map_view_centres_the_point_and_draws_the_accuracy_circle():
    view = map_view({"latitude": 60.0, "longitude": 10.0, "accuracy_radius": 111.32})
    assert (view["x"], view["y"]) == ("100", "-600")
    assert view["ry"] == "10" and view["rx"] == "20"  # 1° tall, 2° wide at 60° N (cos 60° = ½)
    left, top, width, height = map(float, view["view_box"].split())
    assert left + width / 2 == 100 and width == 2 * height
    assert top <= -600 <= top + height


def test_map_view_widens_for_a_large_circle_and_stays_on_the_globe():
    view = map_view({"latitude": 80.0, "longitude": 0.0, "accuracy_radius": 1000})
    left, top, width, height = map(float, view["view_box"].split())
    assert width > 2 * float(view["rx"]) and top >= -900  # whole circle, never above the pole
    assert map_view({"latitude": None, "longitude": None}) is None


def test_osm_url_zooms_to_the_accuracy():
    near = osm_url({"latitude": 1.0, "longitude": 2.0, "accuracy_radius": 1})
    far = osm_url({"latitude": 1.0, "longitude": 2.0, "accuracy_radius": 1000})
    assert near.startswith("https://www.openstreetmap.org/?mlat=1.00000&mlon=2.00000#map=15/")
    assert "#map=5/" in far


def test_world_map_asset_is_small_and_well_formed():
    path = STATIC / "world.svg"
    assert path.stat().st_size < 100 * 1024
    root = ElementTree.parse(path).getroot()
    land = root.find("{http://www.w3.org/2000/svg}path")
    assert root.get("viewBox") == "-1800 -900 3600 1800" and land.get("id") == "land"
    assert land.get("d").count("M") > 300  # continents and islands


def test_world_map_builder_writes_paths_that_trace_the_shape():
    import importlib.util

    from shapely.geometry import MultiPolygon, Polygon

    spec = importlib.util.spec_from_file_location("build_world_map", STATIC.parent.parent / "tools" / "build_world_map.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert builder.is_ocean_zone("Etc/GMT+5") and not builder.is_ocean_zone("Europe/Paris")

    # On the map's 0.1° grid, with a hole and negative steps both ways.
    island = Polygon([(10, 40), (12.5, 40), (12.5, 41.3), (10, 41.3)], [[(11, 40.5), (11.5, 40.5), (11.5, 41)]])
    document = builder.svg_document(MultiPolygon([island]), "2026c")
    path = ElementTree.fromstring(document).find("{http://www.w3.org/2000/svg}path").get("d")
    rings = []
    for subpath in re.findall(r"M([^l]+)l([^z]*)z", path):
        x, y = map(int, subpath[0].split())
        points = [(x, y)]
        steps = [int(number) for number in re.findall(r"-?\d+", subpath[1])]
        for dx, dy in zip(steps[::2], steps[1::2]):
            x, y = x + int(dx), y + int(dy)
            points.append((x, y))
        rings.append([(px / 10, -py / 10) for px, py in points])
    assert Polygon(rings[0], rings[1:]).equals(island)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=80))
def test_any_query_gets_a_page_never_a_crash(client, query):
    response = client.get("/", query_string={"q": query})
    assert response.status_code in (200, 400, 404, 422, 504)
    assert response.mimetype == "text/html"
    markup = Markup(response.get_data(as_text=True))
    # The input shows the query back exactly, as an attribute value that nothing broke out of.
    fields = [attributes for tag, attributes in markup.tags if tag == "input" and attributes.get("id") == "q"]
    assert len(fields) == 1 and fields[0]["value"] == query.strip()[:300]
    assert len(markup.scripts) == 1 and markup.handlers == [] and markup.style_attributes == []
