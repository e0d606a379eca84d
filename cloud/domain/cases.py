"""The fault case library: closed work orders with a confirmed cause, and the past cases
most like a new alert.

A work order becomes a case when it is closed with a confirmed cause: a cause found in its
outcome, or a failure confirmed at closing. The case keeps a copy of the symptoms (the
alert's evidence and diagnosis) and of what was found and done.

Similarity: cases of the same failure mode and asset kind come first, then the same mode,
then the same kind, then the rest; within each group, the nearest evidence. Evidence is a
signature of numbers — each moved feature's robust z-score, each defect line's ratio to
the spectral floor (log scale) and the velocity RMS (log scale) — standardised per
dimension over the cases compared, so no single unit dominates. The distance is the RMS
of the standardised differences; the similarity shown is 1 / (1 + distance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from cloud.db.models import Alert, FaultCase, WorkOrder
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError, NotFoundError

__all__ = [
    "CasePage",
    "SimilarCase",
    "case_signature",
    "get_case",
    "has_confirmed_cause",
    "list_cases",
    "record_case",
    "similar_cases",
    "sync_cases",
]

# How many recent cases a similarity search compares (newest first); a library this size
# is compared in well under a millisecond per case.
POOL_SIZE = 5000
MAX_QUERY_CHARS = 200
# Robust z-scores beyond this say "very far" and no more; clipping keeps one huge value
# from hiding every other dimension.
Z_CLIP = 50.0


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def case_signature(evidence: Mapping[str, Any] | None) -> dict[str, float]:
    """The evidence as numbers similarity compares (see the module docstring)."""
    if not evidence:
        return {}
    out: dict[str, float] = {}
    moved = evidence.get("moved_features")
    if isinstance(moved, Sequence) and not isinstance(moved, str):
        for item in moved:
            if not isinstance(item, Mapping):
                continue
            name, z = item.get("feature"), _num(item.get("z"))
            if isinstance(name, str) and z is not None:
                out[f"z:{name}"] = max(-Z_CLIP, min(Z_CLIP, z))
    diagnosis = evidence.get("diagnosis")
    if isinstance(diagnosis, Mapping):
        details = diagnosis.get("evidence")
        sources = [diagnosis, details] if isinstance(details, Mapping) else [diagnosis]
        for source in sources:
            for key, value in source.items():
                x = _num(value)
                if isinstance(key, str) and key.startswith("ratio_") and x is not None and x >= 0:
                    out[f"line:{key}"] = math.log1p(x)
    peaks = evidence.get("spectral_peaks")
    if isinstance(peaks, Sequence) and not isinstance(peaks, str):
        for peak in peaks:
            if not isinstance(peak, Mapping):
                continue
            fault = str(peak.get("fault") or "line")
            for key, value in peak.items():
                x = _num(value)
                if isinstance(key, str) and key.startswith("ratio_") and x is not None and x >= 0:
                    out[f"line:{fault}:{key}"] = math.log1p(x)
    velocity = _num(evidence.get("velocity_rms_mms"))
    if velocity is not None and velocity >= 0:
        out["velocity_rms_mms"] = math.log1p(velocity)
    return out


def has_confirmed_cause(wo: WorkOrder) -> bool:
    """Closed, with a cause found in the outcome or a failure confirmed at closing."""
    if wo.state != "closed":
        return False
    return bool((wo.cause_found or "").strip()) or wo.failure_confirmed_at is not None


def _parts_used(wo: WorkOrder) -> dict[str, Any]:
    return {r.part_id: r.used for r in wo.parts if r.used}


def record_case(session: Session, wo: WorkOrder, *, now: datetime) -> FaultCase | None:
    """The case of a closed work order with a confirmed cause (created once); else None."""
    now = require_utc(now)
    if not has_confirmed_cause(wo):
        return None
    existing = session.scalars(select(FaultCase).where(FaultCase.work_order_id == wo.id)).first()
    if existing is not None:
        return existing
    alert = wo.alert
    evidence = dict(alert.evidence) if alert is not None and alert.evidence else {}
    diagnosis = evidence.get("diagnosis")
    cause = (wo.cause_found or "").strip()
    case = FaultCase(
        work_order_id=wo.id,
        alert_id=alert.id if alert is not None else None,
        asset_id=wo.asset_id,
        asset_name=wo.asset.name or wo.asset_id,
        asset_kind=wo.asset.kind,
        failure_mode=wo.failure_mode,
        title=wo.title,
        evidence=evidence,
        diagnosis=dict(diagnosis) if isinstance(diagnosis, Mapping) else {},
        signature=case_signature(evidence),
        cause_found=cause or wo.resolution_note or "",
        action_taken=wo.action_taken or "",
        parts_used=_parts_used(wo),
        downtime_h=wo.downtime_h,
        first_time_fix=wo.first_time_fix,
        opened_at=alert.opened_at if alert is not None else wo.created_at,
        closed_at=wo.closed_at or now,
        created_at=now,
    )
    session.add(case)
    session.flush()
    return case


def sync_cases(session: Session, *, now: datetime, limit: int = 200) -> list[FaultCase]:
    """Cases for closed work orders that have none yet (idempotent; the housekeeping loop
    calls it, so work orders closed by any path, or before the library existed, count)."""
    have_case = select(FaultCase.work_order_id).where(FaultCase.work_order_id.is_not(None))
    candidates = session.scalars(
        select(WorkOrder)
        .where(WorkOrder.state == "closed", WorkOrder.id.not_in(have_case))
        .order_by(WorkOrder.id)
        .limit(limit)
        .options(selectinload(WorkOrder.alert), selectinload(WorkOrder.asset))
    ).all()
    out: list[FaultCase] = []
    for wo in candidates:
        case = record_case(session, wo, now=now)
        if case is not None:
            out.append(case)
    return out


def get_case(session: Session, case_id: int) -> FaultCase:
    case = session.get(FaultCase, case_id)
    if case is None:
        raise NotFoundError(f"case {case_id} not found")
    return case


@dataclass(frozen=True)
class CasePage:
    """One page of cases (newest closed first) and how many matched in all."""

    items: list[FaultCase]
    total: int


def _like(column: Any, term: str) -> ColumnElement[bool]:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    result: ColumnElement[bool] = column.ilike(f"%{escaped}%", escape="\\")
    return result


def _filtered(
    query: Select[Any], text: str | None, failure_mode: str | None, asset_kind: str | None
) -> Select[Any]:
    if text:
        if len(text) > MAX_QUERY_CHARS or "\x00" in text:
            raise InvalidInputError(f"the search is at most {MAX_QUERY_CHARS} characters")
        columns = (
            FaultCase.title,
            FaultCase.cause_found,
            FaultCase.action_taken,
            FaultCase.asset_id,
            FaultCase.asset_name,
            FaultCase.failure_mode,
        )
        # Every word must match one of the columns, as in the workbench's search.
        query = query.where(and_(*(or_(*(_like(c, w) for c in columns)) for w in text.split())))
    if failure_mode:
        query = query.where(FaultCase.failure_mode == failure_mode)
    if asset_kind:
        query = query.where(FaultCase.asset_kind == asset_kind)
    return query


def list_cases(
    session: Session,
    *,
    text: str | None = None,
    failure_mode: str | None = None,
    asset_kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CasePage:
    """Cases matching every word of `text` (title, cause, action, asset, mode) and filters."""
    if not 1 <= limit <= 1000 or offset < 0:
        raise InvalidInputError("limit is 1-1000 and offset not negative")
    total = session.scalar(
        _filtered(select(func.count(FaultCase.id)), text, failure_mode, asset_kind)
    )
    items = session.scalars(
        _filtered(select(FaultCase), text, failure_mode, asset_kind)
        .order_by(FaultCase.closed_at.desc(), FaultCase.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return CasePage(items=list(items), total=int(total or 0))


@dataclass(frozen=True)
class SimilarCase:
    """A past case and how like the alert it is."""

    case: FaultCase
    same_failure_mode: bool
    same_asset_kind: bool
    distance: float
    similarity: float


def _distances(
    query: Mapping[str, float], signatures: Sequence[Mapping[str, float]]
) -> list[float]:
    """RMS of per-dimension standardised differences between `query` and each signature.

    A dimension absent from a signature counts as 0 (a feature that did not move has z ≈ 0).
    The scale of each dimension is its standard deviation over the query and the cases,
    floored at 1, so dimensions that barely vary do not magnify noise."""
    keys = sorted(set(query).union(*signatures)) if signatures else sorted(query)
    if not keys:
        return [0.0 for _ in signatures]
    matrix = np.array([[s.get(k, 0.0) for k in keys] for s in signatures], dtype=np.float64)
    q = np.array([query.get(k, 0.0) for k in keys], dtype=np.float64)
    scale = np.maximum(np.vstack([matrix, q]).std(axis=0), 1.0)
    diff = (matrix - q) / scale
    return [float(d) for d in np.sqrt(np.mean(diff * diff, axis=1))]


def similar_cases(
    session: Session, alert: Alert, *, limit: int = 5, pool: int = POOL_SIZE
) -> list[SimilarCase]:
    """The past cases most like `alert` (its own case, if any, left out)."""
    if limit < 1:
        return []
    # Compare on the few columns similarity needs; load whole cases only for the winners.
    rows = session.execute(
        select(FaultCase.id, FaultCase.failure_mode, FaultCase.asset_kind, FaultCase.signature)
        .where(or_(FaultCase.alert_id.is_(None), FaultCase.alert_id != alert.id))
        .order_by(FaultCase.closed_at.desc())
        .limit(pool)
    ).all()
    if not rows:
        return []
    query = case_signature(alert.evidence)
    distances = _distances(query, [dict(r.signature or {}) for r in rows])
    kind = alert.asset.kind if alert.asset is not None else None
    ranked = sorted(
        zip(rows, distances, strict=True),
        key=lambda rd: (rd[0].failure_mode != alert.failure_mode, rd[0].asset_kind != kind, rd[1]),
    )[:limit]
    cases = {
        c.id: c
        for c in session.scalars(
            select(FaultCase).where(FaultCase.id.in_([r.id for r, _d in ranked]))
        )
    }
    return [
        SimilarCase(
            case=cases[r.id],
            same_failure_mode=r.failure_mode == alert.failure_mode,
            same_asset_kind=r.asset_kind == kind,
            distance=d,
            similarity=1.0 / (1.0 + d),
        )
        for r, d in ranked
    ]
