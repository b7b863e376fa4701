"""Builds mmdb_records (mmdb_records.c, ipv4_lines.c) against the system's libmaxminddb (Debian: libmaxminddb-dev).

Installed into the service's venv like any dependency: `pip install --no-build-isolation app/native`
(the Makefile and the Dockerfile do it). Without it the service still works, decoding every record.
"""
from setuptools import Extension, setup

setup(
    name="easy-geoip-mmdb-records",
    version="1.0.0",
    description="MaxMind DB record offsets and records decoded at an offset, for Easy GeoIP",
    ext_modules=[
        Extension(
            "mmdb_records",
            sources=["mmdb_records.c", "ipv4_lines.c"],
            depends=["offset_reader.h"],
            libraries=["maxminddb"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror"],
        )
    ],
)
