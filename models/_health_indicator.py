"""Which feature to trend for RUL: the one that moved most since commissioning.

Velocity (ISO 10816, 10–1000 Hz) has a known failure level but barely moves while a
bearing defect is young; band energies and the envelope at the diagnosed defect move
first and furthest. Pure numpy; re-exported by ``models.rul``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["DEFECT_ENVELOPE", "HealthIndicator", "choose_health_indicator"]

_MAD_TO_SIGMA = 1.4826
VELOCITY = "velocity_rms_mms"
#: Envelope feature of each diagnosed bearing fault (``models.diagnosis.Fault`` values).
DEFECT_ENVELOPE = {
    "bearing_outer_race": "env_bpfo_ms2",
    "bearing_inner_race": "env_bpfi_ms2",
    "bearing_ball": "env_bsf_ms2",
    "bearing_cage": "env_ftf_ms2",
}
#: Level trends of these move with wear; shape features (kurtosis, crest) do not grow steadily.
_TRENDED_PREFIXES = ("band_", "accel_rms_ms2", VELOCITY)


@dataclass(frozen=True)
class HealthIndicator:
    """The feature to trend, its healthy level ``phi`` and the level counted as failure.

    ``moved_sd`` is how far its recent level sits from the commissioning level, in
    commissioning standard deviations of its logarithm (robust: median and MAD).
    """

    name: str
    phi: float
    threshold: float
    moved_sd: float


def _log_levels(values: ArrayLike) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    return np.log(v)


def choose_health_indicator(
    baseline: Mapping[str, ArrayLike],
    recent: Mapping[str, ArrayLike],
    *,
    fault: str | None = None,
    velocity_limit_mms: float | None = None,
    failure_ratio: float = 10.0,
    min_moved_sd: float = 3.0,
) -> HealthIndicator | None:
    """Pick, per asset, the level feature whose recent median moved most above commissioning.

    Candidates: band energies, overall acceleration and velocity, and the envelope at the
    diagnosed defect (``fault``, a ``Fault`` value). Movement is measured on log levels, so
    a band rising tenfold counts the same whatever its unit. The failure level is the ISO
    zone C/D limit for velocity (``velocity_limit_mms``) and ``failure_ratio`` × the healthy
    level for the others (+20 dB by default, a usual danger level when trending band
    energy). None when nothing moved by ``min_moved_sd`` (no trend to extrapolate).
    """
    if failure_ratio <= 1.0:
        raise ValueError(f"failure_ratio must exceed 1, got {failure_ratio}")
    candidates = [name for name in baseline if name.startswith(_TRENDED_PREFIXES)]
    envelope = DEFECT_ENVELOPE.get(fault or "")
    if envelope is not None and envelope in baseline:
        candidates.append(envelope)
    best: HealthIndicator | None = None
    for name in candidates:
        base = _log_levels(baseline[name])
        now = _log_levels(recent.get(name, ()))
        if base.size < 3 or now.size == 0:
            continue
        centre = float(np.median(base))
        spread = _MAD_TO_SIGMA * float(np.median(np.abs(base - centre)))
        # A feature that sat on one value still has a resolution: 1 % of its level.
        spread = max(spread, 0.01)
        moved = (float(np.median(now)) - centre) / spread
        phi = math.exp(centre)
        if name == VELOCITY and velocity_limit_mms is not None:
            threshold = float(velocity_limit_mms)
        else:
            threshold = failure_ratio * phi
        if threshold <= phi or (best is not None and moved <= best.moved_sd):
            continue
        best = HealthIndicator(name, phi, threshold, moved)
    if best is None or best.moved_sd < min_moved_sd:
        return None
    return best
