"""FaceVerificationService of the face simulator: proto <-> domain, through the gate.

The face token is opaque and never stored, recorded or logged (the domain keeps a digest).
"""

from __future__ import annotations

from services.api.antifraud.partner.v1 import face_pb2 as pb
from services.api.antifraud.partner.v1 import face_pb2_grpc
from services.common.validation import collecting, text
from services.partners.domain.face import FaceProvider
from services.partners.entrypoints import fields
from services.partners.entrypoints.fields import Context
from services.partners.entrypoints.gate import Gate, Summary

MAX_FACE_TOKEN = 8192


class FaceServicer(face_pb2_grpc.FaceVerificationServiceServicer):
    def __init__(self, provider: FaceProvider, gate: Gate) -> None:
        self.provider = provider
        self.gate = gate

    async def VerifyFace(
        self, request: pb.VerifyFaceRequest, context: Context
    ) -> pb.VerifyFaceResponse:
        with collecting() as v:
            key = fields.idempotency_key(v, request.idempotency_key)
            subject = text(
                v, "subject_reference", request.subject_reference,
                max_len=fields.MAX_REFERENCE, required=True,
            )  # fmt: skip
            token = text(v, "face_token", request.face_token, max_len=MAX_FACE_TOKEN, required=True)

        def answer() -> tuple[pb.VerifyFaceResponse, Summary]:
            decision = self.provider.verify(subject, token, key, now=fields.now())
            response = pb.VerifyFaceResponse(
                result=int(decision.result),  # type: ignore[arg-type]
                score=decision.score,
                provider_reference=decision.provider_reference,
                failure_reason=int(decision.failure_reason or 0),  # type: ignore[arg-type]
                verify_time=fields.timestamp(decision.verify_time),
            )
            summary = {
                "subject_reference": subject,
                "result": pb.FaceVerificationResult.Name(response.result),
                "provider_reference": decision.provider_reference,
            }
            if decision.failure_reason is not None:
                summary["failure_reason"] = pb.FaceFailureReason.Name(response.failure_reason)
            return response, summary

        return await self.gate.effect("VerifyFace", key, request, answer)
