"""A fixed sample of a few hundred points with known zones, against the full tz_world load and the embedded index.

tests/data/tz_points.json: tzdata's zone.tab principal locations plus hand-picked enclaves (Monaco,
Baarle-Hertog/Baarle-Nassau), exclaves (Kaliningrad), Arizona vs the Navajo Nation vs the Hopi
Reservation, islands, capitals, borders and open ocean.
"""
import json
from pathlib import Path

import pytest

from app.timezones.base import is_ocean_zone
from app.timezones.embedded import EmbeddedTimezoneIndex
from app.timezones.postgis import PostgisTimezoneIndex
from tests.support.postgres import postgres_server, tz_world_full_dsn  # noqa: F401 (fixtures)

POINTS = json.loads((Path(__file__).parent / "data" / "tz_points.json").read_text())["points"]


def wrong_answers(index):
    wrong = []
    for point in POINTS:
        match = index.zone_at(point["lat"], point["lon"])
        got = (match.name, match.at_sea) if match else None
        if got != (point["zone"], is_ocean_zone(point["zone"])):
            wrong.append((point["place"], point["zone"], got))
    return wrong


def test_sample_is_a_few_hundred_points_with_the_named_cases():
    assert len(POINTS) >= 300
    places = " ".join(point["place"] for point in POINTS)
    for case in ("Monte Carlo", "Baarle-Hertog", "Baarle-Nassau", "Kaliningrad", "Navajo", "Hopi", "Chatham", "open ocean"):
        assert case in places


def test_embedded_index_knows_every_point():
    assert wrong_answers(EmbeddedTimezoneIndex()) == []


@pytest.mark.slow
def test_postgis_full_load_knows_every_point(tz_world_full_dsn):
    # Correctness here, not speed: a cold cache on a busy CI machine may take longer than the
    # production statement timeout, so this index gets a generous one.
    index = PostgisTimezoneIndex(tz_world_full_dsn, statement_timeout_ms=10_000)
    try:
        assert index.status()["state"] == "ok"
        assert wrong_answers(index) == []
    finally:
        index.close()
