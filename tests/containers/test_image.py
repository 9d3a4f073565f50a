"""The image from deploy/Dockerfile runs: every command of the CLI works in it as its
non-root user, on a read-only root file system, with no capabilities and no new
privileges, as compose and Kubernetes run it.

Needs the built image: ``make test-containers`` builds it and names it in
``ANTIFRAUD_IMAGE``; without that these tests are skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from services.common.config import DEFAULT_ADDRS, env_key
from services.registry import REGISTRY, UP_ORDER
from tests.containers.podman import podman, run_health_check, ulimits

IMAGE = os.environ.get("ANTIFRAUD_IMAGE", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not IMAGE, reason="needs the built image: run by make test-containers"),
]
#: As compose.yaml and the Kubernetes manifests run every process.
HARDENED = [
    "--read-only",
    "--read-only-tmpfs=false",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
]
DATA_DIR = "/var/lib/antifraud"
KEYS_DIR = "/var/lib/antifraud-keys"
ECHO_PORT = 50099
#: Six Python servers starting at once on two busy cores can take well over a minute.
STARTUP_TIMEOUT = 180


def port_of(name: str) -> int:
    return int(DEFAULT_ADDRS[name].rpartition(":")[2]) if name in DEFAULT_ADDRS else ECHO_PORT


def fresh_volume() -> Iterator[str]:
    """A fresh named volume: mounted, it starts as the image's own folder there (owned by
    10001, mode 0700), as compose's volumes and Kubernetes' emptyDir do."""
    name = f"antifraud-test-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", name)
    try:
        yield name
    finally:
        podman("volume", "rm", "--force", name, check=False)


@pytest.fixture
def data_volume() -> Iterator[str]:
    yield from fresh_volume()


@pytest.fixture
def keys_volume() -> Iterator[str]:
    """The keys dir (ANTIFRAUD_KEYS_DIR): services that seal personal data generate their
    keys there when none are configured, as compose's per-service keys volumes hold them."""
    yield from fresh_volume()


def run(*command: str, volume: str | None = None) -> subprocess.CompletedProcess[str]:
    """``podman run --rm`` of the image's entry point (``antifraud``) with ``command``."""
    mount = ["--volume", f"{volume}:{DATA_DIR}"] if volume else []
    return podman("run", "--rm", *ulimits(), *HARDENED, *mount, IMAGE, *command, check=False)


def test_the_image_runs_as_uid_10001_and_checks_its_own_health() -> None:
    inspected = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["antifraud"]
    # Built in Docker's format: OCI images have no HEALTHCHECK (podman shows it at the top).
    check = inspected.get("Healthcheck") or config.get("Healthcheck") or {}
    # bash asking the plaintext /healthz, not a Python interpreter (deploy/healthcheck.sh).
    assert 'antifraud-healthcheck "${ANTIFRAUD_HEALTH_PORT}"' in " ".join(check.get("Test", []))
    who = podman("run", "--rm", *ulimits(), *HARDENED, "--entrypoint", "id", IMAGE).stdout
    assert who.startswith("uid=10001(antifraud) gid=10001(antifraud)")


def test_help_lists_every_command() -> None:
    done = run("--help")
    assert done.returncode == 0, done.stderr
    for command in ("up", "serve", "migrate", "health", "keys"):
        assert command in done.stdout


def test_migrate_and_keys_on_the_data_volume(data_volume: str) -> None:
    # No keys configured and the keys dir on the read-only root: migrations need none.
    migrated = run("migrate", volume=data_volume)
    assert migrated.returncode == 0, migrated.stderr
    for name in ("risk", "report", "warning", "identity", "gateway"):
        assert f"{name}: migrated" in migrated.stdout
    created = run("keys", "create", "--role", "admin", "--subject", "ops-1", volume=data_volume)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert re.fullmatch(r"afk_\w+_\S+", token), token
    listed = run("keys", "list", volume=data_volume)
    assert listed.returncode == 0, listed.stderr
    key_id, role, subject, state = listed.stdout.split()[:4]
    assert (role, subject, state) == ("admin", "ops-1", "active")
    revoked = run("keys", "revoke", key_id, volume=data_volume)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in run("keys", "list", volume=data_volume).stdout
    # Nothing was written outside the volume: the root file system is read-only.
    assert run("keys", "revoke", "no-such-key", volume=data_volume).returncode == 1


async def wait_health(
    container: str, port: int, timeout: float = STARTUP_TIMEOUT, *, http: bool = False
) -> None:
    """The image's probe (bash, no interpreter) inside the container until the server on
    ``port`` says SERVING on its plaintext /healthz: the metrics port (``port`` + 1000) of
    a gRPC server, the port itself of a web process (``http``: the console)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    probe = ["antifraud-healthcheck", str(port if http else port + 1000)]
    while True:
        done = await asyncio.to_thread(podman, "exec", container, *probe, check=False)
        if done.returncode == 0:
            return
        state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        if state != "running" or loop.time() > deadline:
            logs = podman("logs", "--tail", "30", container, check=False)
            raise AssertionError(f"{container} never SERVING ({state}):\n{logs.stderr}")
        await asyncio.sleep(1)


def stop(container: str) -> tuple[int, str]:
    """``podman stop``: SIGTERM, SIGKILL after 20 s. Returns the exit code and the logs."""
    podman("stop", "--time", "20", container, timeout=90)
    code = int(podman("inspect", "--format", "{{.State.ExitCode}}", container).stdout)
    logs = podman("logs", container, check=False)
    podman("rm", "--force", container, check=False)
    return code, logs.stdout + logs.stderr


async def test_serve_health_and_the_image_s_own_healthcheck(data_volume: str) -> None:
    """``serve`` in containers of their own: the gateway by the image's default command,
    found healthy by the image's HEALTHCHECK, and the echo tool server; ``antifraud
    health`` inside each finds it SERVING; SIGTERM stops each with exit code 0, not by
    SIGKILL. (Every other server is served this way, one container each, by the compose
    deployment of ``make test-containers``, which checks the same on the way down.)"""
    containers: dict[str, str] = {}
    for name in ("gateway", "echo"):
        container = f"antifraud-test-{name}-{uuid.uuid4().hex[:6]}"
        env = ["--env", f"ANTIFRAUD_{env_key(name)}_ADDR=127.0.0.1:{port_of(name)}"]
        command = [] if name == "gateway" else ["serve", name]  # the default: serve gateway
        podman(
            "run", "--detach", "--name", container, *ulimits(), *HARDENED, *env,
            "--volume", f"{data_volume}:{DATA_DIR}", IMAGE, *command,
        )  # fmt: skip
        containers[name] = container
    try:
        await asyncio.gather(*(wait_health(c, port_of(n)) for n, c in containers.items()))
        assert (await run_health_check(containers["gateway"]))[0] == 0  # the image's HEALTHCHECK
        # `antifraud health` asks the gRPC health service itself.
        for name, container in containers.items():
            asked = ["antifraud", "health", f"127.0.0.1:{port_of(name)}"]
            assert podman("exec", container, *asked, check=False).returncode == 0, name
        for container in containers.values():
            uid = podman("exec", container, "sh", "-c", "stat -c %u /proc/1").stdout.strip()
            assert uid == "10001"
        for name, container in containers.items():
            code, logs = stop(container)
            assert code == 0, f"{name} exited {code} on SIGTERM:\n{logs[-2000:]}"
            assert "Traceback" not in logs, f"{name}:\n{logs[-2000:]}"
    finally:
        for container in containers.values():
            podman("rm", "--force", "--time", "0", container, check=False)


async def wait_log(container: str, pattern: re.Pattern[str]) -> re.Match[str]:
    """The first match of ``pattern`` in the container's output, waiting for it to appear."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    while True:
        logs = podman("logs", container, check=False)
        found = pattern.search(logs.stdout + logs.stderr)
        if found is not None:
            return found
        assert loop.time() < deadline, (logs.stdout + logs.stderr)[-2000:]
        await asyncio.sleep(1)


async def test_up_serves_the_whole_suite_in_one_container(
    data_volume: str, keys_volume: str
) -> None:
    container = f"antifraud-test-up-{uuid.uuid4().hex[:6]}"
    podman(
        "run", "--detach", "--name", container, *ulimits(), *HARDENED,
        "--volume", f"{data_volume}:{DATA_DIR}", "--volume", f"{keys_volume}:{KEYS_DIR}",
        IMAGE, "up", "--timeout", str(STARTUP_TIMEOUT),
    )  # fmt: skip
    try:
        await asyncio.gather(
            *(wait_health(container, port_of(n), http=not REGISTRY[n].grpc) for n in UP_ORDER)
        )
        # A port answers once its first worker serves; `up` says when every process does
        # (risk and the gateway run one worker per core by default).
        served = await wait_log(container, re.compile(r"all (\d+) servers SERVING"))
        assert int(served.group(1)) >= len(UP_ORDER)
        code, logs = stop(container)
        assert code == 0, logs[-2000:]
    finally:
        podman("rm", "--force", "--time", "0", container, check=False)
