"""The identity service's tables (SQLAlchemy Core). Migrations create them; this is their shape.

Personal values appear only sealed (``*_sealed``, AES-GCM, see ``vault.py``),
found through keyed HMAC indexes (``*_hmac``), and shown through the masked
forms computed when they were written (``masked_*``).
"""

from __future__ import annotations

import sqlalchemy as sa

from services.common.idempotency import idempotency_table
from services.common.outbox import outbox_table

metadata = sa.MetaData()

_ID = sa.String(36)
_HMAC = sa.String(64)
_TIME = sa.DateTime(timezone=True)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("id_number_hmac", _HMAC, nullable=False, unique=True),
    sa.Column("phone_hmac", _HMAC, nullable=False, unique=True),
    sa.Column("name_sealed", sa.LargeBinary, nullable=False),
    sa.Column("id_number_sealed", sa.LargeBinary, nullable=False),
    sa.Column("phone_sealed", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("masked_name", sa.String(80), nullable=False),
    sa.Column("masked_id_number", sa.String(18), nullable=False),
    sa.Column("masked_phone", sa.String(32), nullable=False),
    # The face provider's reference of the person: a pseudonym, not the ID number.
    sa.Column("face_subject_ref", sa.String(64), nullable=False),
    sa.Column("verify_time", _TIME, nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
)

verification_requests = sa.Table(
    "verification_requests",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("requester_id", _ID, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("target_phone_hmac", _HMAC, nullable=False),
    # Kept to send the invitation SMS to a number with no registered user.
    sa.Column("target_phone_sealed", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("masked_target_phone", sa.String(32), nullable=False),
    sa.Column("purpose", sa.SmallInteger, nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Column("expire_time", _TIME, nullable=False),
    sa.Column("respond_time", _TIME, nullable=True),
    sa.Column("responder_id", _ID, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("face_attempts", sa.Integer, nullable=False),
    sa.Column("face_result", sa.SmallInteger, nullable=True),
    # The provider's reference of the last face check; never the image or the token.
    sa.Column("face_reference", sa.String(128), nullable=True),
    # "Is this <name>?": the name the requester expects, and the yes / no once verified.
    sa.Column("expected_name_sealed", sa.LargeBinary, nullable=True),
    sa.Column("name_matches", sa.Boolean, nullable=True),
    sa.Index("ix_verification_requests_requester", "requester_id", "create_time"),
    sa.Index("ix_verification_requests_target", "target_phone_hmac", "create_time"),
    sa.Index("ix_verification_requests_due", "state", "expire_time"),
)

blocks = sa.Table(
    "blocks",
    metadata,
    sa.Column("blocker_id", _ID, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("requester_id", _ID, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("create_time", _TIME, nullable=False),
)

bound_accounts = sa.Table(
    "bound_accounts",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("user_id", _ID, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("account_hmac", _HMAC, nullable=False, unique=True),
    sa.Column("account_sealed", sa.LargeBinary, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("masked_account", sa.String(80), nullable=False),
    sa.Column("confirmation", sa.SmallInteger, nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("event_time", _TIME, nullable=False),
    sa.Column("actor", sa.String(160), nullable=False),
    sa.Column("record", sa.String(160), nullable=False),
    sa.Column("fields", sa.String(200), nullable=False),
    sa.Column("purpose", sa.String(200), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Index("ix_audit_events_record", "record", "id"),
    sa.Index("ix_audit_events_actor", "actor", "id"),
)

phone_challenges = sa.Table(
    "phone_challenges",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("purpose", sa.SmallInteger, nullable=False),
    sa.Column("phone_hmac", _HMAC, nullable=False, index=True),
    sa.Column("masked_phone", sa.String(32), nullable=False),
    sa.Column("carrier_id", sa.String(32), nullable=False),
    # The carrier's id of the code; the code itself stays at the carrier.
    sa.Column("authentication_id", sa.String(64), nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Column("expire_time", _TIME, nullable=False),
    sa.Column("proof_hmac", _HMAC, nullable=True),
    sa.Column("use_time", _TIME, nullable=True),
)

face_checks = sa.Table(
    "face_checks",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("user_id", _ID, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("result", sa.SmallInteger, nullable=False),
    # The provider's reference of the check; never the image or the token.
    sa.Column("provider_reference", sa.String(128), nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Index("ix_face_checks_user", "user_id", "create_time"),
)

# One look-up's merged answer (masked values only), so that its pages come from one moment.
lookup_snapshots = sa.Table(
    "lookup_snapshots",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("user_id", _ID, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("expire_time", _TIME, nullable=False, index=True),
)

idempotency = idempotency_table(metadata)
outbox = outbox_table(metadata)


# A citizen's consent that their bank's payee checks use their recent contact with listed
# numbers (PIPL: a separate, revocable consent). No row: no consent.
payee_check_consents = sa.Table(
    "payee_check_consents",
    metadata,
    sa.Column("user_id", _ID, primary_key=True),
    sa.Column("consent", sa.Boolean, nullable=False),
    sa.Column("update_time", _TIME, nullable=False),
)

# Every pre-payment decision given to a bank, and what the bank says it did: no account
# value, no name, no payer, only the action, its reasons and the outcome, to be counted.
payee_decisions = sa.Table(
    "payee_decisions",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("bank", sa.String(128), nullable=False),
    sa.Column("action", sa.SmallInteger, nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("outcome", sa.SmallInteger, nullable=True),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Column("acknowledge_time", _TIME, nullable=True),
    sa.Index("ix_payee_decisions_time", "create_time"),
)
