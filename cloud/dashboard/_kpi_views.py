"""What the KPI page shows: the filters read from the URL, the KPIs of the whole period,
a chart per KPI over weeks or months, and compliance tables by priority and by tier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.dashboard._bar_charts import BarSeries, bar_chart
from cloud.dashboard.i18n import gettext as _
from cloud.db.models import Customer, Site
from cloud.domain.errors import InvalidInputError
from cloud.domain.kpis import BUCKETS, Bucket, Kpis, KpiScope, compute_kpis, kpi_series
from cloud.domain.vocabulary import ASSET_KINDS, CUSTOMER_TIERS, PRIORITIES

__all__ = ["KpiFilters", "kpi_definitions", "kpi_page", "parse_kpi_filters"]

DEFAULT_MONTHS = 6


@dataclass(frozen=True)
class KpiFilters:
    """The page's filters: [start, end) as dates (UTC), bucket, customer, site, kind."""

    start: date
    end: date
    bucket: Bucket
    customer_id: str | None
    site_id: str | None
    asset_kind: str | None

    @property
    def start_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        # The end date is included: the period runs to its midnight.
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC) + timedelta(days=1)

    @property
    def scope(self) -> KpiScope:
        return KpiScope(
            customer_id=self.customer_id, site_id=self.site_id, asset_kind=self.asset_kind
        )

    def query(self) -> dict[str, str]:
        """The filters as URL parameters (for the CSV link)."""
        out = {"start": self.start.isoformat(), "end": self.end.isoformat(), "bucket": self.bucket}
        for key in ("customer_id", "site_id", "asset_kind"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


def _date(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as err:
        raise InvalidInputError(_("%(name)s is not a date (YYYY-MM-DD)") % {"name": name}) from err


def parse_kpi_filters(params: Mapping[str, str], now: datetime) -> KpiFilters:
    """The filters from the query string; InvalidInputError with a readable message if bad.

    Default: the last six calendar months up to today, by month."""
    today = now.astimezone(UTC).date()
    end = _date(params.get("end"), "end") or today
    first = date(end.year, end.month, 1)
    months_back = first.month - 1 - (DEFAULT_MONTHS - 1)
    default_start = date(first.year + months_back // 12, months_back % 12 + 1, 1)
    start = _date(params.get("start"), "start") or default_start
    if start > end:
        raise InvalidInputError(_("The start must not be after the end."))
    bucket = params.get("bucket") or "month"
    if bucket not in BUCKETS:
        raise InvalidInputError(_("Choose weeks or months."))
    kind = params.get("asset_kind") or None
    if kind is not None and kind not in ASSET_KINDS:
        raise InvalidInputError(_("Unknown asset kind."))
    return KpiFilters(
        start=start,
        end=end,
        bucket="week" if bucket == "week" else "month",
        customer_id=(params.get("customer_id") or None),
        site_id=(params.get("site_id") or None),
        asset_kind=kind,
    )


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _label(k: Kpis, bucket: Bucket) -> str:
    if bucket == "month":
        return k.start.strftime("%Y-%m")
    iso = k.start.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def kpi_definitions() -> list[tuple[str, str]]:
    """Each KPI and how it is computed, in the page's language."""
    return [
        (
            _("Mean time to acknowledge"),
            _("Alert opened → first acknowledgement, over alerts opened in the period."),
        ),
        (
            _("Mean time to resolve"),
            _(
                "Alert opened → resolved (alerts), and work order opened → work done "
                "(work orders), over those opened in the period."
            ),
        ),
        (
            _("SLA compliance"),
            _(
                "Share of deadlines met among those judged: a response counts once answered "
                "or once its deadline has passed unanswered; a resolution once done or "
                "overdue. Deadlines still running are not counted; a cancelled work order "
                "is n/a (its response still counts if it was answered first)."
            ),
        ),
        (
            _("First-time fix rate"),
            _("Work orders whose outcome says fixed on the first visit, among those that say."),
        ),
        (
            _("False-alarm rate"),
            _("Alerts opened in the period that got a false-alarm verdict, among all opened."),
        ),
        (
            _("Lead time achieved"),
            _(
                "Alert opened → the failure, where one was confirmed, else → the repair "
                "(work order done); cancelled work orders left out."
            ),
        ),
        (
            _("Availability"),
            _(
                "1 − downtime ÷ asset hours: downtime as recorded in the outcomes of work "
                "finished in the period; asset hours are the period's hours of every asset "
                "registered by then."
            ),
        ),
        (
            _("Customer satisfaction"),
            _("Mean of the customers' 1–5 ratings of work orders opened in the period."),
        ),
    ]


def _options(session: Session) -> dict[str, list[tuple[str, str]]]:
    customers = session.execute(select(Customer.id, Customer.name).order_by(Customer.name)).all()
    sites = session.execute(select(Site.id, Site.name).order_by(Site.name)).all()
    return {
        "customers": [(c.id, c.name) for c in customers],
        "sites": [(s.id, s.name) for s in sites],
        "kinds": [(k, k) for k in ASSET_KINDS],
    }


def _charts(series: Sequence[Kpis], bucket: Bucket) -> list[tuple[str, Markup]]:
    periods = [_label(k, bucket) for k in series]

    def chart(title: str, unit: str, lines: list[BarSeries], y_max: float | None = None) -> Markup:
        return bar_chart(
            periods, lines, title=title, unit=unit, y_max=y_max,
            empty_message=_("no data in this period"),
        )  # fmt: skip

    def col(name: str, pct: bool = False) -> list[float | None]:
        values = [getattr(k, name) for k in series]
        return [_pct(v) for v in values] if pct else values

    hours = _("h")
    return [
        (
            _("Mean time to acknowledge and to resolve"),
            chart(
                _("Mean times"),
                hours,
                [
                    BarSeries(_("acknowledge"), col("mean_time_to_acknowledge_h"), "s0"),
                    BarSeries(_("resolve alert"), col("mean_time_to_resolve_alert_h"), "s1"),
                    BarSeries(_("resolve work order"), col("mean_time_to_resolve_h"), "s2"),
                ],
            ),
        ),
        (
            _("SLA compliance"),
            chart(
                _("SLA compliance"),
                "%",
                [
                    BarSeries(_("response"), col("sla_response_compliance", True), "s0"),
                    BarSeries(_("resolution"), col("sla_resolution_compliance", True), "s2"),
                ],
                100.0,
            ),
        ),
        (
            _("First-time fix and false-alarm rates"),
            chart(
                _("Rates"),
                "%",
                [
                    BarSeries(_("first-time fix"), col("first_time_fix_rate", True), "s2"),
                    BarSeries(_("false alarms"), col("false_alarm_rate", True), "s1"),
                ],
                100.0,
            ),
        ),
        (
            _("Lead time achieved"),
            chart(
                _("Lead time achieved"),
                hours,
                [BarSeries(_("lead time"), col("mean_lead_time_achieved_h"), "s3")],
            ),
        ),
        (
            _("Availability"),
            chart(
                _("Availability"),
                "%",
                [BarSeries(_("availability"), col("availability", True), "s2")],
                100.0,
            ),
        ),
        (
            _("Customer satisfaction"),
            chart(
                _("Customer satisfaction"),
                "1–5",
                [BarSeries(_("mean rating"), col("satisfaction_mean"), "s0")],
                5.0,
            ),
        ),
    ]


def _sla_rows(groups: Mapping[str, Any], names: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        cells = groups.get(name, {})
        rows.append(
            {"name": name, "response": cells.get("response"), "resolution": cells.get("resolution")}
        )
    return rows


def kpi_page(session: Session, filters: KpiFilters, now: datetime) -> dict[str, Any]:
    """Everything the KPI template needs."""
    as_of = min(now, filters.end_at)
    total = compute_kpis(
        session, start=filters.start_at, end=filters.end_at, scope=filters.scope, now=as_of
    )
    series = kpi_series(
        session,
        start=filters.start_at,
        end=filters.end_at,
        bucket=filters.bucket,
        scope=filters.scope,
        now=as_of,
    )
    return {
        "filters": filters,
        "total": total,
        "series": [(_label(k, filters.bucket), k) for k in series],
        "charts": _charts(series, filters.bucket),
        "by_priority": _sla_rows(total.sla_by_priority, PRIORITIES),
        "by_tier": _sla_rows(total.sla_by_tier, CUSTOMER_TIERS),
        "definitions": kpi_definitions(),
        "options": _options(session),
    }
