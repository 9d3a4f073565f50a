"""Calls that speak as whoever a test names: for tests and benchmarks only.

Production clients sign for this service or for the caller the gateway authenticated
(``services.common.clients.Propagate``); nothing a request carries can change that.
Tests and benchmarks need to speak as a citizen, a bank or a service directly, so
this subclass, which no production module imports, signs each call for the principal
its ``x-principal`` metadata names. It needs the issuer's private key in this process
(``tests.harness.use_token_keys``), so it can say no more than the keys at hand allow.
"""

from __future__ import annotations

import grpc

from services.common.clients import DEFAULT_BUDGET_SECONDS, Propagate
from services.common.principals import InvalidPrincipal, Principal


class SpeakAs(Propagate):
    """Signs each call for the principal its ``x-principal`` metadata names, else ``default``.
    An empty or malformed name sends no token at all."""

    HEADER = "x-principal"

    def __init__(self, default: str, budget: float = DEFAULT_BUDGET_SECONDS) -> None:
        super().__init__(budget)
        self.default = default

    def principal(self, details: grpc.aio.ClientCallDetails) -> Principal | None:
        named = self.default
        for key, value in details.metadata or ():
            if key == self.HEADER:
                named = str(value)
        try:
            return Principal.parse(named) if named else None
        except InvalidPrincipal:
            return None
