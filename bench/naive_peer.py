"""The naive peer: what a GeoIP service written the obvious way looks like (Flask + geoip2's
`Reader.city(ip).to_dict()`, from the pinned requirements), served by bench/plain_stack.py the same
way as the ceiling. BENCH_CITY_DB names the City file; never mounted in the real app.
"""
from __future__ import annotations

import os

import geoip2.database
from flask import Flask, jsonify

app = Flask(__name__)
reader = geoip2.database.Reader(os.environ["BENCH_CITY_DB"])


@app.get("/api/v1/lookup/<ip>")
def lookup(ip):
    return jsonify(reader.city(ip).to_dict())


application = app
