# Easy GeoIP: Nginx + uWSGI + the Flask app under supervisord, no process running as root.
# Build: docker-compose build (or docker build -t easy-geoip .). See docs/deployment.md.

# ---- builder: compiles what needs a compiler (uWSGI, psycopg2) into /opt/venv -------------------
FROM debian:bookworm-slim AS builder

SHELL ["/bin/sh", "-eu", "-c"]
# An internal package index, if any, comes as a build argument. The builder stage is discarded, so
# nothing given here ends up in the final image or its history.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY docker/trust-build-certs.sh /usr/local/sbin/trust-build-certs
COPY docker/certs/ /tmp/build-certs/
# Debian stable only takes security fixes: pinning exact versions would break every point release.
# hadolint ignore=DL3008
RUN trust-build-certs /tmp/build-certs \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates gcc libc6-dev libmaxminddb-dev libpq-dev python3 python3-dev python3-venv \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt /tmp/requirements.txt
COPY app/native/setup.py app/native/*.c app/native/*.h /tmp/native/
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-build-isolation --no-deps /tmp/native \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# ---- runtime: no compiler, no package caches, no secrets ------------------------------------------
FROM debian:bookworm-slim

# Where the code comes from and its licence (SPDX); set them when publishing the image.
ARG IMAGE_SOURCE=local-build
ARG IMAGE_LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="Easy GeoIP" \
      org.opencontainers.image.description="Self-hosted GeoIP lookups: JSON API, web page, MaxMind-compatible endpoint" \
      org.opencontainers.image.source="${IMAGE_SOURCE}" \
      org.opencontainers.image.licenses="${IMAGE_LICENSES}" \
      org.opencontainers.image.documentation="docs/deployment.md" \
      io.easy-geoip.data-licenses="City data: per source (DB-IP Lite CC-BY-4.0, MaxMind GeoLite2 EULA); time-zone polygons ODbL-1.0"

SHELL ["/bin/sh", "-eu", "-c"]
COPY docker/trust-build-certs.sh /usr/local/sbin/trust-build-certs
COPY docker/certs/ /tmp/build-certs/
# /run/geoip is where a tmpfs is mounted (compose, Swarm, Kubernetes' emptyDir): Docker gives a
# tmpfs the mode of its mount point but root as owner, so the mount point is world-writable with
# the sticky bit; only uid 10001 runs in the container, and supervisord's socket is 0700 itself.
# hadolint ignore=DL3008
RUN trust-build-certs /tmp/build-certs \
    && rm -rf /tmp/build-certs \
    && apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libmaxminddb0 libpq5 libpython3.11 nginx python3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && rm -f /etc/nginx/sites-enabled/default \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin geoip \
    && mkdir -p /run/geoip /data \
    && chown geoip:geoip /run/geoip /data \
    && chmod 1777 /run/geoip

COPY --from=builder /opt/venv /opt/venv
# The code belongs to root and is read-only for the service user.
COPY cli.py main.py /app/
COPY app/ /app/app/
COPY docker/nginx.conf docker/site.conf docker/security-headers.conf docker/uwsgi.ini docker/supervisord.conf \
     docker/start_nginx.py docker/exit_on_fatal.py docker/healthcheck.py /app/docker/
RUN /opt/venv/bin/python -m compileall -q /app

ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    GEOIP_RUN_DIR=/run/geoip \
    GEOIP_LISTEN=8080 \
    GEOIP_CITY_DB=/data/city.mmdb

WORKDIR /app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 CMD ["python", "/app/docker/healthcheck.py"]
CMD ["supervisord", "-c", "/app/docker/supervisord.conf"]
