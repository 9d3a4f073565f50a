"""Private look-ups, the app's side: check a value without telling the risk service which.

For every listed form that could match the value (the risk index's own candidates: host
suffixes and path prefixes of a URL, its host as a domain or address, a number as an SMS
sender) the app sends the bucket prefix and a blinded point, unblinds the service's
evaluations, keeps the bucket entries whose tag is its own, and decides with the risk
index's rules, as a plain check would. See ``services/risk/domain/private.py`` and the
README for what each side learns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.common.indicators import Indicator, IndicatorKind, normalize
from services.risk.domain.copies import ListEntry, LocalVerdict, decide
from services.risk.domain.index import RiskIndex, candidates
from services.risk.domain.private import Blinded

Metadata = Sequence[tuple[str, str]]


def private_request(
    indicator: Indicator,
) -> tuple[risk_pb2.SearchHashPrefixesRequest, list[Blinded]]:
    """The request for a normalised value, and the blinded forms to read its answer with."""
    forms = [Blinded(kind, value) for kind, value in candidates(indicator)]
    request = risk_pb2.SearchHashPrefixesRequest(
        queries=[
            risk_pb2.HashPrefixQuery(kind=int(f.kind), prefix=f.prefix, blinded=f.point)  # type: ignore[arg-type]
            for f in forms
        ]
    )
    return request, forms


def private_verdict(
    indicator: Indicator, forms: Sequence[Blinded], response: risk_pb2.SearchHashPrefixesResponse
) -> LocalVerdict:
    """The verdict, decided here from the entries whose tag matches one of our forms."""
    found = RiskIndex()
    for form, answer in zip(forms, response.answers, strict=True):
        mine = form.tag(answer.evaluated)
        for hashed in answer.entries:
            if hashed.tag == mine:
                mask = sum(1 << c for c in set(hashed.categories))
                entry = ListEntry(
                    int(form.kind), form.value, hashed.level, mask, hashed.verified, hashed.label
                )
                found.put(form.kind, form.value, entry.snapshot())
    return decide(indicator, found.lookup(indicator, int(time.time())))


class PrivateChecker:
    def __init__(
        self,
        stub: risk_pb2_grpc.RiskServiceStub,
        *,
        metadata: Metadata | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.stub = stub
        self.metadata = metadata
        self.timeout = timeout

    async def check(self, kind: IndicatorKind, value: str) -> LocalVerdict:
        """The verdict for a raw value (InvalidIndicator when it cannot be normalised)."""
        indicator = normalize(kind, value)
        request, forms = private_request(indicator)
        response = await self.stub.SearchHashPrefixes(
            request, metadata=self.metadata, timeout=self.timeout
        )
        return private_verdict(indicator, forms, response)
