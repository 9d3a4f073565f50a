"""The services' caller tables: complete (every method listed, so deny-by-default is a
decision, not an accident) and at least as open as the gateway's table, so whatever
the gateway admits for a role the service serves."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pool

from gateway.domain.policy import PROXIED
from services.api.antifraud.identity.v1 import identity_pb2  # noqa: F401 - registers
from services.api.antifraud.report.v1 import knowledge_pb2, report_pb2  # noqa: F401
from services.api.antifraud.risk.v1 import risk_pb2  # noqa: F401
from services.api.antifraud.warning.v1 import warning_pb2  # noqa: F401
from services.common.auth import Callers
from services.common.principals import Principal, Role
from services.identity.entrypoints.policy import POLICY as IDENTITY
from services.report.entrypoints.policy import POLICY as REPORT
from services.risk.entrypoints.policy import POLICY as RISK
from services.warning.entrypoints.policy import POLICY as WARNING

TABLES: dict[str, dict[str, Callers]] = {
    "antifraud.risk.v1.RiskService": RISK,
    "antifraud.report.v1.ReportService": REPORT,
    "antifraud.report.v1.KnowledgeService": REPORT,
    "antifraud.warning.v1.WarningService": WARNING,
    "antifraud.identity.v1.IdentityService": IDENTITY,
}


@pytest.mark.parametrize("service", sorted(TABLES))
def test_every_method_is_in_its_services_table(service: str) -> None:
    found = descriptor_pool.Default().FindServiceByName(service)
    listed = {path for path in TABLES[service] if path.startswith(f"/{service}/")}
    assert listed == {f"/{service}/{m.name}" for m in found.methods}


def test_services_serve_every_role_the_gateway_admits() -> None:
    for path, rule in PROXIED.items():
        service = path.strip("/").split("/")[0]
        callers = TABLES[service][path]
        for role in rule.roles:
            assert role in callers.roles, f"{path}: the gateway admits {role}, the service not"


def test_admins_may_call_anything_and_services_only_what_they_are_named_for() -> None:
    callers = RISK["/antifraud.risk.v1.RiskService/WatchIndicatorChanges"]
    assert callers.allows(Principal(Role.ADMIN, "ops"))
    assert callers.allows(Principal.service("warning"))
    assert not callers.allows(Principal.service("report"))
    assert not callers.allows(Principal(Role.CITIZEN, "u1"))
    assert not callers.allows(Principal(Role.INTERNAL))
