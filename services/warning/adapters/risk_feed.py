"""The risk service's change feed (RiskService.WatchIndicatorChanges), as the follower needs it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.common.clients import open_channel
from services.common.errors import CURSOR_EXPIRED, error_info
from services.common.indicators import Indicator, IndicatorKind
from services.warning.domain.model import FraudCategory, RiskLevel

#: A watch is re-opened from the last cursor after this long, so a half-dead
#: connection cannot stall the follower for ever.
WATCH_SECONDS = 300.0


@dataclass(frozen=True)
class Change:
    """One change of the risk list: the number and its verdict after the change."""

    cursor: str
    indicator: Indicator
    level: RiskLevel
    verified: bool
    category: FraudCategory | None
    #: When the change was made, and the trace it was made in (W3C traceparent, or "").
    time: datetime | None = None
    trace_parent: str = ""


class FeedUnavailable(Exception):
    """The risk service could not be reached or ended the watch with an error."""


class FeedReset(Exception):
    """The cursor is older than the risk service keeps its feed (CURSOR_EXPIRED): changes
    after it were compacted away. ``oldest_cursor`` is where the feed kept is complete."""

    def __init__(self, message: str, oldest_cursor: str) -> None:
        super().__init__(message)
        self.oldest_cursor = oldest_cursor


class RiskFeed:
    def __init__(self, target: str) -> None:
        self._target = target
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> risk_pb2_grpc.RiskServiceStub:
        # Opened on first use: a channel belongs to the event loop it was made in, and the
        # component is built before the server's loop runs.
        if self._channel is None:
            self._channel = open_channel(self._target, server_name="risk")
        return risk_pb2_grpc.RiskServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def watch(self, cursor: str | None) -> AsyncIterator[list[Change]]:
        """Batches of phone-number changes after ``cursor`` (from the oldest kept when None).

        Ends quietly when the watch times out; the caller re-opens it from its cursor.
        """
        request = risk_pb2.WatchIndicatorChangesRequest(
            cursor=cursor or "", kinds=[common_pb2.INDICATOR_KIND_PHONE_NUMBER]
        )
        call = self._stub().WatchIndicatorChanges(request, timeout=WATCH_SECONDS)
        try:
            async for response in call:
                batch = [_change_of(c) for c in response.changes]
                if batch:
                    yield batch
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return
            info = error_info(exc) if exc.code() == grpc.StatusCode.OUT_OF_RANGE else None
            if info is not None and info.reason == CURSOR_EXPIRED:
                raise FeedReset(exc.details() or "", info.metadata["oldestCursor"]) from None
            raise FeedUnavailable(f"{exc.code().name}: {exc.details()}") from None
        finally:
            call.cancel()

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None


def _change_of(change: risk_pb2.IndicatorChange) -> Change:
    verdict = change.verdict
    categories = [
        FraudCategory(c) for c in verdict.categories if c in FraudCategory._value2member_map_
    ]
    return Change(
        cursor=change.cursor,
        indicator=Indicator(IndicatorKind(verdict.indicator.kind), verdict.indicator.value),
        level=RiskLevel(verdict.level)
        if verdict.level in RiskLevel._value2member_map_
        else RiskLevel.NONE,
        verified=verdict.verified,
        category=categories[0] if categories else None,
        time=change.change_time.ToDatetime(UTC) if change.HasField("change_time") else None,
        trace_parent=change.trace_parent,
    )
