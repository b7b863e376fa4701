"""deploy/kubernetes, checked offline: every manifest against the Kubernetes 1.33 schemas
(kubernetes-validate bundles them; strict: no unknown fields), the overlays as `kubectl kustomize`
renders them when kubectl is installed, and the containers against docker-compose.yml, the
Dockerfile and the app's own defaults, so the three ways to deploy cannot drift apart."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
KUBERNETES = REPO / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAYS = ("single", "ha")
KUBERNETES_VERSION = "1.33.0"


def base_documents() -> list[dict]:
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")
    return [doc for name in listed for doc in yaml.safe_load_all((BASE / name).read_text()) if doc]


def rendered(overlay: str) -> list[dict]:
    done = subprocess.run(["kubectl", "kustomize", str(KUBERNETES / "overlays" / overlay)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(documents: list[dict]) -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}


def container(documents, kind: str, name: str) -> dict:
    return by_kind(documents)[(kind, name)]["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return base_documents()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def validate(documents: list[dict]) -> None:
    for doc in documents:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {error.message} at {list(error.path)}")


def test_the_schemas_are_bundled_for_the_stated_version():
    from kubernetes_validate.utils import all_versions
    assert KUBERNETES_VERSION in all_versions()  # offline: nothing is fetched


def test_every_base_manifest_validates(base):
    validate(base)
    assert {kind for kind, _ in by_kind(base)} == {"Namespace", "Deployment", "Service", "PodDisruptionBudget",
                                                   "PersistentVolumeClaim", "StatefulSet", "NetworkPolicy"}


def test_a_wrong_manifest_is_caught(base):
    broken = yaml.safe_load(yaml.safe_dump(by_kind(base)[("Deployment", "easy-geoip-app")]))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(by_kind(base)[("Deployment", "easy-geoip-app")]))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"  # strict: unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(by_kind(base)[("Service", "easy-geoip")]))
    broken["spec"]["prots"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed here; the base is validated above")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_render_and_validate(overlay):
    documents = rendered(overlay)
    validate(documents)
    kinds = by_kind(documents)
    app = kinds[("Deployment", "easy-geoip-app")]
    assert all(doc["metadata"].get("namespace") == "easy-geoip" for doc in documents if doc["kind"] != "Namespace")
    if overlay == "single":
        assert app["spec"]["replicas"] == 1 and ("HorizontalPodAutoscaler", "easy-geoip-app") not in kinds
    else:
        assert app["spec"]["replicas"] == 3
        hpa = kinds[("HorizontalPodAutoscaler", "easy-geoip-app")]["spec"]
        assert hpa["minReplicas"] == 3 and hpa["scaleTargetRef"]["name"] == "easy-geoip-app"
        assert kinds[("PodDisruptionBudget", "easy-geoip-app")]["spec"] == {
            "minAvailable": 2, "selector": app["spec"]["selector"]}


def test_every_pod_is_locked_down(base):
    for doc in base:
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for entry in pod["containers"]:
            security = entry["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert entry["resources"]["requests"]["memory"] and entry["resources"]["limits"]["memory"]


def test_network_policies_isolate_tz_world_and_the_internet(base):
    policies = {name: doc["spec"] for (kind, name), doc in by_kind(base).items() if kind == "NetworkPolicy"}
    deny = policies["easy-geoip-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    tz = policies["easy-geoip-tz-world"]["ingress"]
    assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for rule in tz for peer in rule["from"]] == ["app"]
    internet = [name for name, spec in policies.items()
                for rule in spec.get("egress", []) for peer in rule.get("to", []) if "ipBlock" in peer]
    assert set(internet) == {"easy-geoip-updater"}  # only the updater reaches outside the cluster


# ----------------------------------------------------------------------------- agreement with compose

def compose_env(service: dict) -> dict[str, str | None]:
    env = {}
    for item in service["environment"]:
        name, _, value = item.partition("=")
        env[name] = value or None
    return env


def compose_default(text: str) -> str:
    """'${GEOIP_IMAGE:-easy-geoip:latest}' -> 'easy-geoip:latest'."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def test_images_and_ports_agree_with_compose(base, compose):
    pairs = {("Deployment", "easy-geoip-app"): "app", ("Deployment", "easy-geoip-updater"): "updater",
             ("StatefulSet", "easy-geoip-tz-world"): "tz_world"}
    for key, service in pairs.items():
        entry = container(base, *key)
        assert entry["image"] == compose_default(compose["services"][service]["image"]), service
    app_port = container(base, "Deployment", "easy-geoip-app")["ports"][0]["containerPort"]
    assert compose["services"]["app"]["ports"][0].endswith(f":{app_port}")
    assert f"EXPOSE {app_port}" in (REPO / "Dockerfile").read_text()
    assert container(base, "StatefulSet", "easy-geoip-tz-world")["ports"][0]["containerPort"] == 5432
    assert "EXPOSE 5432" in (REPO / "docker" / "tz_world" / "Dockerfile").read_text()


def test_the_pull_path_agrees_with_compose(base, compose):
    app = {e["name"]: e.get("value") for e in container(base, "Deployment", "easy-geoip-app")["env"]}
    updater_container = container(base, "Deployment", "easy-geoip-updater")
    updater = {e["name"]: e.get("value") for e in updater_container["env"]}
    publish_port = updater_container["ports"][0]["containerPort"]
    assert updater["PUBLISH_LISTEN"] == compose_default(compose_env(compose["services"]["updater"])["PUBLISH_LISTEN"]) \
        == str(publish_port)
    pull = urlsplit(app["DB_PULL_URL"])
    assert pull.hostname == "easy-geoip-updater" and pull.port == publish_port
    service = by_kind(base)[("Service", "easy-geoip-updater")]["spec"]
    assert service["ports"][0]["port"] == publish_port
    assert urlsplit(compose_default(compose_env(compose["services"]["app"])["DB_PULL_URL"])).port == publish_port
    assert updater_container["command"] == compose["services"]["updater"]["command"]


def test_env_names_are_the_compose_files(base, compose):
    for key, service in ((("Deployment", "easy-geoip-app"), "app"), (("Deployment", "easy-geoip-updater"), "updater"),
                         (("StatefulSet", "easy-geoip-tz-world"), "tz_world")):
        names = {e["name"] for e in container(base, *key)["env"]}
        known = set(compose_env(compose["services"][service])) | {"TZ_READER_PASSWORD"}
        assert names <= known, (service, names - known)


def test_tz_database_url_agrees_with_compose(base, compose):
    app = {e["name"]: e.get("value") for e in container(base, "Deployment", "easy-geoip-app")["env"]}
    ours = urlsplit(app["TZ_DATABASE_URL"])
    theirs = urlsplit(compose_default(compose_env(compose["services"]["app"])["TZ_DATABASE_URL"]))
    assert (ours.username, ours.port, ours.path) == (theirs.username, theirs.port, theirs.path)
    assert ours.hostname == "easy-geoip-tz-world"
    assert ours.password == "$(TZ_READER_PASSWORD)"  # from the Secret, expanded by the kubelet


def test_probes_and_writable_paths_agree_with_the_image_and_compose(base, compose):
    app = container(base, "Deployment", "easy-geoip-app")
    healthcheck = (REPO / "docker" / "healthcheck.py").read_text()
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz" and "/readyz" in healthcheck
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    updater = container(base, "Deployment", "easy-geoip-updater")
    assert compose["services"]["updater"]["healthcheck"]["test"][-1].endswith(updater["readinessProbe"]["httpGet"]["path"])
    tz = container(base, "StatefulSet", "easy-geoip-tz-world")
    assert tz["readinessProbe"]["exec"]["command"] == compose["services"]["tz_world"]["healthcheck"]["test"][1:]
    for key, service in ((("Deployment", "easy-geoip-app"), "app"), (("StatefulSet", "easy-geoip-tz-world"), "tz_world")):
        mounts = {m["mountPath"] for m in container(base, *key)["volumeMounts"]}
        compose_service = compose["services"][service]
        targets = {entry["target"] if isinstance(entry, dict) else entry.split(":")[1]
                   for entry in compose_service["volumes"]}
        assert mounts == targets, service
        assert compose_service["read_only"] is True
    assert "GEOIP_CITY_DB=/data/city.mmdb" in (REPO / "Dockerfile").read_text()


def test_resources_agree_with_compose(base, compose):
    def mebibytes(text: str) -> int:
        number, unit = re.fullmatch(r"(\d+)([MG])i?", text).groups()
        return int(number) * (1024 if unit == "G" else 1)

    for key, service in ((("Deployment", "easy-geoip-app"), "app"), (("Deployment", "easy-geoip-updater"), "updater"),
                         (("StatefulSet", "easy-geoip-tz-world"), "tz_world")):
        limits = compose["services"][service]["deploy"]["resources"]["limits"]
        ours = container(base, *key)["resources"]["limits"]
        assert mebibytes(ours["memory"]) == mebibytes(compose_default(limits["memory"])), service
