"""What the alert page shows beyond the alert itself: every verdict with what it changed,
the history in words, and which actions the viewer may take now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.dashboard._labels import term
from cloud.dashboard.auth import Viewer
from cloud.dashboard.i18n import gettext as _
from cloud.db.models import Alert, AlertEvent, Verdict, WorkOrder
from cloud.domain.alert_actions import open_work_order_of
from cloud.domain.catalogue import FailureModeCatalogue
from cloud.domain.workorders import find_open_work_order

__all__ = [
    "AlertActions",
    "VerdictView",
    "alert_actions",
    "history_text",
    "verdict_kind_text",
    "verdict_views",
]


def verdict_kind_text(kind: str) -> str:
    """A verdict in words: "False alarm", "Confirmed fault", "Inconclusive"."""
    return {
        "false_alarm": _("False alarm"),
        "confirmed": _("Confirmed fault"),
        "inconclusive": _("Inconclusive"),
    }.get(kind, kind)


@dataclass(frozen=True)
class VerdictView:
    """One verdict as the alert page lists it, with what it changed."""

    id: int
    kind: str
    kind_text: str
    note: str
    correction: str | None
    actor: str
    at: datetime
    effects: list[str]


def _effects(verdict: Verdict, details: dict[str, Any] | None) -> list[str]:
    out: list[str] = []
    if details is not None:
        if details.get("alert_resolved"):
            out.append(_("alert resolved"))
        if (wo := details.get("work_order_cancelled")) is not None:
            out.append(_("work order WO-%(id)s cancelled") % {"id": wo})
    elif verdict.work_order_id is not None:
        # Given through the work order (cancelled as a false alarm, closed as confirmed).
        if verdict.verdict == "false_alarm":
            out.append(_("work order WO-%(id)s cancelled") % {"id": verdict.work_order_id})
        else:
            out.append(_("work order WO-%(id)s closed") % {"id": verdict.work_order_id})
    if verdict.corrected_failure_mode:
        mode = term(verdict.corrected_failure_mode)
        out.append(_("failure mode corrected to %(mode)s") % {"mode": mode})
    out.append(_("feedback recorded for the models"))
    return out


def verdict_views(session: Session, alert: Alert) -> list[VerdictView]:
    """Every verdict on the alert, oldest first; a later one never hides an earlier one."""
    verdicts = session.scalars(
        select(Verdict).where(Verdict.alert_id == alert.id).order_by(Verdict.at, Verdict.id)
    ).all()
    recorded: dict[int, dict[str, Any]] = {}
    for event in alert.events:
        if event.kind == "verdict" and isinstance(event.details.get("verdict_id"), int):
            recorded[event.details["verdict_id"]] = event.details
    return [
        VerdictView(
            id=v.id,
            kind=v.verdict,
            kind_text=verdict_kind_text(v.verdict),
            note=v.note,
            correction=v.corrected_failure_mode,
            actor=v.actor,
            at=v.at,
            effects=_effects(v, recorded.get(v.id)),
        )
        for v in verdicts
    ]


@dataclass(frozen=True)
class AlertActions:
    """Which forms the alert page offers this viewer, and what they need."""

    acknowledge: bool
    verdict: bool
    comment: bool
    snapshot: bool
    open_work_order: bool
    assign: WorkOrder | None
    blocking_work_order: WorkOrder | None
    failure_modes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return (
            any((self.acknowledge, self.verdict, self.comment, self.snapshot, self.open_work_order))
            or self.assign is not None
        )


def alert_actions(
    session: Session,
    alert: Alert,
    who: Viewer,
    *,
    can_snapshot: bool,
    catalogue: FailureModeCatalogue,
) -> AlertActions:
    """The actions open to `who` on `alert` now (by role and by the alert's state)."""
    twin = find_open_work_order(session, alert.asset_id, alert.failure_mode)
    own = open_work_order_of(session, alert.id)
    modes = sorted(
        ((m.id, m.name) for m in catalogue.modes.values() if m.id != alert.failure_mode),
        key=lambda pair: pair[1],
    )
    return AlertActions(
        acknowledge=who.may("acknowledge") and alert.state == "open",
        verdict=who.may("verdict"),
        comment=who.may("comment"),
        snapshot=who.may("snapshot") and can_snapshot,
        open_work_order=who.may("open_work_order") and twin is None,
        assign=(own or twin) if who.may("assign") else None,
        blocking_work_order=twin,
        failure_modes=modes,
    )


def history_text(event: AlertEvent) -> str:
    """The line of detail a history entry shows after its kind."""
    details = event.details or {}
    if event.kind == "comment":
        return str(details.get("text", ""))
    if event.kind == "verdict":
        text = verdict_kind_text(str(details.get("verdict", "")))
        if details.get("note"):
            text += f": {details['note']}"
        return text
    if event.kind == "escalated" and details.get("from"):
        return _("from %(old)s to %(new)s") % {
            "old": term(details["from"]),
            "new": term(details.get("to", "")),
        }
    if event.kind == "resolved" and details.get("note"):
        return str(details["note"])
    return ""
