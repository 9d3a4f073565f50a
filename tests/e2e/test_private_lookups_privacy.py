"""The privacy scan: after private look-ups against a real risk process (logging at debug),
nothing of the checked values is in its log or its database: not the value as typed or
normalised, not its full bucket hash, not the blinded or evaluated point, not its tag (hex,
base64 or as bytes). SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.risk.v1 import risk_pb2 as r
from services.api.antifraud.risk.v1 import risk_pb2_grpc as rg
from services.clients.private_check import private_request, private_verdict
from services.common.indicators import IndicatorKind, normalize
from services.risk.domain.model import RiskLevel
from services.risk.domain.private import bucket_hash
from tests import harness
from tests.e2e.test_risk_service import assertion
from tests.harness import ProcessSuite

pytestmark = pytest.mark.slow

K = IndicatorKind
CITIZEN = [("x-principal", "citizen:u-privacy")]
#: Checked privately; the first is listed, so its bucket and tag are in play too.
CHECKED = [
    (K.PHONE_NUMBER, "139 8765 4321"),
    (K.PHONE_NUMBER, "13712340987"),
    (K.BANK_ACCOUNT, "6222 0298 7654 3210 000"),
    (K.URL, "https://secret-check.example/pay/now?order=991"),
    (K.WECHAT_ID, "private_friend_77"),
]


def forms_of(blob: bytes) -> list[bytes]:
    """How a value of bytes could appear in a log line or a row."""
    return [blob, blob.hex().encode(), base64.b64encode(blob), base64.urlsafe_b64encode(blob)]


def sqlite_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("risk.db*") if p.is_file())


async def database_text(url: str, schema: str | None, data_dir: Path) -> bytes:
    if schema is None:  # every byte of the SQLite files
        return sqlite_bytes(data_dir)
    engine = create_async_engine(url)
    found: list[str] = []
    try:
        async with engine.connect() as conn:
            names = await conn.execute(
                sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            )
            for (name,) in names.all():
                rows = await conn.execute(sa.text(f'SELECT t::text FROM "{schema}"."{name}" t'))
                found.extend(row[0] for row in rows)
    finally:
        await engine.dispose()
    assert found  # the scan reads something: the feed, the indicators
    return "\n".join(found).encode()


async def test_nothing_of_a_private_look_up_is_logged_or_stored(
    db_target: tuple[str, str | None], tmp_path: Path
) -> None:
    url, schema = db_target
    env = {"ANTIFRAUD_LOG_LEVEL": "debug"}
    if schema is not None:
        env |= {"ANTIFRAUD_DATABASE_URL": url, "ANTIFRAUD_RISK_DB_SCHEMA": schema}
    suite = ProcessSuite(["risk"], data_dir=tmp_path, extra_env=env)
    secrets: list[bytes] = []
    try:
        await suite.start_all()
        async with harness.channel(suite.addrs["risk"]) as channel:
            stub = rg.RiskServiceStub(channel)
            listed = normalize(*CHECKED[0])
            await stub.UpsertIndicator(
                r.UpsertIndicatorRequest(
                    request_id=str(uuid.uuid4()),
                    indicator=c.Indicator(kind=int(listed.kind), value=listed.value),  # type: ignore[arg-type]
                    assertion=assertion(),
                )
            )
            for kind, raw in CHECKED:
                indicator = normalize(kind, raw)
                request, forms = private_request(indicator)
                response = await stub.SearchHashPrefixes(request, metadata=CITIZEN)
                verdict = private_verdict(indicator, forms, response)
                expected = RiskLevel.HIGH if indicator == listed else RiskLevel.NONE
                assert verdict.level == expected
                secrets += [raw.encode(), indicator.value.encode()]
                secrets += [indicator.value.lstrip("+").encode()]
                for form, answer in zip(forms, response.answers, strict=True):
                    for blob in (
                        bucket_hash(form.kind, form.value),
                        form.point,
                        answer.evaluated,
                        form.tag(answer.evaluated),
                    ):
                        secrets += forms_of(blob)
    finally:
        suite.stop_all()
    log = suite.log_text("risk").encode()
    assert b"SearchHashPrefixes" in log  # the calls were logged, as every call is
    stored = await database_text(url, schema, tmp_path)
    listed_value = normalize(*CHECKED[0]).value.encode()
    for secret in secrets:
        assert secret not in log, secret
        if secret not in listed_value:  # the listed number is on the list, as listed
            assert secret not in stored, secret
