"""IdentityRegistryService of the registry simulator: proto <-> domain, through the gate."""

from __future__ import annotations

from services.api.antifraud.partner.v1 import registry_pb2 as pb
from services.api.antifraud.partner.v1 import registry_pb2_grpc
from services.common import resident_id
from services.common.validation import collecting
from services.partners.domain.registry import Registry
from services.partners.entrypoints import fields
from services.partners.entrypoints.fields import Context
from services.partners.entrypoints.gate import Gate, Summary


class RegistryServicer(registry_pb2_grpc.IdentityRegistryServiceServicer):
    def __init__(self, registry: Registry, gate: Gate) -> None:
        self.registry = registry
        self.gate = gate

    async def VerifyIdentity(
        self, request: pb.VerifyIdentityRequest, context: Context
    ) -> pb.VerifyIdentityResponse:
        with collecting() as v:
            name = fields.person_name(v, "name", request.name)
            id_number = fields.resident_id_number(
                v, "resident_id_number", request.resident_id_number
            )

        def answer() -> tuple[pb.VerifyIdentityResponse, Summary]:
            match = self.registry.verify(name, id_number)
            response = pb.VerifyIdentityResponse(match=int(match))  # type: ignore[arg-type]
            summary = {
                "masked_resident_id_number": resident_id.mask(id_number),
                "match": pb.IdentityMatch.Name(response.match),
            }
            return response, summary

        return await self.gate.read("VerifyIdentity", answer)
