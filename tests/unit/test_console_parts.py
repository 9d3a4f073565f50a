"""The console's pieces without I/O: sessions, the queue by indicator, the board, the plots."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from services.common.keys import KeyRing
from services.console import charts, figures
from services.console.board import build_board
from services.console.i18n import Translator
from services.console.queue import group_by_indicator
from services.console.sessions import MAX_CLAIMED, SessionSeal

PHONE = c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value="+8613800138000")
URL = c.Indicator(kind=c.INDICATOR_KIND_URL, value="http://evil.example/pay")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


KEYS = KeyRing.generate()


def _seal(clock: Clock, keys: KeyRing = KEYS, **limits: float) -> SessionSeal:
    return SessionSeal(
        keys,
        idle_seconds=limits.get("idle", 60),
        max_age_seconds=limits.get("max_age", 3600),
        clock=clock,
    )


def test_a_session_ends_when_idle_and_use_keeps_it_alive() -> None:
    clock = Clock()
    seal = _seal(clock)
    cookie = seal.seal(seal.create("afk_a_secret", "afk_a"))
    clock.now += 59
    used = seal.open(cookie)
    assert used is not None
    assert used.api_key == "afk_a_secret"
    cookie = seal.seal(used)  # used: re-sealed with its idle clock restarted
    clock.now += 59
    assert seal.open(cookie) is not None
    stale = cookie
    clock.now += 61
    assert seal.open(stale) is None


def test_a_session_ends_at_its_maximum_age_however_used() -> None:
    clock = Clock()
    seal = _seal(clock, idle=60, max_age=100)
    found = seal.create("afk_a_secret", "afk_a")
    for _ in range(3):
        clock.now += 50
        cookie = seal.seal(found)
        opened = seal.open(cookie)
        if opened is None:
            break
        found = opened
    assert opened is None


def test_a_sealed_session_opens_on_any_replica_with_the_shared_keys_and_nowhere_else() -> None:
    clock = Clock()
    first, second = _seal(clock), _seal(clock)  # two replicas, one key ring
    session = first.create("afk_a_secret", "afk_a", "en")
    session.claim("tasks/t1")
    cookie = first.seal(session)
    assert "afk_a_secret" not in cookie, "the key is sealed, not merely encoded"
    opened = second.open(cookie)
    assert opened is not None
    assert (opened.api_key, opened.csrf, opened.lang, opened.claimed) == (
        "afk_a_secret",
        session.csrf,
        "en",
        ["tasks/t1"],
    )
    ref = session.ref(PHONE.kind, PHONE.value)
    assert opened.lookup(ref) == (PHONE.kind, PHONE.value), "references work on any replica"
    assert _seal(clock, KeyRing.generate()).open(cookie) is None, "another key opens nothing"
    tampered = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    assert second.open(tampered) is None
    assert second.open("") is None
    assert second.open("not a cookie") is None
    # Rotation: a new key seals, the old one still opens what it sealed.
    rotated = KeyRing((("k2", KeyRing.generate().data_keys[0][1]), *KEYS.data_keys), KEYS.index_key)
    assert _seal(clock, rotated).open(cookie) is not None


def test_csrf_tokens_and_references_belong_to_their_session() -> None:
    clock = Clock()
    seal = _seal(clock)
    one, two = seal.create("k1", "afk_1"), seal.create("k2", "afk_2")
    assert one.csrf_ok(one.csrf)
    assert not one.csrf_ok(two.csrf)
    assert not one.csrf_ok("")
    ref = one.ref(PHONE.kind, PHONE.value)
    assert PHONE.value.lstrip("+") not in ref
    assert re.fullmatch(r"[A-Za-z0-9_-]+", ref)
    assert one.ref(PHONE.kind, PHONE.value) == ref, "stable within the session"
    assert one.lookup(ref) == (PHONE.kind, PHONE.value)
    assert two.lookup(ref) is None
    assert two.ref(PHONE.kind, PHONE.value) != ref
    assert one.lookup("garbage!") is None


def test_a_session_remembers_only_its_latest_claims() -> None:
    session = _seal(Clock()).create("k1", "afk_1")
    for i in range(MAX_CLAIMED + 5):
        session.claim(f"tasks/{i}")
    session.release(f"tasks/{MAX_CLAIMED + 4}")
    assert len(session.claimed) == MAX_CLAIMED - 1
    assert session.claimed[0] == "tasks/5"


def _report(name: str, reporter: str, *indicators: c.Indicator, seconds: int = 0) -> rp.Report:
    return rp.Report(
        name=name,
        reporter=reporter,
        indicators=list(indicators),
        category=c.FRAUD_CATEGORY_STOCK_TIPS,
        create_time=Timestamp(seconds=seconds),
        findings=[
            rp.ReportedIndicator(indicator=i, standing=rp.INDICATOR_STANDING_CORROBORATED)
            for i in indicators
        ],
    )


def test_the_queue_groups_reports_by_indicator_most_reported_first() -> None:
    reports = [
        _report("reports/1", "citizen:a", PHONE, URL, seconds=10),
        _report("reports/2", "citizen:b", PHONE, seconds=5),
        _report("reports/3", "citizen:a", PHONE, seconds=20),
    ]
    rows = group_by_indicator(reports)
    assert [(r.value, r.report_count, r.reporter_count) for r in rows] == [
        (PHONE.value, 3, 2),
        (URL.value, 1, 1),
    ]
    assert rows[0].oldest.name == "reports/2"
    assert rows[0].standing == rp.INDICATOR_STANDING_CORROBORATED


def test_the_board_puts_each_case_under_its_status_and_sums_what_is_held() -> None:
    def case(name: str, status: int, *statuses: int) -> rp.Case:
        return rp.Case(
            name=name,
            status=status,  # type: ignore[arg-type]
            amount_lost=c.Money(currency_code="CNY", units=1000),
            payees=[
                rp.Payee(bank_order=f"bankOrders/{name}-{i}", stop_payment_status=s)  # type: ignore[arg-type]
                for i, s in enumerate(statuses)
            ],
        )

    held = wn.BankOrder(
        name="bankOrders/b-0",
        case_id="b",
        state=wn.BANK_ORDER_STATE_ACKNOWLEDGED,
        amount=c.Money(currency_code="CNY", units=300, nanos=500_000_000),
    )
    board = build_board(
        [
            case(
                "a",
                rp.CASE_STATUS_ORDERS_SENT,
                rp.STOP_PAYMENT_STATUS_SENT,
                rp.STOP_PAYMENT_STATUS_FAILED,
            ),
            case("b", rp.CASE_STATUS_HELD, rp.STOP_PAYMENT_STATUS_ACKNOWLEDGED),
            case("c", rp.CASE_STATUS_ORDERS_SENT, rp.STOP_PAYMENT_STATUS_QUEUED),
            case("d", rp.CASE_STATUS_FILED),
            case("e", rp.CASE_STATUS_CLOSED),
            case("f", rp.CASE_STATUS_UNSPECIFIED),
        ],
        [
            held,
            # c's order, not yet named on the case: found by its case and account.
            wn.BankOrder(
                name="bankOrders/other",
                case_id="cases/c",
                account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=""),
                state=wn.BANK_ORDER_STATE_SENT,
            ),
        ],
    )
    assert {k: [card.case.name for card in v] for k, v in board.items()} == {
        "filed": ["d", "f"],
        "orders_sent": ["a", "c"],
        "held": ["b"],
        "released": [],
        "transferred": [],
        "closed": ["e"],
    }
    assert [card.attention for card in board["orders_sent"]] == [True, False]
    assert str(board["held"][0].held_total) == "300.5"
    pending_card = board["orders_sent"][1]
    assert pending_card.held_total == 0
    (pending,) = pending_card.case.payees
    order = pending_card.order_of(pending)
    assert order is not None
    assert order.name == "bankOrders/other"


def test_durations_fall_into_their_bins() -> None:
    binned = dict(figures.bins([0.5, 1, 4.9, 5, 59, 60, 300]))
    assert binned == {"<1": 1, "1-5": 2, "5-15": 1, "15-60": 1, "60-240": 1, "≥240": 1}


def test_reports_are_counted_per_day_in_shanghai() -> None:
    # 17:00 UTC is 01:00 the next day in Shanghai.
    late = Timestamp()
    late.FromDatetime(datetime(2026, 11, 29, 17, 0, tzinfo=UTC))
    report = rp.Report(create_time=late, category=c.FRAUD_CATEGORY_ONLINE_LOAN)
    assert figures.per_day([report]) == {(date(2026, 11, 30), c.FRAUD_CATEGORY_ONLINE_LOAN): 1}


def test_plots_carry_their_numbers_and_escape_their_labels() -> None:
    svg = charts.columns(
        "x",
        "标题 <script>",
        ["11-29", "11-30"],
        [charts.Series("冒充客服", (2.0, 0.0)), charts.Series("<b>", (1.0, 4.0))],
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert re.findall(r'class="total" [^>]*data-value="(\d+)"', svg) == ["3", "4"]
    assert svg.count('class="mark"') == 3  # a zero draws nothing
    assert svg.count("<pattern ") == 2  # each series its own fill, not colour alone
    bars = charts.bars("y", "t", [("短信 · 已送达", 5.0), ("推送 · 失败", 1.0)])
    assert re.findall(r'data-value="(\d+)"', bars) == ["5", "1"]


def test_every_message_has_both_languages() -> None:
    zh, en = Translator("zh"), Translator("en")
    assert zh("nav.review") == "线索审核"
    assert en("nav.review") == "Review"
    assert Translator("fr").lang == "zh"
    assert zh.time(datetime(2026, 11, 29, 17, 0, tzinfo=UTC)) == "2026-11-30 01:00"
