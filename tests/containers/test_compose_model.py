"""tests/containers/podman.py turns deploy/compose.yaml into podman commands that keep what
the file says: checked here without podman (``make test`` runs it), from the model Compose
v2 itself renders."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.containers.podman import Containers, Project, seconds

pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="no docker-compose (Compose v2) on PATH; make test puts the dev extra's there",
)


@pytest.fixture(scope="module")
def project() -> Project:
    env = {
        **os.environ,
        "DEPLOY_RISK_REPLICAS": "2",
        "DEPLOY_WARNING_REPLICAS": "2",
        "DEPLOY_GATEWAY_PUBLISH": "127.0.0.1:41000",
        "DEPLOY_IMAGE": "localhost/antifraud:model-test",
    }
    return Project("antifraud-model", env=env)


def flags(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_dependencies_start_first(project: Project) -> None:
    order = project.order()
    assert order.index("postgres") < order.index("migrate") < order.index("risk")
    assert order.index("partners") < order.index("identity")
    assert order[-2:] == ["gateway", "console"]  # the console is a client of the gateway


def test_replicas_share_the_service_s_dns_name(project: Project) -> None:
    assert project.containers("risk") == ["antifraud-model-risk-1", "antifraud-model-risk-2"]
    for replica in (1, 2):
        argv = project.run_argv(project.services["risk"], replica)
        assert flags(argv, "--network-alias") == ["risk"]
        assert flags(argv, "--network") == ["antifraud-model_default"]
        assert "localhost/antifraud:model-test" in argv


def test_app_containers_keep_the_file_s_hardening(project: Project) -> None:
    argv = project.run_argv(project.services["report"], 1)
    assert "--read-only" in argv
    assert "--read-only-tmpfs=false" in argv  # no writable /run or /var/tmp that compose lacks
    assert flags(argv, "--tmpfs") == ["/tmp"]
    assert flags(argv, "--cap-drop") == ["ALL"]
    assert flags(argv, "--security-opt") == ["no-new-privileges"]
    assert flags(argv, "--stop-timeout") == ["20"]
    assert flags(argv, "--restart") == ["unless-stopped"]
    assert argv[-2:] == ["serve", "report"]


def test_health_checks_are_the_file_s(project: Project) -> None:
    risk = project.run_argv(project.services["risk"], 1)
    # bash asking risk's plaintext /healthz (gRPC port + 1000): no interpreter per check.
    assert json.loads(flags(risk, "--health-cmd")[0]) == ["antifraud-healthcheck", "51052"]
    assert flags(risk, "--health-start-period") == ["60s"]
    postgres = project.run_argv(project.services["postgres"], 1)
    # compose's $$ is a literal $ for the shell in the container.
    assert flags(postgres, "--health-cmd") == [
        'pg_isready -U "${POSTGRES_USER}" -d "${POSTGRES_DB}"'
    ]
    migrate = project.run_argv(project.services["migrate"], 1)
    assert "--no-healthcheck" in migrate
    assert flags(migrate, "--restart") == ["no"]


def test_limits_and_log_rotation_are_the_file_s(project: Project) -> None:
    for name in ("risk", "gateway", "migrate", "postgres"):
        argv = project.run_argv(project.services[name], 1)
        assert flags(argv, "--cpus") == ["2" if name == "postgres" else "1"], name
        assert len(flags(argv, "--memory")) == 1, name
        assert len(flags(argv, "--memory-reservation")) == 1, name
        assert int(flags(argv, "--pids-limit")[0]) >= 256, name
        assert flags(argv, "--log-driver") == ["json-file"], name
        assert sorted(flags(argv, "--log-opt")) == ["max-file=3", "max-size=10m"], name
    risk = project.run_argv(project.services["risk"], 1)
    assert flags(risk, "--memory") == [str(512 * 1024 * 1024)]


def test_migrate_gets_no_service_keys(project: Project) -> None:
    migrate = project.run_argv(project.services["migrate"], 1)
    assert flags(migrate, "--volume") == []
    assert not [e for e in flags(migrate, "--env") if "DATA_KEYS" in e or "INDEX_KEY" in e]


def test_volumes_and_published_ports(project: Project) -> None:
    identity = project.run_argv(project.services["identity"], 1)
    assert sorted(flags(identity, "--volume")) == [
        "antifraud-model_identity-data:/var/lib/antifraud",
        "antifraud-model_identity-keys:/var/lib/antifraud-keys",
        "antifraud-model_tls-identity:/var/lib/antifraud-tls:ro",
        "antifraud-model_token-keys:/var/lib/antifraud-tokens",
    ]
    gateway = project.run_argv(project.services["gateway"], 1)
    assert flags(gateway, "--publish") == ["127.0.0.1:41000:50050"]
    assert flags(project.run_argv(project.services["risk"], 2), "--publish") == []


def test_every_process_runs_with_mutual_tls_on_its_own_certificate(project: Project) -> None:
    """podman runs what compose says: each serving container mounts its own TLS volume
    read-only and is told to serve, ask for client certificates (not the gateway) and call
    over TLS; the `tls` one-shot, which alone holds the CA's key, runs first."""
    order = project.order()
    for name, service in project.services.items():
        argv = project.run_argv(service, 1)
        if argv[-2:-1] != ["serve"]:
            continue
        process = argv[-1]
        assert order.index("tls") < order.index(name), name
        env = dict(e.split("=", 1) for e in flags(argv, "--env"))
        tls_volumes = [v for v in flags(argv, "--volume") if "_tls-" in v]
        assert tls_volumes == [f"antifraud-model_tls-{process}:/var/lib/antifraud-tls:ro"], name
        for variable in ("CERT", "KEY", "CA", "CLIENT_CERT", "CLIENT_KEY"):
            assert env[f"ANTIFRAUD_TLS_{variable}"].startswith("/var/lib/antifraud-tls/"), name
        client_ca = env["ANTIFRAUD_TLS_CLIENT_CA"]
        assert client_ca == ("" if process == "gateway" else "/var/lib/antifraud-tls/ca.crt")
    one_shot = project.run_argv(project.services["tls"], 1)
    assert "--no-healthcheck" in one_shot
    assert flags(one_shot, "--restart") == ["no"]
    assert "antifraud-model_tls-ca:/var/lib/antifraud-tls-ca" in flags(one_shot, "--volume")


def test_fault_tests_name_containers_as_processes() -> None:
    containers = Containers("p")
    assert containers.container("report") == "p-report-1"
    assert containers.container("risk-2") == "p-risk-2"


def test_compose_durations() -> None:
    assert seconds("1m0s", 0) == 60
    assert seconds("2s", 0) == 2
    assert seconds("500ms", 0) == 0.5
    assert seconds(None, 7) == 7
