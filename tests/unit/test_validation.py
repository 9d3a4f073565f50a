"""The shared field checks: the limits of what the suite can store and compute with."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from services.common import validation
from services.common.indicators import IndicatorKind
from services.common.validation import Violations
from services.report.knowledge.domain import calls
from services.report.knowledge.entrypoints import requests as knowledge_requests


def _fields(v: Violations) -> list[str]:
    return [item.field for item in v.items]


@pytest.mark.parametrize(
    ("seconds", "nanos", "ok"),
    [
        (0, 0, True),  # 1970-01-01, the first time accepted
        (-1, 999_999_999, False),
        (int(datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()), 999_999_999, True),
        (int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()), 0, False),
        (int(datetime(2200, 1, 1, tzinfo=UTC).timestamp()), 0, False),  # the expiry
        (2**32, 0, False),  # past the risk index's 32 bits
        (253_402_300_799, 0, False),  # Timestamp's own maximum
        (-62_135_596_800, 0, False),  # and minimum
        (2**63 - 1, 0, False),
        (-(2**63), 0, False),
        (1_800_000_000, -1, False),
        (1_800_000_000, 10**9, False),
    ],
)
def test_a_time_must_fit_what_storage_and_the_index_hold(
    seconds: int, nanos: int, ok: bool
) -> None:
    v = Violations()
    found = validation.time_of(v, "assertion.expire_time", Timestamp(seconds=seconds, nanos=nanos))
    assert (found is not None) is ok
    assert (not v.items) is ok
    if not ok:
        assert _fields(v)[0].startswith("assertion.expire_time")
    else:
        assert found is not None
        # Whatever is accepted packs into the index's unsigned 32 bits.
        struct.pack("<I", int(found.timestamp()))


def test_an_out_of_range_time_says_the_range() -> None:
    v = Violations()
    validation.time_of(v, "t", Timestamp(seconds=2**40))
    assert v.items[0].description == "must be from 1970-01-01T00:00:00Z to 2099-12-31T23:59:59Z"
    v = Violations()
    validation.time_of(v, "t", Timestamp(seconds=0, nanos=-5))
    assert _fields(v) == ["t.nanos"]


def test_an_absent_time_is_none_or_required() -> None:
    v = Violations()
    assert validation.optional_time(v, "start_time", Timestamp(), False) is None
    assert not v.items
    validation.optional_time(v, "start_time", Timestamp(), False, required=True)
    assert v.items[0].description == "is required"


@pytest.mark.parametrize(
    ("seconds", "nanos", "ok"),
    [
        (600, 0, True),
        (60, 0, True),
        (86_400, 0, True),
        (59, 999_999_999, False),
        (86_400, 1000, False),
        (2**62, 0, False),  # the TTL: timedelta would overflow
        (-(2**62), 0, False),
        (2**63 - 1, 999_999_999, False),
        (-(2**63), -999_999_999, False),
        (315_576_000_000, 0, False),
        (600, -1, False),  # nanos of the other sign
        (600, 10**9, False),
        (-600, 0, False),
    ],
)
def test_a_duration_is_bounded_before_it_becomes_a_timedelta(
    seconds: int, nanos: int, ok: bool
) -> None:
    v = Violations()
    found = knowledge_requests.ttl(v, Duration(seconds=seconds, nanos=nanos), True)
    assert (found is not None) is ok
    assert (not v.items) is ok
    if ok:
        assert found is not None
        assert calls.MIN_TTL <= found <= calls.MAX_TTL
    else:
        assert _fields(v)[0].startswith("ttl")


def test_a_duration_out_of_range_says_the_range_in_words() -> None:
    v = Violations()
    knowledge_requests.ttl(v, Duration(seconds=2**62), True)
    assert v.items[0].description == "must be from 1 minute to 1 day"


@pytest.mark.parametrize("value", [-(2**63), -1, 2**31, 2**63 - 1])
def test_an_integer_out_of_range_names_the_field(value: int) -> None:
    v = Violations()
    found = validation.integer(v, "reporter_count", value, minimum=0, maximum=validation.INT32_MAX)
    assert _fields(v) == ["reporter_count"]
    assert 0 <= found <= validation.INT32_MAX


def test_a_url_is_measured_after_normalisation() -> None:
    # 230 Chinese characters are 690 bytes, each escaped as %XX: about 2,100 characters.
    raw = "evil.example/" + "中" * 230
    assert len(raw) < 2048
    v = Violations()
    found = validation.indicator(v, "indicator", int(IndicatorKind.URL), raw)
    assert found is None
    assert _fields(v) == ["indicator.value"]
    assert "once normalised" in v.items[0].description
    v = Violations()
    fits = validation.indicator(
        v, "indicator", int(IndicatorKind.URL), "evil.example/" + "中" * 200
    )
    assert fits is not None
    assert len(fits.value) <= validation.MAX_INDICATOR_VALUE


def _indicator_value_columns() -> list[sa.Column[str]]:
    from services.report.adapters import tables as report
    from services.risk.adapters import tables as risk
    from services.warning.adapters import tables as warning

    found = []
    for metadata in (risk.metadata, report.metadata, warning.metadata):
        for table in metadata.tables.values():
            for column in table.columns:
                if column.name in ("value", "indicator_value") and table.name != "fanouts":
                    found.append(column)
    return found


def test_every_column_holding_an_indicator_value_holds_the_longest_accepted() -> None:
    columns = _indicator_value_columns()
    assert len(columns) >= 4
    for column in columns:
        length = getattr(column.type, "length", None)
        assert length is None or length >= validation.MAX_INDICATOR_VALUE, column


def test_every_accepted_time_packs_into_the_risk_index() -> None:
    assert validation.END_OF_TIME.timestamp() < 2**32
    assert validation.EARLIEST_TIME.timestamp() == 0
