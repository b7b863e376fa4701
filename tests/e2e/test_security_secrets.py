"""No secret in an image or in the repository (issue 8, run by `make e2e`).

A licence key is planted everywhere a developer keeps one next to the code: `.env`, `.env.local`,
a Docker secret file under `secrets/`, a GeoIP.conf under `data/` and one under `docker/`. The app
image is then built from a copy of the working tree holding those files (the real tree is never
touched), and the key must not appear anywhere in the result: not in `docker history`, not in the
image config (Env, Labels, Cmd), not in any byte of any layer (`docker save` is scanned whole,
so a file copied in one layer and deleted in a later one is still found). The key the updater's
tests use against their MaxMind imitation is searched for too.

The repository check: no tracked file assigns a value to a licence-key setting (examples must
leave it empty), and the updater reads the key from a Docker secret file (MAXMIND_LICENSE_KEY_FILE),
so nobody needs to put it into the environment or the image.
"""
from __future__ import annotations

import gzip
import re
import secrets
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.e2e.engine import DockerEngine

REPO = Path(__file__).resolve().parents[2]
SENTINEL = "easygeoip-" + secrets.token_hex(12)  # a fresh key each run: no earlier image can contain it
IMAGE = "easy-geoip-secret-scan:test"


def planted_context(root: Path) -> Path:
    """A copy of the tracked tree (plus the git-ignored build certificates) with the key planted."""
    context = root / "context"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            target = context / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for certificate in (REPO / "docker" / "certs").glob("*.crt"):
        shutil.copy2(certificate, context / "docker" / "certs" / certificate.name)
    plants = {
        ".env": f"MAXMIND_ACCOUNT_ID=123456\nMAXMIND_LICENSE_KEY={SENTINEL}\n",
        ".env.local": f"MAXMIND_LICENSE_KEY={SENTINEL}\n",
        "secrets/maxmind_license_key.txt": SENTINEL + "\n",
        "data/GeoIP.conf": f"AccountID 123456\nLicenseKey {SENTINEL}\nEditionIDs GeoLite2-City\n",
        "docker/GeoIP.conf": f"AccountID 123456\nLicenseKey {SENTINEL}\n",
    }
    for name, text in plants.items():
        path = context / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return context


def needles() -> list[bytes]:
    return [SENTINEL.encode()]


def scan_stream(stream, found: list[str], where: str) -> None:
    """Search a byte stream for the needles, chunk by chunk, with an overlap for matches across chunks."""
    keep = max(len(needle) for needle in needles()) - 1
    tail = b""
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            return
        window = tail + chunk
        for needle in needles():
            if needle in window:
                found.append(f"{needle.decode()} in {where}")
        tail = window[-keep:]


def scan_saved_image(image: str) -> tuple[list[str], int]:
    """Every byte of every layer blob and config of `docker save`; returns (findings, blobs scanned)."""
    found: list[str] = []
    scanned = 0
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=save.stdout, mode="r|") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                blob = archive.extractfile(member)
                head = blob.read(2)
                rest = blob
                if head == b"\x1f\x8b":  # a compressed layer: scan what it expands to
                    rest = gzip.GzipFile(fileobj=_Prefixed(head, blob))
                    head = b""
                scan_stream(_Prefixed(head, rest), found, member.name)
                scanned += 1
    finally:
        save.stdout.close()
        assert save.wait(600) == 0, "docker save failed"
    return found, scanned


class _Prefixed:
    """A stream with bytes already read put back in front."""

    def __init__(self, prefix: bytes, stream):
        self.prefix, self.stream = prefix, stream

    def read(self, size: int = -1) -> bytes:
        if self.prefix:
            data, self.prefix = self.prefix, b""
            return data + (self.stream.read(size - len(data)) if size > len(data) else b"")
        return self.stream.read(size)


@pytest.fixture(scope="module")
def planted_image(tmp_path_factory):
    with DockerEngine():
        subprocess.run(["bash", str(REPO / "docker" / "build-base-image.sh")], check=True, timeout=1800)
        context = planted_context(tmp_path_factory.mktemp("secret-scan"))
        built = subprocess.run(["docker", "build", "--quiet", "-t", IMAGE, str(context)],
                               capture_output=True, text=True, timeout=3600)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        try:
            yield IMAGE
        finally:
            subprocess.run(["docker", "image", "rm", "-f", IMAGE], capture_output=True, timeout=300)


def test_no_key_in_history_or_config(planted_image):
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", planted_image],
                             capture_output=True, text=True, check=True).stdout
    config = subprocess.run(["docker", "image", "inspect", planted_image], capture_output=True, text=True,
                            check=True).stdout
    assert history.strip() and config.strip()
    for needle in needles():
        assert needle.decode() not in history
        assert needle.decode() not in config
    assert "LICENSE_KEY=" not in config  # no key-bearing variable baked into the image's Env


def test_no_key_in_any_layer(planted_image):
    found, scanned = scan_saved_image(planted_image)
    assert scanned >= 5, "the scan saw too little of the image to mean anything"
    assert found == []


def test_the_scan_finds_a_planted_key(tmp_path):
    """The scan itself can fail: a key in a layer (here, a tar written like one) is found."""
    layer = tmp_path / "layer.tar"
    secret_file = tmp_path / "GeoIP.conf"
    secret_file.write_text(f"LicenseKey {SENTINEL}\n")
    with tarfile.open(layer, "w") as archive:
        archive.add(secret_file, arcname="etc/GeoIP.conf")
    found: list[str] = []
    with open(layer, "rb") as stream:
        scan_stream(stream, found, "layer.tar")
    assert found == [f"{SENTINEL} in layer.tar"]


KEY_SETTING = re.compile(r"""(?m)^\s*(?:export\s+)?(MAXMIND_LICENSE_KEY|LicenseKey)\s*[=:\s]\s*(["']?)([^\s"'#]+)\2\s*$""")


def test_no_licence_key_in_the_repository():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    offenders = []
    for name in filter(None, tracked.decode().split("\0")):
        path = REPO / name
        if not path.is_file() or path.suffix in (".mmdb", ".png", ".gz", ".whl", ".svg"):
            continue
        text = path.read_text(errors="replace")
        for match in KEY_SETTING.finditer(text):
            value = match.group(3)
            if value.startswith(("$", "<", "{", "YOUR", "your")) or value in ("...", "xxx"):
                continue  # a reference or a placeholder, not a key
            offenders.append(f"{name}: {match.group(0).strip()}")
    assert offenders == []


def test_licence_key_can_come_from_a_docker_secret_file(tmp_path):
    from app.config import UpdateConfig
    secret = tmp_path / "maxmind_license_key"
    secret.write_text(SENTINEL + "\n")
    config = UpdateConfig.from_env({"MAXMIND_ACCOUNT_ID": "123456", "MAXMIND_LICENSE_KEY_FILE": str(secret)})
    assert config.maxmind_license_key == SENTINEL and config.has_maxmind_credentials
    assert SENTINEL not in repr(config)  # never printed with the settings
