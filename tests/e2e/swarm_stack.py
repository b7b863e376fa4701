"""docker-compose.yml deployed for real with `docker stack deploy` on a single-node swarm.

`SwarmMode` makes this engine a swarm manager for the test when it is not in a swarm
(`docker swarm init`, manager port on 127.0.0.1 only) and leaves it afterwards if nothing else runs
on the engine (leaving breaks the DNS of running containers: see SwarmMode.__exit__); an engine that
is already a manager is used as it is and left so.

`SwarmStack` deploys under a throwaway stack name with its settings in the deploying process's
environment (how `docker stack deploy` interpolates and fills name-only variables), and removes
the stack, its networks and its volumes on close. Traffic from the host goes only to the
published port on 127.0.0.1 (the routing mesh); the insides are looked at with `docker exec`.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from tests.e2e.compose_stack import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"


class SwarmError(RuntimeError):
    pass


def docker(*args: str, timeout: float = 300, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise SwarmError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def swarm_state() -> dict:
    return json.loads(docker("info", "--format", "{{json .Swarm}}").stdout)


class SwarmMode:
    """`with SwarmMode():` this engine is a swarm manager inside; it is left as it was found."""

    def __init__(self, listen_port: int = 2377):
        self.listen_port = listen_port
        self.initialised = False

    def __enter__(self) -> "SwarmMode":
        state = swarm_state()
        if state["LocalNodeState"] == "active":
            if not state.get("ControlAvailable"):
                raise SwarmError("this engine is a swarm worker, not a manager: cannot deploy a stack here")
            return self
        if state["LocalNodeState"] != "inactive":
            raise SwarmError(f"the engine's swarm state is {state['LocalNodeState']!r} ({state.get('Error')}): not touching it")
        docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", f"127.0.0.1:{self.listen_port}")
        self.initialised = True
        return self

    def __exit__(self, *exc) -> None:
        if not self.initialised:
            return
        # `docker swarm leave` breaks the embedded DNS of every container then running on a
        # user-defined network (Docker 20.10: names answer "Name or service not known" afterwards;
        # `swarm init` does not), e.g. another developer's compose stack on this shared engine. So
        # the swarm is left only when nothing else runs; otherwise it stays, empty and harmless.
        others = docker("ps", "-q").stdout.split()
        if others:
            print(f"swarm: {len(others)} other containers are running on this engine: staying in the swarm "
                  "(leaving it would break their DNS); `docker swarm leave --force` once they are gone")
            return
        docker("swarm", "leave", "--force", timeout=120, check=False)


class SwarmStack:
    def __init__(self, name: str, settings: dict[str, str], extra_files: tuple[Path, ...] = ()):
        self.name = name
        self.settings = settings
        self.files = (COMPOSE_FILE, *extra_files)

    @property
    def env(self) -> dict:
        return {**os.environ, **self.settings}

    def deploy(self) -> None:
        files = [arg for path in self.files for arg in ("-c", str(path))]
        docker("stack", "deploy", "--resolve-image", "never", *files, self.name, env=self.env, timeout=600)

    def service(self, name: str) -> str:
        return f"{self.name}_{name}"

    def containers(self, service: str, running_only: bool = True) -> list[str]:
        args = ["ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.service(service)}"]
        if not running_only:
            args.insert(1, "-a")
        return docker(*args).stdout.split()

    def health(self, container: str) -> str:
        state = json.loads(docker("inspect", "--format", "{{json .State}}", container, check=False).stdout or "{}")
        return (state.get("Health") or {}).get("Status") or state.get("Status") or "gone"

    def healthy(self, service: str) -> list[str]:
        return [c for c in self.containers(service) if self.health(c) == "healthy"]

    def replicas(self, service: str) -> tuple[int, int]:
        """(running, desired) as `docker service ls` counts them."""
        text = docker("service", "ls", "--filter", f"name={self.service(service)}", "--format", "{{.Name}} {{.Replicas}}").stdout
        for line in text.splitlines():
            name, counts = line.split()[:2]
            if name == self.service(service):
                running, desired = counts.split("/")
                return int(running), int(desired)
        raise SwarmError(f"no service {self.service(service)}")

    def wait_healthy(self, service: str, count: int, timeout: float = 900) -> float:
        """Until exactly `count` running tasks of `service`, all healthy, and Swarm agrees."""
        started = time.monotonic()
        while True:
            containers = self.containers(service)
            healthy = [c for c in containers if self.health(c) == "healthy"]
            if len(containers) == count and len(healthy) == count and self.replicas(service) == (count, count):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise SwarmError(f"{service}: {len(healthy)} of {count} healthy after {timeout:.0f} s "
                                 f"({len(containers)} running)\n{self.logs(service)}")
            time.sleep(2)

    def exec(self, container: str, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return docker("exec", container, *command, check=check, timeout=120)

    def logs(self, service: str, tail: int = 80) -> str:
        try:
            done = docker("service", "logs", "--no-task-ids", "--tail", str(tail), self.service(service), check=False,
                          timeout=60)
        except subprocess.TimeoutExpired:  # a diagnostic must not hide the failure it describes
            return f"(docker service logs {self.service(service)} did not answer within 60 s)"
        return done.stdout + done.stderr

    def update(self, service: str, *args: str, timeout: float = 900) -> float:
        """`docker service update` and wait until Swarm says it converged; returns the seconds it took."""
        started = time.monotonic()
        docker("service", "update", "--detach=false", "--quiet", *args, self.service(service), timeout=timeout)
        return time.monotonic() - started

    def scale(self, service: str, replicas: int, timeout: float = 900) -> float:
        started = time.monotonic()
        docker("service", "scale", "--detach=false", f"{self.service(service)}={replicas}", timeout=timeout)
        return time.monotonic() - started

    def remove(self) -> None:
        docker("stack", "rm", self.name, check=False, timeout=300)
        label = f"label=com.docker.stack.namespace={self.name}"
        deadline = time.monotonic() + 180
        # Networks and volumes can only go once every task's container is gone.
        while time.monotonic() < deadline:
            left = docker("ps", "-aq", "--filter", label).stdout.split()
            networks = docker("network", "ls", "-q", "--filter", label).stdout.split()
            if not left and not networks:
                break
            time.sleep(2)
        # A volume stays in use until the engine has removed the last task container using it.
        while True:
            volumes = docker("volume", "ls", "-q", "--filter", label).stdout.split()
            for volume in volumes:
                done = docker("volume", "rm", "-f", volume, check=False)
                if done.returncode != 0:
                    print(f"swarm teardown: {volume}: {done.stderr.strip()}")
            if not volumes or time.monotonic() > deadline:
                break
            time.sleep(2)
