"""Gateway rules without I/O: keys, roles, rate limits, the policy table."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pool

from gateway.domain.policy import POLICY, PROXIED, Rule
from gateway.domain.principals import (
    hash_secret,
    key_principal,
    new_key,
    parse_token,
    secret_matches,
)
from services.api.antifraud.gateway.v1 import gateway_pb2  # noqa: F401 - registers descriptors
from services.common.principals import InvalidPrincipal, Principal, Role
from services.common.ratelimit import RateLimiter


def test_keys_round_trip_and_only_their_hash_matches() -> None:
    issued = new_key()
    assert parse_token(issued.token) == (issued.key_id, issued.secret)
    stored = hash_secret(issued.secret)
    assert issued.secret not in stored
    assert secret_matches(issued.secret, stored)
    assert not secret_matches(issued.secret + "x", stored)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "afk",
        "afk__x",
        "xyz_0123456789abcdef_s",
        "afk_short_s",
        "afk_0123456789abcdef_",
        "a" * 500,
    ],
)
def test_malformed_tokens_are_not_keys(token: str) -> None:
    assert parse_token(token) is None


def test_a_key_speaks_for_a_principal_the_services_accept_and_never_for_internal() -> None:
    assert key_principal(Role.CITIZEN, "").header == "citizen:"
    assert key_principal(Role.BANK, "bank-abc") == Principal.parse("bank:bank-abc")
    for role, subject in [(Role.INTERNAL, ""), (Role.ADMIN, ""), (Role.BANK, "ICBC Beijing")]:
        with pytest.raises(InvalidPrincipal):
            key_principal(role, subject)


def test_rate_limiter_allows_a_burst_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(rate_per_second=10, burst=3)
    assert [limiter.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("k", now=0.0)
    assert wait == pytest.approx(0.1)
    assert limiter.take("k", now=0.1) == 0.0
    assert limiter.take("other", now=0.0) == 0.0


def test_admin_may_do_anything_others_only_what_they_are_granted() -> None:
    rule = Rule(frozenset({Role.BANK}))
    assert rule.allows(Role.BANK)
    assert rule.allows(Role.ADMIN)
    assert not rule.allows(Role.CITIZEN)


def test_every_policy_entry_names_a_real_method_and_owner_field() -> None:
    pool = descriptor_pool.Default()
    for path, rule in POLICY.items():
        service_name, method_name = path.strip("/").split("/")
        method = pool.FindServiceByName(service_name).methods_by_name[method_name]
        if rule.owner_field:
            message: Any = method.input_type
            for part in rule.owner_field.split("."):
                field = message.fields_by_name[part]
                message = field.message_type
            assert field.type == field.TYPE_STRING


def test_internal_only_methods_are_not_exposed() -> None:
    assert "/antifraud.identity.v1.IdentityService/FindUserByPhone" not in PROXIED
    assert "/antifraud.identity.v1.IdentityService/RegisterUser" not in PROXIED
    assert "/antifraud.warning.v1.WarningService/UpsertRecipient" not in PROXIED
    assert "/antifraud.warning.v1.WarningService/SendNotification" not in PROXIED
