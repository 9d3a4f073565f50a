"""Wires the identity service from configuration; tests call ``wire`` with their own parts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.common.config import data_dir, target
from services.common.db import Database
from services.common.retention import RetentionSettings
from services.identity.adapters import keys
from services.identity.adapters.keys import KeyRing
from services.identity.adapters.partners import (
    GrpcBanks,
    GrpcCarriers,
    GrpcFaceVerifier,
    GrpcIdentityRegistry,
)
from services.identity.adapters.peers import (
    GrpcContactChecker,
    GrpcRiskChecker,
    GrpcWarningNotifier,
)
from services.identity.adapters.vault import Vault
from services.identity.component import IdentityComponent
from services.identity.config import IdentitySettings, data_keys_setting, index_key_setting
from services.identity.service_layer.deps import Deps, utc_now
from services.partners.directory import PartnerClients


def wire(
    db: Database,
    keyring: KeyRing,
    settings: IdentitySettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    retention: RetentionSettings | None = None,
) -> IdentityComponent:
    """The component on ``db`` with ``keyring``; peers and partners at ``settings.targets``
    (or where the environment and the partner directory put them)."""
    timeout = settings.partner_timeout_seconds
    partners = PartnerClients(settings.targets, budget=timeout)
    risk = GrpcRiskChecker(settings.targets.get("risk") or target("risk"), timeout)
    warning_target = settings.targets.get("warning") or target("warning")
    warning = GrpcWarningNotifier(warning_target, timeout)
    contacts = GrpcContactChecker(warning_target, timeout)
    vault = Vault(keyring)
    db.attach_vault(vault)
    deps = Deps(
        db=db,
        vault=vault,
        settings=settings,
        registry=GrpcIdentityRegistry(partners, timeout),
        face=GrpcFaceVerifier(partners, timeout),
        carriers=GrpcCarriers(partners, timeout),
        banks=GrpcBanks(partners, timeout),
        risk=risk,
        clock=clock,
        contacts=contacts,
    )
    return IdentityComponent(
        deps,
        warning,
        closers=[partners.close, risk.close, warning.close, contacts.close],
        retention=retention,
    )


def build(name: str = "identity") -> IdentityComponent:
    settings = IdentitySettings.from_env()
    keyring = keys.load(data_keys_setting(), index_key_setting(), data_dir())
    return wire(Database(name), keyring, settings, retention=RetentionSettings.from_env())
