"""The figures page: plots drawn on the server from the platform's own numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from services.api.antifraud.warning.v1 import warning_pb2 as wn
from services.console import charts, figures, i18n
from services.console.display import masked_phone
from services.console.web import backend, console, current, language, render


@dataclass
class Figure:
    key: str
    svg: Markup
    #: The same numbers as a table: (label, value).
    table: list[tuple[str, str]]
    note: str = ""


def _reports_per_day(data: figures.FigureData, t: i18n.Translator) -> Figure:
    labels = [d.strftime("%m-%d") for d in data.days]
    series = [
        charts.Series(
            t.enum(i18n.CATEGORIES, category),
            tuple(float(data.per_day.get((d, category), 0)) for d in data.days),
        )
        for category in data.categories
    ]
    table = [
        (f"{d.strftime('%m-%d')} · {t.enum(i18n.CATEGORIES, cat)}", str(n))
        for (d, cat), n in sorted(data.per_day.items())
        if d in data.days
    ]
    svg = charts.columns(
        "reports-per-day", t("figures.reports_per_day"), labels, series, y_label=t("figures.count")
    )
    return Figure("reports_per_day", svg, table)


def _deliveries(data: figures.FigureData, t: i18n.Translator) -> Figure:
    rows = [
        (f"{t.enum(i18n.CHANNELS, ch)} · {t.enum(i18n.DELIVERY_STATES, st)}", float(n))
        for ch, st, n in figures.delivery_rows(data.dashboard.warnings)
    ]
    svg = charts.bars("warnings-by-channel", t("figures.warnings_by_channel"), rows)
    return Figure("warnings_by_channel", svg, [(label, f"{n:g}") for label, n in rows])


def _histogram(key: str, chart_id: str, minutes: list[float], t: i18n.Translator) -> Figure:
    binned = figures.bins(minutes)
    series = [charts.Series(t("figures.count"), tuple(float(n) for _, n in binned))]
    svg = charts.columns(chart_id, t(f"figures.{key}"), [b for b, _ in binned], series)
    return Figure(key, svg, [(label, str(n)) for label, n in binned])


def _dissuasion(data: figures.FigureData, t: i18n.Translator) -> Figure:
    rows = [
        (f"{t.enum(i18n.TASK_TYPES, kind)} · {t.enum(i18n.TASK_OUTCOMES, outcome)}", float(n))
        for (kind, outcome), n in sorted(data.outcomes.items())
    ]
    svg = charts.bars("dissuasion", t("figures.dissuasion"), rows)
    note = t("figures.dissuaded_share", warnings=data.warning_total, dissuaded=data.dissuaded)
    return Figure("dissuasion", svg, [(label, f"{n:g}") for label, n in rows], note)


def _fanouts(data: figures.FigureData, t: i18n.Translator) -> Figure:
    rows: list[tuple[str, float]] = []
    for fanout in data.fanouts[:20]:
        who = masked_phone(fanout.indicator.value)
        state = t.enum(i18n.FANOUT_STATES, fanout.state)
        total = max(fanout.contact_count, 1)
        rows.append((f"{who} ({state})", round(100 * fanout.processed_count / total, 1)))
    svg = charts.bars("fanout", t("figures.fanout"), rows, unit="%")
    table = [
        (
            masked_phone(f.indicator.value),
            f"{f.processed_count}/{f.contact_count} · {t('col.warned')} {f.warned_count} · "
            f"{t('col.suppressed')} {f.suppressed_count}",
        )
        for f in data.fanouts[:20]
    ]
    return Figure("fanout", svg, table)


def build(data: figures.FigureData, t: i18n.Translator) -> list[Figure]:
    return [
        _reports_per_day(data, t),
        _deliveries(data, t),
        _histogram("high_to_warning", "high-to-warning", data.high_to_warning, t),
        _histogram("case_to_ack", "case-to-ack", data.case_to_ack, t),
        _dissuasion(data, t),
        _fanouts(data, t),
    ]


async def page(request: Request) -> Response:
    session = current(request)
    data = await figures.gather(
        backend(request, session), datetime.now(UTC), console(request).settings.figure_reports
    )
    shown = build(data, i18n.Translator(language(request, session)))
    return render(
        request,
        "figures.html",
        session,
        figures=shown,
        unavailable=list(data.dashboard.unavailable),
        warning_states=[(int(s.state), int(s.count)) for s in data.dashboard.warnings.warnings],
        wn=wn,
    )
