"""Service-level policy and the priority rule: which work comes first, and by when.

The priority rule, in order (each step can only make a work order more urgent,
except the confidence step which relaxes the severity-derived base):

1. Base from alert severity: critical → P0, alarm → P1, warning → P2, advisory → P3.
2. Low diagnosis confidence (< `low_confidence`, default 0.5) relaxes the base one step
   (P0 → P1, ..., never below P3): an unsure classifier should not wake people at night.
3. ISO 20816 zone floors, independent of the classifier: zone D → at least P1,
   zone C → at least P2.
4. RUL floors on the lower bound: ≤ 24 h → P0, ≤ 72 h → at least P1, ≤ 168 h → at least P2.
5. An advisory alert that ends at P3 with no zone C/D and no RUL floor opens no work
   order: it stays an alert for engineers to watch.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cloud.domain.errors import InvalidInputError
from cloud.domain.vocabulary import CustomerTier, IsoZone, Priority, Severity

__all__ = [
    "DEFAULT_ESCALATION_LEVELS",
    "DEFAULT_POLICY",
    "EscalationLevel",
    "PriorityDecision",
    "ServiceLevelPolicy",
    "ServiceLevelTarget",
    "decide_priority",
    "load_policy",
]

_ORDER: tuple[Priority, ...] = ("P0", "P1", "P2", "P3")
_FROM_SEVERITY: dict[str, Priority] = {
    "critical": "P0",
    "alarm": "P1",
    "warning": "P2",
    "advisory": "P3",
}


class ServiceLevelTarget(BaseModel):
    """Response and resolution times for one priority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    respond_h: float = Field(gt=0)
    resolve_h: float = Field(gt=0)


_DEFAULT_TARGETS: dict[Priority, ServiceLevelTarget] = {
    "P0": ServiceLevelTarget(respond_h=2, resolve_h=24),
    "P1": ServiceLevelTarget(respond_h=4, resolve_h=48),
    "P2": ServiceLevelTarget(respond_h=8, resolve_h=72),
    "P3": ServiceLevelTarget(respond_h=12, resolve_h=7 * 24),
}
_DEFAULT_TIER_RESPOND_H: dict[CustomerTier, float] = {
    "strategic": 1.0,
    "key": 4.0,
    "standard": 24.0,
}


DeadlineKind = Literal["response", "resolution"]
NotifyTarget = Annotated[str, Field(pattern=r"^(customer:)?[a-z][a-z0-9_]{0,31}$")]


class EscalationLevel(BaseModel):
    """One rung of the escalation ladder: when it fires and whom it notifies.

    `at_fraction` is measured on the window from the work order's creation to its deadline
    (0.75: a warning at 75 % of the time; 1.0: at the deadline; 1.5: half a window late);
    `after_deadline_h` is a fixed time after the deadline instead. Exactly one is given.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    at_fraction: float | None = Field(default=None, gt=0, le=100)
    after_deadline_h: float | None = Field(default=None, ge=0, le=24 * 365)
    notify: tuple[NotifyTarget, ...] = Field(
        default=(),
        description="roles told by e-mail; `customer` is the asset's customer's contacts, "
        "`customer:<contact role>` only those with that role",
    )
    deadlines: tuple[DeadlineKind, ...] = ("response", "resolution")

    @model_validator(mode="after")
    def _one_time(self) -> EscalationLevel:
        if (self.at_fraction is None) == (self.after_deadline_h is None):
            raise ValueError(f"level {self.name!r}: give exactly one of at_fraction, "
                             "after_deadline_h")
        if not self.deadlines:
            raise ValueError(f"level {self.name!r}: deadlines must name response and/or "
                             "resolution")
        return self

    @property
    def is_warning(self) -> bool:
        """True for a level that fires before the deadline (a warning, not an escalation)."""
        return self.at_fraction is not None and self.at_fraction < 1.0

    def fires_at(self, start: datetime, deadline: datetime) -> datetime:
        """When this level is reached for a deadline whose window began at `start`."""
        if self.after_deadline_h is not None:
            return deadline + timedelta(hours=self.after_deadline_h)
        assert self.at_fraction is not None
        return start + (deadline - start) * self.at_fraction


DEFAULT_ESCALATION_LEVELS: tuple[EscalationLevel, ...] = (
    EscalationLevel(name="warning", at_fraction=0.75, notify=("service_desk",)),
    EscalationLevel(name="supervisor", at_fraction=1.0, notify=("service_desk", "supervisor")),
    EscalationLevel(name="manager", at_fraction=1.5, notify=("manager",)),
)


class ServiceLevelPolicy(BaseModel):
    """Deadlines per priority and per customer tier, and the thresholds of the priority rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    priorities: dict[Priority, ServiceLevelTarget] = Field(
        default_factory=lambda: dict(_DEFAULT_TARGETS)
    )
    tier_respond_h: dict[CustomerTier, float] = Field(
        default_factory=lambda: dict(_DEFAULT_TIER_RESPOND_H)
    )
    low_confidence: float = Field(default=0.5, ge=0, le=1)
    rul_p0_h: float = Field(default=24.0, ge=0)
    rul_p1_h: float = Field(default=72.0, ge=0)
    rul_p2_h: float = Field(default=168.0, ge=0)
    # Default lead time when the failure-mode catalogue does not say how long the work takes.
    default_lead_time_h: float = Field(default=8.0, ge=0)
    escalation_levels: tuple[EscalationLevel, ...] = DEFAULT_ESCALATION_LEVELS

    @field_validator("escalation_levels")
    @classmethod
    def _unique_level_names(
        cls, value: tuple[EscalationLevel, ...]
    ) -> tuple[EscalationLevel, ...]:
        names = [level.name for level in value]
        if len(set(names)) != len(names):
            raise ValueError("escalation level names must be unique")
        return value

    @field_validator("priorities")
    @classmethod
    def _keep_default_priorities(
        cls, value: dict[Priority, ServiceLevelTarget]
    ) -> dict[Priority, ServiceLevelTarget]:
        # A file that only changes P0 keeps the defaults of P1-P3.
        return {**_DEFAULT_TARGETS, **value}

    @field_validator("tier_respond_h")
    @classmethod
    def _keep_default_tiers(cls, value: dict[CustomerTier, float]) -> dict[CustomerTier, float]:
        if any(hours <= 0 for hours in value.values()):
            raise ValueError("tier response times must be positive")
        return {**_DEFAULT_TIER_RESPOND_H, **value}

    def target(self, priority: Priority) -> ServiceLevelTarget:
        """The response/resolution target of a priority."""
        return self.priorities[priority]

    def respond_within(self, priority: Priority, tier: str) -> timedelta:
        """min(priority response, tier response): the tier can only tighten the deadline.

        `tier` is the customer's (`Asset.tier`: asset → site → customer, or the asset's
        own fallback without a site)."""
        hours = self.target(priority).respond_h
        tier_h = self.tier_respond_h.get(tier)  # type: ignore[call-overload]
        if tier_h is not None:
            hours = min(hours, tier_h)
        return timedelta(hours=hours)

    def resolve_within(self, priority: Priority) -> timedelta:
        """The resolution time of a priority."""
        return timedelta(hours=self.target(priority).resolve_h)


DEFAULT_POLICY = ServiceLevelPolicy()


def load_policy(path: Path | str | None) -> ServiceLevelPolicy:
    """Read a policy TOML (keys as in ServiceLevelPolicy); None gives the defaults."""
    if path is None:
        return DEFAULT_POLICY
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return ServiceLevelPolicy.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise InvalidInputError(f"cannot read SLA policy {path}: {err}") from err
    except ValidationError as err:
        raise InvalidInputError(
            f"invalid SLA policy {path}", details={"errors": err.errors(include_url=False)}
        ) from err


@dataclass(frozen=True)
class PriorityDecision:
    """A priority and the reasons, kept on the work order so people can see why."""

    priority: Priority
    reasons: tuple[str, ...]
    warrants_work_order: bool


def _at_least(current: Priority, floor: Priority) -> Priority:
    return _ORDER[min(_ORDER.index(current), _ORDER.index(floor))]


def decide_priority(
    *,
    severity: Severity,
    iso_zone: IsoZone | None,
    confidence: float | None,
    rul_low_h: float | None,
    policy: ServiceLevelPolicy = DEFAULT_POLICY,
) -> PriorityDecision:
    """Apply the documented priority rule (module docstring) to one alert."""
    priority = _FROM_SEVERITY[severity]
    reasons = [f"severity {severity} → {priority}"]
    if confidence is not None and confidence < policy.low_confidence and priority != "P3":
        priority = _ORDER[_ORDER.index(priority) + 1]
        reasons.append(f"confidence {confidence:.2f} < {policy.low_confidence} → {priority}")
    floors: list[tuple[Priority, str]] = []
    if iso_zone == "D":
        floors.append(("P1", "ISO zone D"))
    elif iso_zone == "C":
        floors.append(("P2", "ISO zone C"))
    if rul_low_h is not None:
        if rul_low_h <= policy.rul_p0_h:
            floors.append(("P0", f"RUL low {rul_low_h:.0f} h ≤ {policy.rul_p0_h:.0f} h"))
        elif rul_low_h <= policy.rul_p1_h:
            floors.append(("P1", f"RUL low {rul_low_h:.0f} h ≤ {policy.rul_p1_h:.0f} h"))
        elif rul_low_h <= policy.rul_p2_h:
            floors.append(("P2", f"RUL low {rul_low_h:.0f} h ≤ {policy.rul_p2_h:.0f} h"))
    for floor, why in floors:
        raised = _at_least(priority, floor)
        if raised != priority:
            reasons.append(f"{why} → {raised}")
            priority = raised
    warrants = not (severity == "advisory" and priority == "P3" and not floors)
    if not warrants:
        reasons.append("advisory without ISO zone C/D or short RUL: no work order")
    return PriorityDecision(priority=priority, reasons=tuple(reasons), warrants_work_order=warrants)
