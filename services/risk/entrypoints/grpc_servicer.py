"""The RiskService gRPC servicer: converts, calls the service layer, converts back."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.common import context as ctx
from services.common import pagination, principals, validation
from services.common.errors import (
    CURSOR_EXPIRED,
    FailedPrecondition,
    InvalidArgument,
    OutOfRange,
    PermissionDenied,
)
from services.common.idempotency import run_once
from services.common.indicators import Indicator, IndicatorKind
from services.common.validation import Violations, collecting
from services.risk.adapters import tables
from services.risk.adapters.repository import RiskRepository
from services.risk.domain import provenance
from services.risk.domain.copies import ListEntry
from services.risk.domain.model import (
    Change,
    FraudCategory,
    RiskLevel,
    SourceType,
    categories_of,
)
from services.risk.domain.private import POINT_BYTES, PREFIX_BYTES
from services.risk.entrypoints import convert, wire
from services.risk.entrypoints.policy import LIST_KINDS
from services.risk.service_layer import copies, handlers
from services.risk.service_layer.lookup import Lookup
from services.risk.service_layer.unit_of_work import RiskUnitOfWork

MAX_BATCH = 1000
IMPORT_CHUNK = 500
MAX_IMPORT_ERRORS = 100
WATCH_BATCH = 500
#: Entries per chunk of DownloadRiskList (about 0.6 MB as entries, 0.4 MB as columns).
DOWNLOAD_CHUNK = 20_000
_LIST_ENCODINGS = frozenset(risk_pb2.RiskListEncoding.values())
#: Forms of one value a private look-up may ask for (an IPv6 URL host tries 113 networks).
MAX_PRIVATE_QUERIES = 160
#: What a diff answer tells the partner to wait before asking again.
DIFF_RETRY_SECONDS = 5
Context = grpc.aio.ServicerContext[Any, Any]


def _now() -> datetime:
    return datetime.now(UTC)


def _actor() -> str:
    """Who made a change, for the feed: the verified caller."""
    return ctx.current_principal() or "internal"


class RiskServicer(risk_pb2_grpc.RiskServiceServicer):
    def __init__(
        self,
        lookup: Lookup,
        uow_factory: Callable[[], RiskUnitOfWork],
        *,
        feed_retention: timedelta | None = None,
        private_key: Callable[[], bytes] | None = None,
    ) -> None:
        self.lookup = lookup
        self.uow = uow_factory
        self.db = lookup.db
        #: How long the change feed is kept (said in the answer to an expired cursor).
        self.feed_retention = feed_retention
        #: The master key of private look-ups (every replica's the same), read when first used.
        self._private_key = private_key
        self._private: copies.PrivateSearch | None = None

    # Look-ups: from memory only.

    async def CheckIndicator(
        self, request: risk_pb2.CheckIndicatorRequest, context: Context
    ) -> bytes | risk_pb2.CheckIndicatorResponse:
        """Answered as a stream's verdicts are: serialised here (``wire``), sent as they are
        (``add_to_server``). A value ``wire`` does not answer is refused with the field and
        the reason, or (a verdict longer than the longest value stored) answered as a message."""
        lookup = self.lookup
        answer = wire.check_response(request, lookup.index)
        if answer is not None:
            return answer
        with collecting() as v:
            indicator = validation.indicator(
                v, "indicator", request.indicator.kind, request.indicator.value
            )
        assert indicator is not None
        return risk_pb2.CheckIndicatorResponse(
            verdict=convert.hit_verdict_pb(
                indicator, lookup.check(indicator), lookup.lookalike(indicator)
            )
        )

    async def BatchCheckIndicators(
        self, request: risk_pb2.BatchCheckIndicatorsRequest, context: Context
    ) -> risk_pb2.BatchCheckIndicatorsResponse:
        count = len(request.indicators)
        if not 1 <= count <= MAX_BATCH:
            raise InvalidArgument.field(
                "indicators", f"must hold 1 to {MAX_BATCH} values, got {count}"
            )
        lookup = self.lookup
        response = risk_pb2.BatchCheckIndicatorsResponse()
        add = response.verdicts.add
        for i, item in enumerate(request.indicators):
            v = Violations()
            indicator = validation.indicator(v, f"indicators[{i}]", item.kind, item.value)
            if indicator is None:  # this value alone is answered with its error
                first = v.items[0]
                verdict = add()
                verdict.indicator.kind = item.kind
                verdict.indicator.value = item.value
                verdict.notes.append(first.description)
                response.errors.add(index=i, field=first.field, reason=first.description)
                continue
            convert.fill_verdict(
                add(), indicator, lookup.check(indicator), lookup.lookalike(indicator)
            )
        return response

    async def StreamCheckIndicators(
        self,
        request_iterator: AsyncIterator[risk_pb2.StreamCheckIndicatorsRequest],
        context: Context,
    ) -> AsyncIterator[bytes]:
        """Answers serialised here (``wire``), sent as they are (``add_to_server``)."""
        lookup = self.lookup
        async for request in request_iterator:
            if len(request.indicators) > MAX_BATCH:
                raise InvalidArgument.field("indicators", f"must hold at most {MAX_BATCH} values")
            yield wire.stream_response(request, lookup.index)

    # Management: from the database.

    async def GetIndicator(
        self, request: risk_pb2.GetIndicatorRequest, context: Context
    ) -> risk_pb2.GetIndicatorResponse:
        with collecting() as v:
            indicator = validation.indicator(
                v, "indicator", request.indicator.kind, request.indicator.value
            )
        assert indicator is not None
        async with self.db.read() as conn:
            record, history = await handlers.get_record(RiskRepository(conn), indicator, _now())
        return risk_pb2.GetIndicatorResponse(
            record=convert.record_pb(record),
            history=[convert.change_pb(c, self.lookup.feed_id) for c in history],
        )

    async def ListIndicators(
        self, request: risk_pb2.ListIndicatorsRequest, context: Context
    ) -> risk_pb2.ListIndicatorsResponse:
        with collecting() as v:
            kind = validation.enum_value(v, "kind", request.kind, IndicatorKind, required=False)
            level = validation.enum_value(
                v, "min_level", request.min_level, RiskLevel, required=False
            )
            source = validation.enum_value(
                v, "source_type", request.source_type, SourceType, required=False
            )
            size = validation.page_size(v, request.page_size)
        position = pagination.decode(request.page_token)
        after = None
        if position is not None:
            try:
                after = (int(position["kind"]), str(position["value"]))
            except (KeyError, TypeError, ValueError):
                raise InvalidArgument.field(
                    "page_token", "is not a page token from this API"
                ) from None
        async with self.db.read() as conn:
            rows = await RiskRepository(conn).listed(kind, level, source, after, size + 1)
        response = risk_pb2.ListIndicatorsResponse()
        for _, value, read in rows[:size]:
            if read is not None:
                row_kind, snapshot = read
                response.verdicts.append(convert.verdict_pb(Indicator(row_kind, value), snapshot))
        if len(rows) > size:
            last_kind, last_value, _ = rows[size - 1]
            response.next_page_token = pagination.encode({"kind": last_kind, "value": last_value})
        return response

    async def UpsertIndicator(
        self, request: risk_pb2.UpsertIndicatorRequest, context: Context
    ) -> risk_pb2.UpsertIndicatorResponse:
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            indicator = validation.indicator(
                v, "indicator", request.indicator.kind, request.indicator.value
            )
            given = convert.assertion_in(v, "assertion", request.assertion, principals.caller())
        assert indicator is not None
        assert given is not None

        async def work(uow: RiskUnitOfWork) -> risk_pb2.UpsertIndicatorResponse:
            record = await handlers.upsert(uow, indicator, given, _actor(), _now())
            return risk_pb2.UpsertIndicatorResponse(record=convert.record_pb(record))

        response = await run_once(
            self.uow,
            tables.idempotency_keys,
            "UpsertIndicator",
            request_id,
            request,
            risk_pb2.UpsertIndicatorResponse,
            work,
        )
        await self.lookup.caught_up()
        return response

    async def RetireIndicator(
        self, request: risk_pb2.RetireIndicatorRequest, context: Context
    ) -> risk_pb2.RetireIndicatorResponse:
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            indicator = validation.indicator(
                v, "indicator", request.indicator.kind, request.indicator.value
            )
            source = validation.enum_value(
                v, "source_type", request.source_type, SourceType, required=False
            )
            source_id = validation.text(
                v, "source_id", request.source_id, max_len=convert.MAX_SOURCE_ID
            )
            reason = validation.text(
                v, "reason", request.reason, max_len=convert.MAX_REASON, required=True
            )
        assert indicator is not None
        caller = principals.caller()
        if source is not None or source_id or not caller.staff:
            # Staff may withdraw every source at once; partners only their own assertion.
            source, source_id = provenance.source_of(caller, source, source_id, "source")

        async def work(uow: RiskUnitOfWork) -> risk_pb2.RetireIndicatorResponse:
            record = await handlers.retire(
                uow, indicator, source, source_id, reason, _actor(), _now()
            )
            return risk_pb2.RetireIndicatorResponse(record=convert.record_pb(record))

        response = await run_once(
            self.uow,
            tables.idempotency_keys,
            "RetireIndicator",
            request_id,
            request,
            risk_pb2.RetireIndicatorResponse,
            work,
        )
        await self.lookup.caught_up()
        return response

    async def AddIndicatorSighting(
        self, request: risk_pb2.AddIndicatorSightingRequest, context: Context
    ) -> risk_pb2.AddIndicatorSightingResponse:
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            indicator = validation.indicator(
                v, "indicator", request.indicator.kind, request.indicator.value
            )
            source = validation.enum_value(
                v, "source_type", request.source_type, SourceType, required=False
            )
            ref = validation.text(v, "reporter_ref", request.reporter_ref, max_len=128)
            category = validation.enum_value(
                v, "category", request.category, FraudCategory, required=False
            )
            if source is SourceType.ALLOW_LIST:
                v.add("source_type", "the allow list takes no sightings")
        assert indicator is not None
        # The sighting's source and reporter are the caller's own, from its key.
        source, ref = provenance.source_of(principals.caller(), source, ref, "sighting")

        async def work(uow: RiskUnitOfWork) -> risk_pb2.AddIndicatorSightingResponse:
            record = await handlers.sight(uow, indicator, source, ref, category, _actor(), _now())
            return risk_pb2.AddIndicatorSightingResponse(
                verdict=convert.verdict_pb(indicator, record.snapshot)
            )

        response = await run_once(
            self.uow,
            tables.idempotency_keys,
            "AddIndicatorSighting",
            request_id,
            request,
            risk_pb2.AddIndicatorSightingResponse,
            work,
        )
        await self.lookup.caught_up()
        return response

    async def ImportIndicators(
        self, request_iterator: AsyncIterator[risk_pb2.ImportIndicatorsRequest], context: Context
    ) -> risk_pb2.ImportIndicatorsResponse:
        response = risk_pb2.ImportIndicatorsResponse()
        caller = principals.caller()
        pending: list[tuple[int, Indicator, handlers.AssertionInput]] = []
        index = -1

        def reject(at: int, field: str, reason: str) -> None:
            response.rejected_count += 1
            if len(response.errors) < MAX_IMPORT_ERRORS:
                response.errors.add(index=at, field=field, reason=reason)

        async def flush() -> None:
            if not pending:
                return
            async with self.uow() as uow:
                now = _now()
                ready = []
                for at, indicator, given in pending:
                    try:  # checked again at the batch's time: an expiry may have passed since
                        handlers.check_expiry(given, now)
                    except InvalidArgument as exc:
                        first = exc.violations[0]
                        reject(at, first.field, first.description)
                    else:
                        ready.append((indicator, given))
                await handlers.upsert_many(uow, ready, _actor(), now)
                await uow.commit()
                response.accepted_count += len(ready)
            pending.clear()
            await self.lookup.caught_up()

        async for item in request_iterator:
            index += 1
            v = Violations()
            indicator = validation.indicator(
                v, "indicator", item.indicator.kind, item.indicator.value
            )
            given = convert.assertion_in(v, "assertion", item.assertion, caller)
            if given is not None and indicator is not None and not v.items:
                try:  # every rule an upsert applies, so one bad item never fails the import
                    handlers.check_assertion(given)
                    handlers.check_listable(indicator)
                    handlers.check_expiry(given, _now())
                except InvalidArgument as exc:
                    v.items.extend(exc.violations)
            if v.items or indicator is None or given is None:
                first = v.items[0]
                reject(index, first.field, first.description)
                continue
            pending.append((index, indicator, given))
            if len(pending) >= IMPORT_CHUNK:
                await flush()
        await flush()
        in_order = sorted(response.errors, key=lambda e: e.index)
        del response.errors[:]
        response.errors.extend(in_order)
        return response

    async def WatchIndicatorChanges(
        self, request: risk_pb2.WatchIndicatorChangesRequest, context: Context
    ) -> AsyncIterator[risk_pb2.WatchIndicatorChangesResponse]:
        """Changes after the cursor: from the refresher's memory when the cursor is recent
        (no query however many watch), from the database when it is further behind."""
        with collecting() as v:
            cursor = convert.cursor_of(v, request.cursor, self.lookup.feed_id)
            kinds = frozenset(
                kind
                for i, number in enumerate(request.kinds)
                if (kind := validation.enum_value(v, f"kinds[{i}]", number, IndicatorKind))
                is not None
            )
        if request.from_now:
            # The end of the feed as this process has applied it (its own writes included):
            # opening a thousand watches costs no query.
            cursor = self.lookup.cursor
        elif cursor > self.lookup.cursor:
            # Ahead of this replica: only the database can say whether it is past the end.
            async with self.db.read() as conn:
                last = await RiskRepository(conn).last_change_id()
            if cursor > last:
                raise OutOfRange(
                    f"the cursor is beyond the end of the feed (its last change is {last})"
                )
        feed_id = self.lookup.feed_id
        while True:
            horizon = self.lookup.cursor
            batch = self.lookup.recent_after(cursor, kinds, WATCH_BATCH)
            if batch is not None:
                after = batch[-1].id if batch else max(cursor, horizon)
            else:
                batch, after = await self._changes_kept_after(cursor, kinds, horizon)
            if batch:
                yield risk_pb2.WatchIndicatorChangesResponse(
                    changes=[convert.change_pb(c, feed_id) for c in batch]
                )
            caught_up = not batch and after >= horizon
            cursor = after
            if caught_up:
                await self.lookup.wait_beyond(cursor, timeout=5.0)

    async def _changes_kept_after(
        self, cursor: int, kinds: frozenset[IndicatorKind], horizon: int
    ) -> tuple[list[Change], int]:
        """A batch from the database, and the cursor it moves to; OUT_OF_RANGE when changes
        after ``cursor`` were compacted away (cursor 0 means the oldest kept: no check)."""
        upto = max(horizon, cursor)
        async with self.db.read() as conn:
            repo = RiskRepository(conn)
            read = await repo.changes_after(cursor, WATCH_BATCH, sorted(kinds), upto=upto)
            # Checked after the read: a compaction between two batches is caught by the next.
            oldest = await repo.first_change_id() if cursor else None
        if oldest is not None and cursor < oldest - 1:
            raise cursor_expired(cursor, oldest, self.feed_retention)
        # A full batch moves to its last row (readable or not); a short one read everything
        # of these kinds up to ``upto``.
        full = len(read.changes) + len(read.skipped) >= WATCH_BATCH
        return read.changes, read.last_id if full else upto

    # Local copies and private look-ups.

    async def DownloadRiskList(
        self, request: risk_pb2.DownloadRiskListRequest, context: Context
    ) -> AsyncIterator[risk_pb2.DownloadRiskListResponse]:
        kinds = _list_kinds(request.kinds)
        if request.encoding not in _LIST_ENCODINGS:
            raise InvalidArgument.field("encoding", "is not a RiskListEncoding")
        as_columns = request.encoding == risk_pb2.RISK_LIST_ENCODING_COLUMNS
        found = await copies.snapshot(self.lookup, kinds, as_columns=as_columns)
        entries = found.entries
        first = risk_pb2.DownloadRiskListResponse(
            version_token=convert.cursor_text(self.lookup.feed_id, found.version),
            checksum=found.checksum,
            entry_count=len(found),
            kinds=sorted(int(k) for k in kinds),  # type: ignore[misc]
        )
        for start in range(0, max(len(entries), 1), DOWNLOAD_CHUNK):
            chunk = first if start == 0 else risk_pb2.DownloadRiskListResponse()
            chunk.entries.extend(_entries_pb(entries[start : start + DOWNLOAD_CHUNK]))
            yield chunk
        for columns in found.columns:
            for start in range(0, len(columns), DOWNLOAD_CHUNK):
                part = columns.part(start, start + DOWNLOAD_CHUNK)
                yield risk_pb2.DownloadRiskListResponse(columns=[convert.columns_pb(part)])

    async def ComputeRiskListDiff(
        self, request: risk_pb2.ComputeRiskListDiffRequest, context: Context
    ) -> risk_pb2.ComputeRiskListDiffResponse:
        kinds = _list_kinds(request.kinds)
        feed_id = self.lookup.feed_id
        given_feed, dash, number = request.version_token.rpartition("-")
        if not dash or not number.isdigit() or not number.isascii() or len(number) > 19:
            raise InvalidArgument.field("version_token", "is not a version of the risk list")
        reset = risk_pb2.ComputeRiskListDiffResponse(
            response_type=risk_pb2.DIFF_RESPONSE_TYPE_RESET, retry_after_seconds=0
        )
        if given_feed != feed_id:  # another database's list: nothing here applies to it
            return reset
        found = await copies.diff(self.lookup, int(number), kinds)
        if found is None:
            return reset
        response = risk_pb2.ComputeRiskListDiffResponse(
            response_type=risk_pb2.DIFF_RESPONSE_TYPE_DIFF,
            new_version_token=convert.cursor_text(feed_id, found.version),
            checksum=found.checksum,
            retry_after_seconds=DIFF_RETRY_SECONDS,
        )
        response.additions.extend(_entries_pb(found.additions))
        add = response.removals.add
        for kind, value in found.removals:
            add(kind=int(kind), value=value)  # type: ignore[arg-type]
        return response

    async def SearchHashPrefixes(
        self, request: risk_pb2.SearchHashPrefixesRequest, context: Context
    ) -> risk_pb2.SearchHashPrefixesResponse:
        count = len(request.queries)
        if not 1 <= count <= MAX_PRIVATE_QUERIES:
            raise InvalidArgument.field(
                "queries", f"must hold 1 to {MAX_PRIVATE_QUERIES} queries, got {count}"
            )
        queries: list[copies.PrefixQuery] = []
        with collecting() as v:
            for i, query in enumerate(request.queries):
                kind = validation.enum_value(v, f"queries[{i}].kind", query.kind, IndicatorKind)
                if len(query.prefix) != PREFIX_BYTES:
                    v.add(f"queries[{i}].prefix", f"must be {PREFIX_BYTES} bytes")
                if len(query.blinded) != POINT_BYTES:
                    v.add(f"queries[{i}].blinded", f"must be {POINT_BYTES} bytes")
                if kind is not None:
                    queries.append(copies.PrefixQuery(kind, query.prefix, query.blinded))
        try:
            answers = await self._private_search().answer(queries)
        except copies.InvalidQuery as exc:
            raise InvalidArgument.field(
                f"queries[{exc.index}].blinded", "is not a valid point"
            ) from None
        response = risk_pb2.SearchHashPrefixesResponse()
        for answer in answers:
            out = response.answers.add(evaluated=answer.evaluated)
            add = out.entries.add
            for tag, entry in answer.entries:
                if entry is None:
                    add(tag=tag, level=RiskLevel.LOW)  # type: ignore[arg-type]
                else:
                    add(
                        tag=tag,
                        level=entry.level,  # type: ignore[arg-type]
                        categories=_categories(entry.categories),
                        verified=entry.verified,
                        label=entry.label,
                    )
        return response

    def _private_search(self) -> copies.PrivateSearch:
        if self._private is None:
            if self._private_key is None:
                raise FailedPrecondition("private look-ups are not configured on this server")
            self._private = copies.PrivateSearch(self.lookup, self._private_key())
        return self._private


class _Handlers:
    """Takes the method handlers the generated adder would give a server."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(
        self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]
    ) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.service, self.handlers = service, dict(handlers)


def add_to_server(servicer: RiskServicer, server: grpc.aio.Server) -> None:
    """``add_RiskServiceServicer_to_server``, CheckIndicator and StreamCheckIndicators sending
    the bytes their handlers assembled (``wire``) as they are: the same wire format, no
    message built per value."""
    taken = _Handlers()
    risk_pb2_grpc.add_RiskServiceServicer_to_server(servicer, taken)
    taken.handlers["CheckIndicator"] = grpc.unary_unary_rpc_method_handler(
        servicer.CheckIndicator,
        request_deserializer=risk_pb2.CheckIndicatorRequest.FromString,
        response_serializer=wire.serialize_response,
    )
    taken.handlers["StreamCheckIndicators"] = grpc.stream_stream_rpc_method_handler(
        servicer.StreamCheckIndicators,
        request_deserializer=risk_pb2.StreamCheckIndicatorsRequest.FromString,
        response_serializer=wire.serialize_response,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(taken.service, taken.handlers),)
    )
    # As the generated adder does; grpcio's type stubs do not know this method yet.
    server.add_registered_method_handlers(taken.service, taken.handlers)  # type: ignore[attr-defined]


def _list_kinds(raw: Sequence[int]) -> frozenset[IndicatorKind]:
    """The kinds asked for, each one the caller's role may hold; all of those when none."""
    allowed = LIST_KINDS.get(principals.current().role, frozenset())
    with collecting() as v:
        asked = frozenset(
            kind
            for i, number in enumerate(raw)
            if (kind := validation.enum_value(v, f"kinds[{i}]", number, IndicatorKind)) is not None
        )
    if not asked:
        if not allowed:
            raise PermissionDenied("this caller may hold no kind of the risk list")
        return allowed
    refused = sorted(asked - allowed)
    if refused:
        raise PermissionDenied(
            f"this caller may not hold {', '.join(k.name for k in refused)} entries of the list"
        )
    return asked


@functools.lru_cache(maxsize=4096)
def _categories(mask: int) -> tuple[int, ...]:
    """The category numbers of a mask (few distinct masks: computed once each)."""
    return tuple(int(c) for c in categories_of(mask))


def _entries_pb(entries: Sequence[ListEntry]) -> list[risk_pb2.RiskListEntry]:
    """Entries as messages; fields at their default are left out (a million of them are
    built for a snapshot: the fewer arguments, the faster)."""
    make = risk_pb2.RiskListEntry
    out: list[risk_pb2.RiskListEntry] = []
    add = out.append
    for kind, value, level, categories, verified, label in entries:
        if verified:
            add(
                make(
                    kind=kind,  # type: ignore[arg-type]
                    value=value,
                    level=level,  # type: ignore[arg-type]
                    category_mask=categories,
                    verified=True,
                    label=label,
                )
            )
        else:
            add(make(kind=kind, value=value, level=level, category_mask=categories))  # type: ignore[arg-type]
    return out


def cursor_expired(cursor: int, oldest: int, retention: timedelta | None) -> OutOfRange:
    kept = f"the feed keeps {_days(retention)}" if retention else "the feed was compacted"
    return OutOfRange(
        f"cursor {cursor} is older than the oldest change kept ({kept}): read the list "
        "again (ListIndicators) and watch from now, or resume from oldestCursor and accept "
        "the gap",
        reason=CURSOR_EXPIRED,
        metadata={"oldestCursor": str(oldest - 1)},
    )


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} days" if days != 1 else "1 day"
