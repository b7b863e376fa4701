"""The container files, checked without an engine: the compose file against the Compose
Specification schema and by docker-compose itself, both Dockerfiles by hadolint, and the promises
the files make (ports on loopback, tz_world internal only, no root, no secrets in the context)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILES = [REPO / "Dockerfile", REPO / "docker" / "tz_world" / "Dockerfile"]
VENV_BIN = Path(sys.executable).parent


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_file_matches_the_compose_spec_schema():
    done = run(str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_docker_compose_accepts_the_file_without_an_env_file(tmp_path):
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed (it is in the Makefile's TEST_APT)")
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    done = run("docker-compose", "--env-file", str(empty_env), "-f", str(COMPOSE_FILE), "config", "-q")
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(run("docker-compose", "--env-file", str(empty_env), "-f", str(COMPOSE_FILE),
                                  "config").stdout)
    port = rendered["services"]["app"]["ports"][0]
    assert port in ("127.0.0.1:8080:8080/tcp", "127.0.0.1:8080:8080") or port.get("host_ip") == "127.0.0.1", port
    # A setting not given stays unset in the container (the app's own default applies).
    assert rendered["services"]["app"]["environment"].get("GEOIP_WORKERS") is None


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: str(path.relative_to(REPO)))
def test_hadolint_passes(dockerfile):
    done = run(str(VENV_BIN / "hadolint"), str(dockerfile))
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_version_key_and_the_expected_services(compose):
    assert "version" not in compose
    assert set(compose["services"]) == {"app", "updater", "tz_world"}


def test_only_the_app_publishes_and_on_loopback_by_default(compose):
    assert compose["services"]["app"]["ports"] == ["${GEOIP_BIND:-127.0.0.1}:${GEOIP_PORT:-8080}:8080"]
    for name in ("updater", "tz_world"):
        assert "ports" not in compose["services"][name]


def test_tz_world_is_on_the_internal_network_only(compose):
    assert compose["networks"]["db"]["internal"] is True
    assert compose["services"]["tz_world"]["networks"] == ["db"]
    assert set(compose["services"]["app"]["networks"]) == {"web", "db"}
    assert "db" not in compose["services"]["updater"]["networks"]


def test_app_starts_after_tz_world_and_everything_restarts(compose):
    # The list form: the only one `docker stack deploy` accepts (the app degrades until PostGIS is up).
    assert compose["services"]["app"]["depends_on"] == ["tz_world"]
    for service in compose["services"].values():
        assert service["restart"] == "unless-stopped"


def test_named_volumes_the_updater_publishes_and_the_replicas_pull(compose):
    # The updater's volume is its own; each replica pulls into its own (one per node on Swarm).
    assert compose["services"]["app"]["volumes"][0] == "app-db:/data"
    assert compose["services"]["updater"]["volumes"][0] == "city-db:/data"
    assert "tz-data:/var/lib/postgresql/data" in compose["services"]["tz_world"]["volumes"]
    app_env = compose["services"]["app"]["environment"]
    assert "DB_PULL_URL=${DB_PULL_URL:-http://updater:8081}" in app_env
    assert "PUBLISH_LISTEN=${PUBLISH_LISTEN:-8081}" in compose["services"]["updater"]["environment"]
    # The publish endpoint is on `web`, which the app shares with the updater; never published.
    assert "web" in compose["services"]["app"]["networks"] and "ports" not in compose["services"]["updater"]


def test_swarm_deploy_sections(compose):
    app = compose["services"]["app"]["deploy"]
    assert app["update_config"]["order"] == "start-first" and app["update_config"]["failure_action"] == "rollback"
    assert app["rollback_config"]["order"] == "start-first"
    assert app["restart_policy"]["condition"] == "any"
    for name, service in compose["services"].items():
        deploy = service["deploy"]
        assert {"replicas", "update_config", "rollback_config", "restart_policy", "resources"} <= set(deploy), name
        assert deploy["resources"]["limits"]["memory"] and deploy["resources"]["reservations"]["memory"], name
        assert service["healthcheck"]["test"][0] == "CMD", name  # Swarm gates traffic and updates on it
    for name in ("updater", "tz_world"):  # one of each: one download, one lock, one volume
        assert compose["services"][name]["deploy"]["replicas"] == 1


def seconds(text: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)", text).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60}[unit]


def test_swarm_kills_a_task_only_after_sustained_health_check_failures(compose):
    """Swarm kills a task whose check fails `retries` times in a row. A check is a new process
    exec'd in the container, and took over 4 s on an overloaded host: with 4 s x 3 the edge and app
    tasks were replaced while they served (docs/scaling.md, "What fails how"). Each check may take
    10 s, and only half a minute or more of consecutive failures gets a task killed."""
    edge = yaml.safe_load((REPO / "deploy" / "swarm" / "edge.yml").read_text())["services"]["edge"]
    engine_timeouts = []
    for name, service in (*compose["services"].items(), ("edge", edge)):
        check = service["healthcheck"]
        assert seconds(check["timeout"]) >= 10, name
        assert check["retries"] * seconds(check["interval"]) >= 30, name
        engine_timeouts.append(seconds(check["timeout"]))
    # healthcheck.py's own socket timeout is only a backstop: never shorter than any engine timeout.
    own = re.search(r"urlopen\(URL, timeout=(\d+)\)", (REPO / "docker" / "healthcheck.py").read_text())
    assert own is not None and int(own.group(1)) >= max(engine_timeouts)


def test_the_edge_stops_gracefully():
    """Docker's default SIGTERM is Nginx's fast shutdown (requests in flight are cut); SIGQUIT finishes them."""
    edge = yaml.safe_load((REPO / "deploy" / "swarm" / "edge.yml").read_text())["services"]["edge"]
    assert edge["stop_signal"] == "SIGQUIT" and seconds(edge["stop_grace_period"]) >= 10


def test_docker_stack_accepts_the_file(tmp_path):
    """`docker stack config` runs the Swarm loader without an engine in swarm mode."""
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine: the Swarm loader is checked by make e2e")
    done = run("docker", "stack", "config", "-c", str(COMPOSE_FILE))
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(done.stdout)
    assert rendered["services"]["app"]["deploy"]["update_config"]["order"] == "start-first"
    app = rendered["services"]["app"]
    assert app["read_only"] is True
    assert {v["target"] for v in app["volumes"] if v["type"] == "tmpfs"} == {"/run/geoip", "/tmp"}


def test_hardening_on_every_service(compose):
    for name, service in compose["services"].items():
        assert service.get("read_only") is True, name
        # Writable places are tmpfs mounts in the long form: Swarm ignores the `tmpfs:` key.
        assert "tmpfs" not in service, name
        assert "/tmp" in {v["target"] for v in service["volumes"] if isinstance(v, dict) and v["type"] == "tmpfs"}, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: str(path.relative_to(REPO)))
def test_images_run_as_a_numeric_non_root_user(dockerfile):
    users = [line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("USER ")]
    assert users, "no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and uid != "0"


def test_app_image_has_healthcheck_expose_and_labels():
    text = (REPO / "Dockerfile").read_text()
    assert "HEALTHCHECK" in text and "/app/docker/healthcheck.py" in text
    assert "EXPOSE 8080" in text
    assert "org.opencontainers.image.source" in text and "org.opencontainers.image.licenses" in text
    runtime_stage = text.split("\nFROM ")[-1]
    assert "gcc" not in runtime_stage and "-dev" not in runtime_stage  # no compiler at runtime


def test_build_context_leaves_out_local_state_and_secrets():
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for entry in (".git", ".venv", ".env", "data", "*.mmdb", "secrets"):
        assert entry in ignored, entry
    assert not any(line.startswith("docker") for line in ignored)  # docker/certs/*.crt must reach the build
