"""The identity service's storage: every read and write of its tables, on one connection.

Plain personal values go in through ``add_*`` (sealed here) and come out only
through ``reveal*``, which writes the audit event in the same transaction.
The caller commits that transaction before it uses the values, so no value is
used without its audit event being durable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.indicators import Indicator, IndicatorKind
from services.identity.adapters import tables as t
from services.identity.adapters.vault import Vault
from services.identity.domain.accounts import BoundAccount, Confirmation
from services.identity.domain.audit import AuditEvent
from services.identity.domain.challenges import ChallengePurpose, PhoneChallenge
from services.identity.domain.masking import mask_id_number, mask_name, mask_phone
from services.identity.domain.users import NewUser, Revealed, User
from services.identity.domain.verification import (
    FaceResult,
    Purpose,
    VerificationRequest,
    VerificationState,
)

#: Index purposes: each field has its own HMAC domain, so equal strings in two fields differ.
ID_NUMBER_INDEX = "id_number"
PHONE_INDEX = "phone"
ACCOUNT_INDEX = "account"
FACE_SUBJECT_INDEX = "face_subject"
CODE_PROOF_INDEX = "code_proof"
#: Expired look-up snapshots are deleted this long after they expire (when another is made).
SNAPSHOT_KEEP = timedelta(hours=1)

USER_FIELDS = ("name", "id_number", "phone")


class DuplicateUser(Exception):
    """The ID number or the phone number is registered already; ``field`` says which."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class DuplicateAccount(Exception):
    """The account is bound already; ``user_id`` is who holds it."""

    def __init__(self, user_id: str) -> None:
        super().__init__("account already bound")
        self.user_id = user_id


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def user_record(user_id: str) -> str:
    return f"users/{user_id}"


class IdentityRepository:
    def __init__(self, conn: AsyncConnection, vault: Vault) -> None:
        self.conn = conn
        self.vault = vault

    # ---------------------------------------------------------------- indexes

    def phone_index(self, e164: str) -> str:
        return self.vault.index(PHONE_INDEX, e164)

    def id_number_index(self, id_number: str) -> str:
        return self.vault.index(ID_NUMBER_INDEX, id_number)

    def account_index(self, account: Indicator) -> str:
        return self.vault.index(ACCOUNT_INDEX, f"{int(account.kind)}:{account.value}")

    # ------------------------------------------------------------------ users

    async def add_user(self, new: NewUser, now: datetime) -> User:
        conflict = await self.registration_conflict(new.id_number.value, new.phone_e164)
        if conflict is not None:
            raise DuplicateUser(conflict)
        id_hmac = self.id_number_index(new.id_number.value)
        phone_hmac = self.phone_index(new.phone_e164)
        user = User(
            id=new.id,
            masked_name=mask_name(new.name),
            masked_id_number=mask_id_number(new.id_number.value),
            masked_phone=mask_phone(new.phone_e164),
            # A pseudonym the face provider knows the person by; it reveals nothing.
            face_subject_ref=self.vault.index(FACE_SUBJECT_INDEX, new.id_number.value),
            verify_time=new.verify_time,
            create_time=now,
        )
        seal = self.vault.seal
        try:
            await self.conn.execute(
                sa.insert(t.users).values(
                    id=user.id,
                    id_number_hmac=id_hmac,
                    phone_hmac=phone_hmac,
                    name_sealed=seal(new.name, place=f"users.name:{user.id}"),
                    id_number_sealed=seal(new.id_number.value, place=f"users.id_number:{user.id}"),
                    phone_sealed=seal(new.phone_e164, place=f"users.phone:{user.id}"),
                    key_id=self.vault.current_key_id,
                    masked_name=user.masked_name,
                    masked_id_number=user.masked_id_number,
                    masked_phone=user.masked_phone,
                    face_subject_ref=user.face_subject_ref,
                    verify_time=user.verify_time,
                    create_time=user.create_time,
                )
            )
        except sa.exc.IntegrityError:
            # Another registration of the same ID or phone won the race.
            raise DuplicateUser("id_number") from None
        return user

    async def registration_conflict(self, id_number: str, phone_e164: str) -> str | None:
        """``id_number`` or ``phone_number`` when a user already has it, else None."""
        for field, column, value in (
            ("id_number", t.users.c.id_number_hmac, self.id_number_index(id_number)),
            ("phone_number", t.users.c.phone_hmac, self.phone_index(phone_e164)),
        ):
            if await self.conn.scalar(sa.select(t.users.c.id).where(column == value)):
                return field
        return None

    @staticmethod
    def _user(m: sa.RowMapping) -> User:
        return User(
            id=m["id"],
            masked_name=m["masked_name"],
            masked_id_number=m["masked_id_number"],
            masked_phone=m["masked_phone"],
            face_subject_ref=m["face_subject_ref"],
            verify_time=utc(m["verify_time"]),
            create_time=utc(m["create_time"]),
        )

    _USER_COLUMNS = (
        t.users.c.id,
        t.users.c.masked_name,
        t.users.c.masked_id_number,
        t.users.c.masked_phone,
        t.users.c.face_subject_ref,
        t.users.c.verify_time,
        t.users.c.create_time,
    )

    async def get_user(self, user_id: str, *, for_update: bool = False) -> User | None:
        """A user; ``for_update`` locks the row (PostgreSQL) so that checks on it serialise."""
        query = sa.select(*self._USER_COLUMNS).where(t.users.c.id == user_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return None if row is None else self._user(row._mapping)

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, User]:
        if not user_ids:
            return {}
        rows = await self.conn.execute(
            sa.select(*self._USER_COLUMNS).where(t.users.c.id.in_(set(user_ids)))
        )
        return {row.id: self._user(row._mapping) for row in rows}

    async def user_by_phone_index(self, phone_hmac: str) -> User | None:
        query = sa.select(*self._USER_COLUMNS).where(t.users.c.phone_hmac == phone_hmac)
        row = (await self.conn.execute(query)).first()
        return None if row is None else self._user(row._mapping)

    async def user_phone_index(self, user_id: str) -> str | None:
        value = await self.conn.scalar(
            sa.select(t.users.c.phone_hmac).where(t.users.c.id == user_id)
        )
        return None if value is None else str(value)

    async def reveal(
        self,
        user_id: str,
        fields: Sequence[str],
        *,
        actor: str,
        purpose: str,
        request_id: str,
        now: datetime,
    ) -> Revealed | None:
        """A user's values in clear, with the audit event written; None for an unknown user."""
        unknown = set(fields) - set(USER_FIELDS)
        if unknown or not fields:
            raise ValueError(f"cannot reveal {sorted(unknown) or 'nothing'}")
        row = (
            await self.conn.execute(
                sa.select(
                    t.users.c.name_sealed, t.users.c.id_number_sealed, t.users.c.phone_sealed
                ).where(t.users.c.id == user_id)
            )
        ).first()
        if row is None:
            return None
        await self.add_audit(
            AuditEvent(
                actor=actor,
                record=user_record(user_id),
                fields=tuple(fields),
                purpose=purpose,
                request_id=request_id,
                event_time=now,
            )
        )
        opened: dict[str, str] = {}
        for field in fields:
            sealed = bytes(row._mapping[f"{field}_sealed"])
            opened[field] = self.vault.open(sealed, place=f"users.{field}:{user_id}")
        return Revealed(
            name=opened.get("name", ""),
            id_number=opened.get("id_number", ""),
            phone_e164=opened.get("phone", ""),
        )

    async def release_phone(self, user_id: str, now: datetime) -> None:
        """The number went to someone else (the carrier says so): it is no longer this user's.

        The index no longer finds the user by it; the sealed value stays for the audit trail.
        """
        await self.conn.execute(
            sa.update(t.users)
            .where(t.users.c.id == user_id)
            .values(phone_hmac=f"released:{user_id}", masked_phone="")
        )

    async def user_by_id_number_index(self, id_hmac: str) -> User | None:
        query = sa.select(*self._USER_COLUMNS).where(t.users.c.id_number_hmac == id_hmac)
        row = (await self.conn.execute(query)).first()
        return None if row is None else self._user(row._mapping)

    # -------------------------------------------------------- phone challenges

    def code_proof(self, challenge_id: str, code: str) -> str:
        return self.vault.index(CODE_PROOF_INDEX, f"{challenge_id}:{code}")

    async def add_challenge(self, challenge: PhoneChallenge) -> None:
        await self.conn.execute(
            sa.insert(t.phone_challenges).values(
                id=challenge.id,
                purpose=int(challenge.purpose),
                phone_hmac=challenge.phone_hmac,
                masked_phone=challenge.masked_phone,
                carrier_id=challenge.carrier_id,
                authentication_id=challenge.authentication_id,
                create_time=challenge.create_time,
                expire_time=challenge.expire_time,
            )
        )

    async def get_challenge(
        self, challenge_id: str, *, for_update: bool = False
    ) -> PhoneChallenge | None:
        query = sa.select(t.phone_challenges).where(t.phone_challenges.c.id == challenge_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        if row is None:
            return None
        m = row._mapping
        return PhoneChallenge(
            id=m["id"],
            purpose=ChallengePurpose(m["purpose"]),
            phone_hmac=m["phone_hmac"],
            masked_phone=m["masked_phone"],
            carrier_id=m["carrier_id"],
            authentication_id=m["authentication_id"],
            create_time=utc(m["create_time"]),
            expire_time=utc(m["expire_time"]),
            proof_hmac=m["proof_hmac"],
            use_time=_utc_or_none(m["use_time"]),
        )

    async def prove_challenge(self, challenge_id: str, proof_hmac: str) -> None:
        await self.conn.execute(
            sa.update(t.phone_challenges)
            .where(t.phone_challenges.c.id == challenge_id)
            .values(proof_hmac=proof_hmac)
        )

    async def use_challenge(self, challenge_id: str, now: datetime) -> None:
        await self.conn.execute(
            sa.update(t.phone_challenges)
            .where(t.phone_challenges.c.id == challenge_id)
            .values(use_time=now)
        )

    # ------------------------------------------------------------- face checks

    async def add_face_check(
        self, check_id: str, user_id: str, result: FaceResult, reference: str, now: datetime
    ) -> None:
        await self.conn.execute(
            sa.insert(t.face_checks).values(
                id=check_id,
                user_id=user_id,
                result=int(result),
                provider_reference=reference[:128],
                create_time=now,
            )
        )

    async def face_check_exists(self, check_id: str) -> bool:
        found = await self.conn.scalar(
            sa.select(t.face_checks.c.id).where(t.face_checks.c.id == check_id)
        )
        return found is not None

    async def latest_passed_face_check(self, user_id: str, since: datetime) -> str | None:
        """The id of the user's newest passed face check made after ``since``."""
        fc = t.face_checks
        value = await self.conn.scalar(
            sa.select(fc.c.id)
            .where(
                fc.c.user_id == user_id,
                fc.c.result == int(FaceResult.PASSED),
                fc.c.create_time > since,
            )
            .order_by(fc.c.create_time.desc())
            .limit(1)
        )
        return None if value is None else str(value)

    # -------------------------------------------------------- look-up snapshots

    async def add_snapshot(
        self, snapshot_id: str, user_id: str, kind: str, payload: bytes, expire: datetime
    ) -> None:
        ls = t.lookup_snapshots
        await self.conn.execute(sa.delete(ls).where(ls.c.expire_time < expire - SNAPSHOT_KEEP))
        await self.conn.execute(
            sa.insert(ls).values(
                id=snapshot_id, user_id=user_id, kind=kind, payload=payload, expire_time=expire
            )
        )

    async def get_snapshot(
        self, snapshot_id: str, user_id: str, kind: str, now: datetime
    ) -> bytes | None:
        ls = t.lookup_snapshots
        value = await self.conn.scalar(
            sa.select(ls.c.payload).where(
                ls.c.id == snapshot_id,
                ls.c.user_id == user_id,
                ls.c.kind == kind,
                ls.c.expire_time > now,
            )
        )
        return None if value is None else bytes(value)

    # ---------------------------------------------------- verification requests

    async def add_request(
        self, request: VerificationRequest, target_phone_e164: str, expected_name: str = ""
    ) -> None:
        expected = (
            self.vault.seal(
                expected_name, place=f"verification_requests.expected_name:{request.id}"
            )
            if expected_name
            else None
        )
        await self.conn.execute(
            sa.insert(t.verification_requests).values(
                id=request.id,
                requester_id=request.requester_id,
                target_phone_hmac=request.target_phone_hmac,
                target_phone_sealed=self.vault.seal(
                    target_phone_e164, place=f"verification_requests.target_phone:{request.id}"
                ),
                key_id=self.vault.current_key_id,
                masked_target_phone=request.masked_target_phone,
                purpose=int(request.purpose),
                state=int(request.state),
                create_time=request.create_time,
                expire_time=request.expire_time,
                face_attempts=request.face_attempts,
                expected_name_sealed=expected,
            )
        )

    async def expected_name(self, request_id: str) -> str | None:
        """The name a requester expects, in clear (compared, never shown or logged)."""
        sealed = await self.conn.scalar(
            sa.select(t.verification_requests.c.expected_name_sealed).where(
                t.verification_requests.c.id == request_id
            )
        )
        if sealed is None:
            return None
        return self.vault.open(
            bytes(sealed), place=f"verification_requests.expected_name:{request_id}"
        )

    @staticmethod
    def _request(m: sa.RowMapping) -> VerificationRequest:
        return VerificationRequest(
            id=m["id"],
            requester_id=m["requester_id"],
            target_phone_hmac=m["target_phone_hmac"],
            masked_target_phone=m["masked_target_phone"],
            purpose=Purpose(m["purpose"]),
            state=VerificationState(m["state"]),
            create_time=utc(m["create_time"]),
            expire_time=utc(m["expire_time"]),
            respond_time=_utc_or_none(m["respond_time"]),
            responder_id=m["responder_id"],
            face_attempts=m["face_attempts"],
            face_result=None if m["face_result"] is None else FaceResult(m["face_result"]),
            face_reference=m["face_reference"],
            name_asked=m["name_asked"],
            name_matches=m["name_matches"],
        )

    _REQUEST_COLUMNS = (
        t.verification_requests.c.id,
        t.verification_requests.c.requester_id,
        t.verification_requests.c.target_phone_hmac,
        t.verification_requests.c.masked_target_phone,
        t.verification_requests.c.purpose,
        t.verification_requests.c.state,
        t.verification_requests.c.create_time,
        t.verification_requests.c.expire_time,
        t.verification_requests.c.respond_time,
        t.verification_requests.c.responder_id,
        t.verification_requests.c.face_attempts,
        t.verification_requests.c.face_result,
        t.verification_requests.c.face_reference,
        t.verification_requests.c.expected_name_sealed.is_not(None).label("name_asked"),
        t.verification_requests.c.name_matches,
    )

    async def get_request(
        self, request_id: str, *, for_update: bool = False
    ) -> VerificationRequest | None:
        query = sa.select(*self._REQUEST_COLUMNS).where(t.verification_requests.c.id == request_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return None if row is None else self._request(row._mapping)

    async def save_request(self, request: VerificationRequest) -> None:
        """Write a request's answer; the rest of it never changes."""
        await self.conn.execute(
            sa.update(t.verification_requests)
            .where(t.verification_requests.c.id == request.id)
            .values(
                state=int(request.state),
                respond_time=request.respond_time,
                responder_id=request.responder_id,
                face_attempts=request.face_attempts,
                face_result=None if request.face_result is None else int(request.face_result),
                face_reference=request.face_reference,
                name_matches=request.name_matches,
            )
        )

    async def request_times(
        self, requester_id: str, since: datetime, *, target_phone_hmac: str | None = None
    ) -> list[datetime]:
        """Creation times of a requester's requests since ``since`` (to one target, when given)."""
        vr = t.verification_requests
        query = sa.select(vr.c.create_time).where(
            vr.c.requester_id == requester_id, vr.c.create_time > since
        )
        if target_phone_hmac is not None:
            query = query.where(vr.c.target_phone_hmac == target_phone_hmac)
        return [utc(value) for value in (await self.conn.execute(query)).scalars()]

    async def list_incoming(
        self,
        target_phone_hmac: str,
        *,
        state: VerificationState | None,
        now: datetime,
        since: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[VerificationRequest]:
        """Requests to a number created after ``since``, newest first, filtered by their
        state as of ``now``."""
        vr = t.verification_requests
        query = sa.select(*self._REQUEST_COLUMNS).where(
            vr.c.target_phone_hmac == target_phone_hmac, vr.c.create_time >= since
        )
        pending = int(VerificationState.PENDING)
        if state is VerificationState.PENDING:
            query = query.where(vr.c.state == pending, vr.c.expire_time > now)
        elif state is VerificationState.EXPIRED:
            query = query.where(
                sa.or_(
                    vr.c.state == int(VerificationState.EXPIRED),
                    sa.and_(vr.c.state == pending, vr.c.expire_time <= now),
                )
            )
        elif state is not None:
            query = query.where(vr.c.state == int(state))
        if after is not None:
            time, last_id = after
            query = query.where(
                sa.or_(
                    vr.c.create_time < time, sa.and_(vr.c.create_time == time, vr.c.id < last_id)
                )
            )
        query = query.order_by(vr.c.create_time.desc(), vr.c.id.desc()).limit(limit)
        return [self._request(row._mapping) for row in await self.conn.execute(query)]

    async def expire_due(self, now: datetime, limit: int = 500) -> list[str]:
        """Mark pending requests past their expiry EXPIRED (at most ``limit``); their ids."""
        vr = t.verification_requests
        due = list(
            (
                await self.conn.execute(
                    sa.select(vr.c.id)
                    .where(vr.c.state == int(VerificationState.PENDING), vr.c.expire_time <= now)
                    .order_by(vr.c.expire_time)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if due:
            await self.conn.execute(
                sa.update(vr)
                .where(vr.c.id.in_(due), vr.c.state == int(VerificationState.PENDING))
                .values(state=int(VerificationState.EXPIRED))
            )
        return [str(i) for i in due]

    async def reveal_target_phone(
        self, request_id: str, *, actor: str, purpose: str, request_id_of_call: str, now: datetime
    ) -> str | None:
        """The target number of a request in clear (to send the invitation SMS), audited."""
        sealed = await self.conn.scalar(
            sa.select(t.verification_requests.c.target_phone_sealed).where(
                t.verification_requests.c.id == request_id
            )
        )
        if sealed is None:
            return None
        await self.add_audit(
            AuditEvent(
                actor=actor,
                record=f"verificationRequests/{request_id}",
                fields=("target_phone",),
                purpose=purpose,
                request_id=request_id_of_call,
                event_time=now,
            )
        )
        return self.vault.open(
            bytes(sealed), place=f"verification_requests.target_phone:{request_id}"
        )

    # ----------------------------------------------------------------- blocks

    async def add_block(self, blocker_id: str, requester_id: str, now: datetime) -> datetime:
        """Block; returns when the block was first set (blocking twice changes nothing)."""
        b = t.blocks
        existing = await self.conn.scalar(
            sa.select(b.c.create_time).where(
                b.c.blocker_id == blocker_id, b.c.requester_id == requester_id
            )
        )
        if existing is not None:
            return utc(existing)
        await self.conn.execute(
            sa.insert(b).values(blocker_id=blocker_id, requester_id=requester_id, create_time=now)
        )
        return now

    async def remove_block(self, blocker_id: str, requester_id: str) -> bool:
        b = t.blocks
        result = await self.conn.execute(
            sa.delete(b).where(b.c.blocker_id == blocker_id, b.c.requester_id == requester_id)
        )
        return bool(result.rowcount)

    async def is_blocked(self, blocker_id: str, requester_id: str) -> bool:
        b = t.blocks
        found = await self.conn.scalar(
            sa.select(sa.literal(1)).where(
                b.c.blocker_id == blocker_id, b.c.requester_id == requester_id
            )
        )
        return found is not None

    async def decline_pending(
        self, requester_id: str, target_phone_hmac: str, responder_id: str, now: datetime
    ) -> int:
        """Decline a requester's open requests to a number (when its holder blocks them)."""
        vr = t.verification_requests
        result = await self.conn.execute(
            sa.update(vr)
            .where(
                vr.c.requester_id == requester_id,
                vr.c.target_phone_hmac == target_phone_hmac,
                vr.c.state == int(VerificationState.PENDING),
                vr.c.expire_time > now,
            )
            .values(
                state=int(VerificationState.DECLINED), respond_time=now, responder_id=responder_id
            )
        )
        return int(result.rowcount)

    # --------------------------------------------------------------- accounts

    async def add_account(
        self,
        account_id: str,
        user_id: str,
        account: Indicator,
        masked: str,
        confirmation: Confirmation,
        now: datetime,
    ) -> BoundAccount:
        holder = await self.account_holder(account)
        if holder is not None:
            raise DuplicateAccount(holder.user_id)
        try:
            await self.conn.execute(
                sa.insert(t.bound_accounts).values(
                    id=account_id,
                    user_id=user_id,
                    kind=int(account.kind),
                    account_hmac=self.account_index(account),
                    account_sealed=self.vault.seal(
                        account.value, place=f"bound_accounts.account:{account_id}"
                    ),
                    key_id=self.vault.current_key_id,
                    masked_account=masked,
                    confirmation=int(confirmation),
                    create_time=now,
                )
            )
        except sa.exc.IntegrityError:
            raise DuplicateAccount("") from None
        return BoundAccount(account_id, user_id, account.kind, masked, confirmation, now)

    async def release_account(self, account_id: str) -> None:
        """Unbind (the user's wish, or the account went to the person its partner confirms)."""
        await self.conn.execute(
            sa.delete(t.bound_accounts).where(t.bound_accounts.c.id == account_id)
        )

    async def accounts_of(self, user_id: str) -> list[BoundAccount]:
        a = t.bound_accounts
        rows = await self.conn.execute(
            sa.select(
                a.c.id, a.c.user_id, a.c.kind, a.c.masked_account, a.c.confirmation, a.c.create_time
            )
            .where(a.c.user_id == user_id)
            .order_by(a.c.create_time, a.c.id)
        )
        return [
            BoundAccount(
                id=row.id,
                user_id=row.user_id,
                kind=IndicatorKind(row.kind),
                masked_account=row.masked_account,
                confirmation=Confirmation(row.confirmation),
                create_time=utc(row.create_time),
            )
            for row in rows
        ]

    async def account_holder(self, account: Indicator) -> BoundAccount | None:
        a = t.bound_accounts
        row = (
            await self.conn.execute(
                sa.select(
                    a.c.id,
                    a.c.user_id,
                    a.c.kind,
                    a.c.masked_account,
                    a.c.confirmation,
                    a.c.create_time,
                ).where(a.c.account_hmac == self.account_index(account))
            )
        ).first()
        if row is None:
            return None
        return BoundAccount(
            id=row.id,
            user_id=row.user_id,
            kind=IndicatorKind(row.kind),
            masked_account=row.masked_account,
            confirmation=Confirmation(row.confirmation),
            create_time=utc(row.create_time),
        )

    # ------------------------------------------------------------------ audit

    async def add_audit(self, event: AuditEvent) -> None:
        await self.conn.execute(
            sa.insert(t.audit_events).values(
                event_time=event.event_time,
                actor=event.actor[:160],
                record=event.record,
                fields=",".join(event.fields),
                purpose=event.purpose[:200],
                request_id=event.request_id[:64],
            )
        )

    async def list_audit(
        self, *, record: str | None, actor: str | None, before_id: int | None, limit: int
    ) -> list[AuditEvent]:
        a = t.audit_events
        query = sa.select(a)
        if record:
            query = query.where(a.c.record == record)
        if actor:
            query = query.where(a.c.actor == actor)
        if before_id is not None:
            query = query.where(a.c.id < before_id)
        query = query.order_by(a.c.id.desc()).limit(limit)
        return [
            AuditEvent(
                actor=row.actor,
                record=row.record,
                fields=tuple(f for f in row.fields.split(",") if f),
                purpose=row.purpose,
                request_id=row.request_id,
                event_time=utc(row.event_time),
                id=row.id,
            )
            for row in await self.conn.execute(query)
        ]
