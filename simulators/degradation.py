"""Degradation trajectories and their ground truth: damage, health index and RUL over machine age.

Damage is 0 while healthy, appears at ``onset_h`` at a small initial size and grows
exponentially to 1 (the failure threshold) at ``failure_h``; exponential growth is the usual
shape of spall propagation and of the rising trend prognostics models are fitted to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from simulators.spec import FaultMode

__all__ = ["INITIAL_DAMAGE", "Degradation", "ThermalLag"]

#: Damage at onset: small enough to be early, large enough to be detectable in the envelope.
INITIAL_DAMAGE = 0.02


@dataclass(frozen=True)
class Degradation:
    """Ground-truth trajectory of one machine; every method is vectorised over ages in hours."""

    fault: FaultMode
    onset_h: float
    failure_h: float
    initial_damage: float = INITIAL_DAMAGE

    @property
    def growth_per_h(self) -> float:
        """Exponential growth rate chosen so damage reaches 1 exactly at ``failure_h``."""
        return math.log(1.0 / self.initial_damage) / (self.failure_h - self.onset_h)

    @property
    def onset_time_h(self) -> float | None:
        return None if self.fault is FaultMode.NONE else self.onset_h

    @property
    def failure_time_h(self) -> float | None:
        return None if self.fault is FaultMode.NONE else self.failure_h

    def damage(self, age_h: ArrayLike) -> NDArray[np.float64]:
        """Damage in [0, 1]: 0 before onset, exponential growth, held at 1 after failure."""
        age = np.asarray(age_h, dtype=np.float64)
        if self.fault is FaultMode.NONE:
            return np.zeros_like(age)
        grown = self.initial_damage * np.exp(self.growth_per_h * (age - self.onset_h))
        return np.where(age < self.onset_h, 0.0, np.minimum(grown, 1.0))

    def health_index(self, age_h: ArrayLike) -> NDArray[np.float64]:
        """1 = as new, 0 = failed (damage at the failure threshold)."""
        return 1.0 - self.damage(age_h)

    def rul_h(self, age_h: ArrayLike) -> NDArray[np.float64]:
        """Remaining useful life in hours (inf for a machine that never fails)."""
        age = np.asarray(age_h, dtype=np.float64)
        if self.fault is FaultMode.NONE:
            return np.full_like(age, np.inf)
        return np.maximum(self.failure_h - age, 0.0)

    def describe(self) -> dict[str, Any]:
        return {
            "fault_mode": str(self.fault),
            "onset_time_h": self.onset_time_h,
            "failure_time_h": self.failure_time_h,
            "initial_damage": self.initial_damage,
            "growth_per_h": None if self.fault is FaultMode.NONE else self.growth_per_h,
        }


class ThermalLag:
    """First-order thermal lag of bearing temperature towards a target, stepped exactly.

    The exact exponential step keeps the result independent of how often it is sampled.
    """

    def __init__(self, initial_c: float, tau_h: float) -> None:
        self.temperature_c = initial_c
        self.tau_h = tau_h
        self._age_h: float | None = None

    def step(self, age_h: float, target_c: float) -> float:
        """Advance to ``age_h`` with the target held over the step; returns the temperature."""
        if self._age_h is not None and age_h > self._age_h:
            alpha = 1.0 - math.exp(-(age_h - self._age_h) / self.tau_h)
            self.temperature_c += (target_c - self.temperature_c) * alpha
        self._age_h = age_h
        return self.temperature_c
