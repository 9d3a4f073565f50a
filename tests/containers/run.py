"""``make test-containers``: the suite in containers, tested as deployed.

    python -m tests.containers.run [--keep] [--skip-image-tests] [--skip-system-tests]

1. podman must work here; if it does not, one line says why and the exit code is 2.
2. The base images (scripts/container_base.sh: pulled, or made from Debian here) and the
   image from deploy/Dockerfile, built as compose's ``build`` section says.
3. tests/containers/test_image.py: every CLI command in that image as its non-root user,
   read-only root, no capabilities.
4. deploy/compose.yaml on podman (tests/containers/podman.py), with two replicas each of
   risk and warning, the gateway and the partners' control port published on free ports
   of 127.0.0.1; then the system tests (tests/e2e/test_system_gateway.py and
   test_system_faults.py) against it through ANTIFRAUD_E2E_GATEWAY / _PARTNERS /
   _ADMIN_KEY, the fault test killing and restarting containers.
5. Everything the run made is removed (``--keep`` leaves the project running), and
   dangling build cache older than a day.

The image is tagged ``localhost/antifraud:ct<pid>`` for the run (other work trees on the
machine build the same name from other code) unless ``DEPLOY_IMAGE`` names it.

It prints what it measured (build time, image size, time to all healthy, test time) and
ends with pytest's own summary lines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.containers import podman

SYSTEM_TESTS = ["tests/e2e/test_system_gateway.py", "tests/e2e/test_system_faults.py"]
IMAGE_TESTS = ["tests/containers/test_image.py"]


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def pytest(paths: list[str], env: dict[str, str]) -> int:
    return subprocess.call(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *paths], env=env, cwd=podman.ROOT
    )


def operator_certificate(project: podman.Project, image: str, into: Path) -> None:
    """The `tls` one-shot's client certificate for tools (volume tls-operator: ca.crt,
    tls.crt, tls.key), copied out through a throwaway container of the image: the
    volume's files belong to the image's user, which this one may not be."""
    for name in ("ca.crt", "tls.crt", "tls.key"):
        done = podman.podman(
            *("run", "--rm", "--pull", "never", "--network", "none", *podman.ulimits()),
            *("--volume", f"{project.volume('tls-operator')}:/tls:ro"),
            *("--entrypoint", "cat", image, f"/tls/{name}"),
        )
        (into / name).write_text(done.stdout)
    (into / "tls.key").chmod(0o600)


def admin_key(project: podman.Project, attempts: int = 5) -> str:
    """An admin key for the system tests, made in the gateway's container. A command that
    cannot reach the database exits, as a server does (and is restarted): a name the
    network's DNS did not answer yet (aardvark-dns reloads as containers come and go) is
    tried again, a few seconds apart."""
    command = ("antifraud", "keys", "create", "--role", "admin", "--subject", "system-tests")
    for attempt in range(1, attempts):
        try:
            return project.exec(project.container("gateway"), *command).strip()
        except podman.PodmanError as exc:
            print(f"keys create, attempt {attempt} of {attempts}: {exc}", flush=True)
            time.sleep(2.0 * attempt)
    return project.exec(project.container("gateway"), *command).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the suite in containers, tested as deployed")
    parser.add_argument("--keep", action="store_true", help="leave the project running")
    parser.add_argument("--skip-image-tests", action="store_true")
    parser.add_argument("--skip-system-tests", action="store_true")
    args = parser.parse_args(argv)
    measured: dict[str, str] = {}
    total = time.monotonic()

    reason = podman.unavailable()
    if reason:
        print(f"test-containers: cannot run containers here: {reason}", flush=True)
        return 2

    step("base images (pulled, or made here from Debian when no registry answers)")
    started = time.monotonic()
    subprocess.run(["bash", str(podman.ROOT / "scripts" / "container_base.sh")], check=True)
    measured["base images"] = f"{time.monotonic() - started:.0f} s"

    gateway_port, partners_port = podman.free_ports(2)
    # A tag of this run's own unless DEPLOY_IMAGE names one: other work trees on the same
    # machine build the same image name from other code. The layers stay cached.
    own_image = "DEPLOY_IMAGE" not in os.environ
    env = {
        **os.environ,
        "DEPLOY_IMAGE": os.environ.get("DEPLOY_IMAGE", f"localhost/antifraud:ct{os.getpid()}"),
        "DEPLOY_RISK_REPLICAS": "2",
        "DEPLOY_WARNING_REPLICAS": "2",
        "DEPLOY_GATEWAY_PUBLISH": f"127.0.0.1:{gateway_port}",
        "DEPLOY_PARTNERS_PUBLISH": f"127.0.0.1:{partners_port}",
    }
    project = podman.Project(f"antifraud-ct{os.getpid()}", env=env)
    image = project.services["gateway"].spec["image"]

    step(f"image {image} from deploy/Dockerfile (podman build --format docker)")
    measured["image build"] = f"{project.build():.0f} s"
    measured["image size"] = f"{podman.image_size(image) / 1e6:.0f} MB"
    print(f"built {image}: {measured['image size']} in {measured['image build']}", flush=True)

    failed = 0
    if not args.skip_image_tests:
        step("every CLI command in the image, as uid 10001, read-only, no capabilities")
        started = time.monotonic()
        failed |= pytest(IMAGE_TESTS, {**env, "ANTIFRAUD_IMAGE": image})
        measured["image tests"] = f"{time.monotonic() - started:.0f} s"

    if not args.skip_system_tests:
        step(f"deploy/compose.yaml on podman as project {project.name}")
        try:
            healthy = asyncio.run(project.up())
            measured["up to all healthy"] = f"{healthy:.0f} s"
            print(
                f"network: container network {project.network} (bridge, DNS by service name); "
                f"published: gateway 127.0.0.1:{gateway_port}, "
                f"partners control 127.0.0.1:{partners_port}",
                flush=True,
            )
            admin = admin_key(project)
            tls_dir = Path(tempfile.mkdtemp(prefix="antifraud-ct-tls-"))
            operator_certificate(project, image, tls_dir)
            print(f"mutual TLS: the operator's client certificate in {tls_dir}", flush=True)
            step("system and fault tests against the containers (over TLS)")
            started = time.monotonic()
            failed |= pytest(
                SYSTEM_TESTS,
                {
                    **env,
                    "ANTIFRAUD_E2E_GATEWAY": f"127.0.0.1:{gateway_port}",
                    "ANTIFRAUD_E2E_PARTNERS": f"127.0.0.1:{partners_port}",
                    "ANTIFRAUD_E2E_ADMIN_KEY": admin,
                    "ANTIFRAUD_E2E_TLS_DIR": str(tls_dir),
                    "ANTIFRAUD_E2E_PODMAN_PROJECT": project.name,
                },
            )
            measured["system tests"] = f"{time.monotonic() - started:.0f} s"
            if not args.keep:
                step("stop: each container gets SIGTERM and must exit 0 within its grace period")
                started = time.monotonic()
                codes = project.stop_all()
                unclean = {c: code for c, code in codes.items() if code != 0}
                print(
                    f"{len(codes)} containers stopped in {time.monotonic() - started:.0f} s; "
                    + (f"NOT cleanly: {unclean}" if unclean else "all exited 0"),
                    flush=True,
                )
                if unclean:
                    failed = 1
            if failed:
                for name in project.services:
                    for container in project.containers(name):
                        print(f"--- {container} (last lines)\n{project.logs(container, 15)}")
        except (podman.PodmanError, subprocess.CalledProcessError) as exc:
            print(f"test-containers: {exc}", flush=True)
            failed = 1
        finally:
            if args.keep:
                print(
                    f"left running: podman ps --filter label={podman.PROJECT_LABEL}={project.name}"
                )
            else:
                project.down()

    if own_image and not args.keep:
        podman.podman("rmi", image, check=False)
    # Build cache older than a day goes; newer stays for the next build.
    podman.podman("image", "prune", "--force", "--filter", "until=24h", check=False)
    measured["total"] = f"{time.monotonic() - total:.0f} s"
    step("measured: " + ", ".join(f"{k} {v}" for k, v in measured.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
