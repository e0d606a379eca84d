"""The protection rules acting on the database: their own alerts, or lifting an open one.

`ProtectionRules` keeps each point's last few velocity and temperature readings from
every row the pipeline reads (commissioning rows too), and each round turns the rules'
findings (`_protection.protection_findings`) into alerts and work orders. The pipeline
saves the readings with each point's scoring state and loads them back with it, so a
worker that takes an asset over (or a restart) decides on the same readings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import OPEN_ALERT_STATES, Alert, Asset
from cloud.domain.alerts import clear_condition, severity_rank, upsert_alert
from cloud.domain.catalogue import FailureModeCatalogue
from cloud.domain.policy import ServiceLevelPolicy
from cloud.domain.vocabulary import SEVERITIES, IsoZone, Severity
from cloud.domain.workorders import open_from_alert
from cloud.pipeline._batch import Batch
from cloud.pipeline._protection import (
    PROTECTION_MODES,
    PointReadings,
    ProtectionFinding,
    protection_findings,
    temperature_limit,
)
from cloud.settings import CloudSettings
from ironwatch.physics import iso_class
from models.diagnosis import ISO_10816_3_BOUNDARIES_MMS

__all__ = ["PROTECTION_MODEL", "ProtectionOutcome", "ProtectionRules"]

# What the protection rules are recorded as on their alerts.
PROTECTION_MODEL = "ironwatch.protection"
PROTECTION_VERSION = "1"
_ISO_ZONES: dict[str, IsoZone] = {"A": "A", "B": "B", "C": "C", "D": "D"}
#: Zone C starts here for the most sensitive machine class: below it no class fires.
_LOWEST_ZONE_C_MMS = min(b[1] for b in ISO_10816_3_BOUNDARIES_MMS.values())
_CHUNK = 900  # ids per IN (...): well below SQLite's bound-parameter limit


def _median(values: list[float]) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0
_SEVERITIES: dict[str, Severity] = {s: s for s in SEVERITIES}


@dataclass
class ProtectionOutcome:
    """What one round of the rules did."""

    opened_or_updated: list[int] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)
    work_orders: list[int] = field(default_factory=list)
    cleared: list[tuple[str, str]] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)


class ProtectionRules:
    """ISO zone C/D and temperature limits: alerts whatever the detector or verdicts say."""

    def __init__(
        self,
        settings: CloudSettings,
        *,
        policy: ServiceLevelPolicy | None = None,
        catalogue: FailureModeCatalogue | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.catalogue = catalogue
        self.readings: dict[str, dict[str, PointReadings]] = {}

    def track(self, batch: Batch) -> None:
        """Keep each point's last few velocity and temperature readings, from every row read."""
        if not len(batch):
            return
        velocity = batch.column("velocity_rms_mms")
        temperature = batch.column("temperature_c")
        # Rows are sorted by key, then time: one slice per key.
        starts = np.flatnonzero(np.r_[True, batch.keys[1:] != batch.keys[:-1]])
        ends = np.r_[starts[1:], len(batch)]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            asset_id, point = str(batch.asset_ids[start]), str(batch.points[start])
            readings = self.readings.setdefault(asset_id, {}).setdefault(
                point, PointReadings(point)
            )
            readings.add(velocity[start:end].tolist(), temperature[start:end].tolist())

    def forget(self, asset_ids: Collection[str]) -> None:
        """Drop the readings of assets another worker scores now."""
        for asset_id in asset_ids:
            self.readings.pop(asset_id, None)

    def act(
        self,
        session: Session,
        asset_ids: Collection[str],
        now: datetime,
        *,
        defer: Callable[[str], bool] = lambda asset_id: False,
    ) -> ProtectionOutcome:
        """Raise, lift or clear the rules' alerts of these assets; `defer` holds a new one."""
        outcome = ProtectionOutcome()
        if not asset_ids:
            return outcome
        # Only assets a rule may fire for (a reading at the lowest zone C boundary of any
        # machine class, or at their temperature limit) or whose rule alert may clear need
        # their physics and alerts loaded: in a healthy fleet that is almost none.
        open_rule = set(session.scalars(
            select(Alert.asset_id).where(Alert.failure_mode.in_(PROTECTION_MODES),
                                         Alert.state.in_(OPEN_ALERT_STATES))
        ))
        candidates = sorted(a for a in asset_ids if a in open_rule or self._may_fire(a))
        assets = [
            asset
            for i in range(0, len(candidates), _CHUNK)
            for asset in session.scalars(
                select(Asset).where(Asset.id.in_(candidates[i : i + _CHUNK]))
            ).all()
        ]
        for asset in assets:
            try:
                iso_group, foundation = iso_class(asset.physics)
                findings = protection_findings(
                    list(self.readings.get(asset.id, {}).values()),
                    iso_group=iso_group,
                    foundation=foundation,
                    temperature_limit_c=temperature_limit(
                        self.settings.temperature_limits_c, self.settings.temperature_limit_c,
                        asset.id,
                    ),
                )
            except Exception as err:
                outcome.failed[asset.id] = err
                continue
            self._act_on(session, asset_id=asset.id, findings=findings, now=now, defer=defer,
                         outcome=outcome)
        return outcome

    def _may_fire(self, asset_id: str) -> bool:
        limit = temperature_limit(
            self.settings.temperature_limits_c, self.settings.temperature_limit_c, asset_id
        )
        for readings in self.readings.get(asset_id, {}).values():
            # The same medians as `PointReadings`, without numpy's per-call cost (a few
            # readings per point, every point of the fleet every round).
            if _median(readings.velocity_mms) >= _LOWEST_ZONE_C_MMS:
                return True
            if _median(readings.temperature_c) >= limit:
                return True
        return False

    def _act_on(
        self,
        session: Session,
        *,
        asset_id: str,
        findings: list[ProtectionFinding],
        now: datetime,
        defer: Callable[[str], bool],
        outcome: ProtectionOutcome,
    ) -> None:
        fired = {f.failure_mode: f for f in findings}
        open_alerts = session.scalars(
            select(Alert).where(Alert.asset_id == asset_id, Alert.state.in_(OPEN_ALERT_STATES))
        ).all()
        for mode in PROTECTION_MODES:
            finding = fired.get(mode)
            own = next((a for a in open_alerts if a.failure_mode == mode), None)
            if finding is None:
                if own is not None:
                    cleared = clear_condition(session, asset_id=asset_id, failure_mode=mode,
                                              now=now)
                    if cleared is not None and cleared.state not in OPEN_ALERT_STATES:
                        outcome.cleared.append((asset_id, mode))
                continue
            cover = None if own is not None else max(
                (a for a in open_alerts if a.failure_mode not in PROTECTION_MODES),
                key=lambda a: severity_rank(a.severity), default=None,
            )
            if cover is not None:
                # The machine already has an open alert (and work order): the rule lifts
                # its severity and adds its evidence rather than opening a second one.
                # Once that alert is resolved (a verdict, say), the rule opens its own.
                lifted = self._lift(session, cover, finding, now)
                outcome.alerts.append(lifted.id)
                # Its work order (if it had none, as an advisory, now it does) goes up too.
                self._work_order(session, lifted, now, outcome)
                continue
            if own is None and defer(asset_id):
                continue
            alert = upsert_alert(
                session,
                asset_id=asset_id,
                failure_mode=mode,
                severity=finding.severity,
                score=finding.value / finding.limit if finding.limit else finding.value,
                evidence=finding.evidence,
                model=PROTECTION_MODEL,
                model_version=PROTECTION_VERSION,
                rul_hours=None,
                now=now,
                iso_zone=finding.iso_zone,
            )
            outcome.opened_or_updated.append(alert.id)
            outcome.alerts.append(alert.id)
            self._work_order(session, alert, now, outcome)

    def _work_order(
        self, session: Session, alert: Alert, now: datetime, outcome: ProtectionOutcome
    ) -> None:
        work_order = open_from_alert(
            session, alert, now=now, policy=self.policy, catalogue=self.catalogue
        )
        if work_order is not None:
            outcome.work_orders.append(work_order.id)

    @staticmethod
    def _lift(session: Session, alert: Alert, finding: ProtectionFinding, now: datetime) -> Alert:
        """Raise an open alert to at least the rule's severity, with the rule's evidence."""
        severity = max(finding.severity, _SEVERITIES.get(alert.severity, "advisory"),
                       key=severity_rank)
        low, median, high = alert.rul_low_h, alert.rul_median_h, alert.rul_high_h
        # A None high with a median is an open-ended interval (P90 beyond horizon).
        rul = None if low is None or median is None else (low, median, high)
        protection = {**alert.evidence.get("protection", {}),
                      finding.failure_mode: finding.evidence}
        return upsert_alert(
            session,
            asset_id=alert.asset_id,
            failure_mode=alert.failure_mode,
            severity=severity,
            score=alert.score,
            evidence={**alert.evidence, "protection": protection},
            model=alert.model,
            model_version=alert.model_version,
            rul_hours=rul,
            now=now,
            confidence=alert.confidence,
            iso_zone=finding.iso_zone or _ISO_ZONES.get(alert.iso_zone or ""),
        )
