"""The one principal model every service reads a verified caller with: parsing and roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common import context, principals, tokens
from services.common.principals import InvalidPrincipal, Principal, Role


@pytest.mark.parametrize(
    ("raw", "role", "subject"),
    [
        ("", Role.INTERNAL, ""),
        ("citizen:u1", Role.CITIZEN, "u1"),
        ("citizen:", Role.CITIZEN, ""),
        ("carrier:carrier-cmcc", Role.CARRIER, "carrier-cmcc"),
        ("bank:icbc", Role.BANK, "icbc"),
        ("analyst:a7", Role.ANALYST, "a7"),
        ("admin:root", Role.ADMIN, "root"),
        (
            "citizen:3f2b8c1e-9d4a-4c6e-8f00-1a2b3c4d5e6f",
            Role.CITIZEN,
            "3f2b8c1e-9d4a-4c6e-8f00-1a2b3c4d5e6f",
        ),
        ("analyst:ops.1@example", Role.ANALYST, "ops.1@example"),
        ("internal:report", Role.INTERNAL, "report"),
        ("citizen:" + "x" * 100, Role.CITIZEN, "x" * 100),
    ],
)
def test_principals_parse_and_their_header_reads_back(raw: str, role: Role, subject: str) -> None:
    principal = Principal.parse(raw)
    assert (principal.role, principal.subject) == (role, subject)
    assert principal.header == raw
    assert Principal.parse(principal.header) == principal


@pytest.mark.parametrize(
    "raw",
    [
        "citizen",  # no separator
        ":u1",
        "robot:x",
        "Citizen:u1",
        "internal:",  # a service always names itself
        "internal:Report",
        "internal:a b",
        "analyst:",  # only a citizen may be anonymous
        "bank:",
        "carrier:",
        "admin:",
        "citizen:a b",
        "citizen:u1:u2",
        "bank:icbc\n",
        "citizen:" + "x" * 101,
    ],
)
def test_malformed_principals_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPrincipal):
        Principal.parse(raw)


def test_a_principal_cannot_be_built_in_a_shape_parse_would_refuse() -> None:
    with pytest.raises(InvalidPrincipal):
        Principal(Role.INTERNAL, "not a service")
    with pytest.raises(InvalidPrincipal):
        Principal(Role.BANK)
    with pytest.raises(InvalidPrincipal):
        Principal(Role.ANALYST, "a/b")
    assert Principal(Role.CITIZEN).anonymous


@pytest.mark.parametrize(
    ("raw", "anonymous", "trusted", "staff", "actor"),
    [
        ("", False, True, True, "internal"),
        ("internal:report", False, True, True, "internal:report"),
        ("admin:root", False, True, True, "admin:root"),
        ("analyst:a7", False, False, True, "analyst:a7"),
        ("bank:icbc", False, False, False, "bank:icbc"),
        ("carrier:cmcc", False, False, False, "carrier:cmcc"),
        ("citizen:u1", False, False, False, "citizen:u1"),
        ("citizen:", True, False, False, "citizen:"),
    ],
)
def test_what_each_role_is(
    raw: str, anonymous: bool, trusted: bool, staff: bool, actor: str
) -> None:
    principal = Principal.parse(raw)
    assert (principal.anonymous, principal.trusted, principal.staff) == (anonymous, trusted, staff)
    assert principal.audit_actor == actor


def test_only_the_citizen_or_an_internal_service_acts_for_a_user() -> None:
    assert Principal.parse("citizen:u1").acts_for("u1")
    assert not Principal.parse("citizen:u2").acts_for("u1")
    assert not Principal.parse("citizen:").acts_for("")
    assert Principal.parse("").acts_for("u1")
    assert not Principal.parse("admin:root").acts_for("u1")
    assert not Principal.parse("analyst:a7").acts_for("u1")
    assert not Principal.parse("bank:icbc").acts_for("u1")


def test_current_reads_the_principal_of_the_rpc_being_served() -> None:
    token = context.principal_var.set("")
    try:
        assert principals.current() == Principal(Role.INTERNAL)
        context.principal_var.set("bank:icbc")
        assert principals.current() == Principal(Role.BANK, "icbc")
        context.principal_var.set("bank:")
        with pytest.raises(InvalidPrincipal):
            principals.current()
    finally:
        context.principal_var.reset(token)


def test_only_an_officer_serves_a_region_and_only_a_real_one() -> None:
    assert Principal.parse("analyst:a7", "440300").region == "440300"
    for role, region in ((Role.BANK, "440300"), (Role.ANALYST, "4403"), (Role.ANALYST, "990000")):
        with pytest.raises(InvalidPrincipal):
            Principal(role, "x1", region)


def test_a_region_travels_in_the_gateways_signed_token_and_only_there(tmp_path: Path) -> None:
    for issuer in ("gateway", "report"):
        tokens.ensure_key(issuer, tmp_path)
    keyring = tokens.Keyring(tmp_path)
    officer = Principal(Role.ANALYST, "officer-1", "440300")
    token = tokens.Minter(keyring).token(officer, "warning", "k1")
    claims = tokens.Verifier(keyring, "warning").verify(token)
    assert (claims.principal, claims.principal.region) == (officer, "440300")
    # The same officer without a region is another token (the minter's cache tells them apart).
    national = tokens.Minter(keyring).token(Principal(Role.ANALYST, "officer-1"), "warning")
    assert tokens.Verifier(keyring, "warning").verify(national).principal.region == ""
    token_var = context.principal_var.set("analyst:officer-1")
    region_var = context.region_var.set("110000")
    try:
        assert principals.current() == Principal(Role.ANALYST, "officer-1", "110000")
    finally:
        context.region_var.reset(region_var)
        context.principal_var.reset(token_var)
