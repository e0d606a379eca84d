"""What the scoring pipeline remembers between rounds and across restarts.

Per (asset, point): the read cursor, the commissioning rows (its own healthy
baseline), the tail of over-threshold flags for the persistence rule, and bounded
feature histories for RUL. The database keeps all of it but the histories
(`cloud.pipeline._state_db`), written per round for what changed; this module is
the in-memory form. `PipelineState.save/load` read and write the directory format
of earlier versions (`state.json` + npz), which a first start imports once.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "STATE_VERSION",
    "Baseline",
    "KeyState",
    "PipelineState",
    "SnapshotRequest",
    "point_key",
    "split_key",
]

log = logging.getLogger(__name__)

STATE_VERSION = 1
FloatArray = npt.NDArray[np.float64]
_SEP = "/"


def point_key(asset_id: str, point: str) -> str:
    """One string per (asset, point): the unit the anomaly model keeps a baseline for."""
    return f"{asset_id}{_SEP}{point}"


def split_key(key: str) -> tuple[str, str]:
    asset_id, _, point = key.partition(_SEP)
    return asset_id, point


@dataclass
class KeyState:
    """Bookkeeping for one (asset, point)."""

    cursor_s: float | None = None
    commissioned_at_s: float | None = None
    flags_tail: list[bool] = field(default_factory=list)
    raised: bool = False
    onset_s: float | None = None
    #: Capture times and health indicator of the scored rows, newest last, bounded.
    hi_t_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    hi: FloatArray = field(default_factory=lambda: np.zeros(0))
    #: History of each level feature a RUL health indicator may be chosen from, aligned
    #: with the tail of `hi_t_s`: the lead-in while quiet, since onset while raised.
    trend: dict[str, list[float]] = field(default_factory=dict)
    #: Capture times of the first and last commissioning rows: the point's own window
    #: spacing, which calibrates the detector's false-alarm budget per window.
    baseline_first_s: float | None = None
    baseline_last_s: float | None = None
    #: Whether `hi_t_s`, `hi` and `trend` are complete. A point loaded from the database
    #: has none (they are never written there); they are read back from the telemetry
    #: store when its point is raised and needs them (see `ScoringPipeline`).
    warm: bool = True

    @property
    def trend_from_s(self) -> float | None:
        """Capture time of the oldest row of the feature history, None without one."""
        longest = max((len(v) for v in self.trend.values()), default=0)
        if not longest or longest > len(self.hi_t_s):
            return None
        return float(self.hi_t_s[len(self.hi_t_s) - longest])

    def window_spacing_s(self, rows: int) -> float | None:
        """Mean capture-time spacing of `rows` commissioning rows; None if unknown."""
        if self.baseline_first_s is None or self.baseline_last_s is None or rows < 2:
            return None
        spacing = (self.baseline_last_s - self.baseline_first_s) / (rows - 1)
        return spacing if spacing > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "cursor_s": self.cursor_s,
            "commissioned_at_s": self.commissioned_at_s,
            "flags_tail": self.flags_tail,
            "raised": self.raised,
            "onset_s": self.onset_s,
            "hi_t_s": self.hi_t_s.tolist(),
            "hi": self.hi.tolist(),
            "trend": self.trend,
            "baseline_first_s": self.baseline_first_s,
            "baseline_last_s": self.baseline_last_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyState:
        return cls(
            cursor_s=data.get("cursor_s"),
            commissioned_at_s=data.get("commissioned_at_s"),
            flags_tail=[bool(x) for x in data.get("flags_tail", [])],
            raised=bool(data.get("raised", False)),
            onset_s=data.get("onset_s"),
            hi_t_s=np.asarray(data.get("hi_t_s", []), dtype=np.float64),
            hi=np.asarray(data.get("hi", []), dtype=np.float64),
            trend={
                str(name): [float(x) for x in values]
                for name, values in dict(data.get("trend", {})).items()
            },
            baseline_first_s=data.get("baseline_first_s"),
            baseline_last_s=data.get("baseline_last_s"),
        )


@dataclass
class Baseline:
    """Commissioning rows of every (asset, point): features, operating condition, key."""

    feature_names: list[str] = field(default_factory=list)
    rows: dict[str, FloatArray] = field(default_factory=dict)
    version: int = 0
    #: Per key (median, MAD) computed once after its rows changed, not every round.
    _stats: dict[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict, repr=False)

    def add_rows(self, key: str, names: list[str], values: FloatArray) -> None:
        """Append rows for key, widening the feature list if new names appear."""
        self.widen(names)
        self.add_aligned(key, align_columns(values, names, self.feature_names))

    def widen(self, names: list[str]) -> None:
        """Add feature names not seen yet (every key's rows get NaN columns for them)."""
        known = set(self.feature_names)
        new = [n for n in names if n not in known]
        if new:
            self._stats.clear()
            self.feature_names.extend(new)
            width = len(self.feature_names)
            for k, arr in self.rows.items():
                pad = np.full((arr.shape[0], width - arr.shape[1]), np.nan)
                self.rows[k] = np.hstack([arr, pad])

    def add_aligned(self, key: str, aligned: FloatArray) -> None:
        """Append rows already in `feature_names` order."""
        self._stats.pop(key, None)
        old = self.rows.get(key)
        self.rows[key] = aligned.copy() if old is None else np.vstack([old, aligned])

    def set_rows(self, key: str, names: list[str], values: FloatArray) -> None:
        """Replace a key's rows (loading saved state): widen, then align to the fleet names."""
        self.drop(key)
        self.add_rows(key, names, values)

    def drop(self, key: str) -> None:
        self.rows.pop(key, None)
        self._stats.pop(key, None)

    def count(self, key: str) -> int:
        arr = self.rows.get(key)
        return 0 if arr is None else int(arr.shape[0])

    def median_array(self, key: str) -> FloatArray:
        """Per-feature median of a key's baseline rows (NaN where never measured)."""
        return self._stat(key)[0]

    def mad_array(self, key: str) -> FloatArray:
        """Per-feature median absolute deviation of a key's baseline rows."""
        return self._stat(key)[1]

    def precompute(self, keys: list[str]) -> None:
        """Median and MAD of these keys' rows in a few vectorised calls (at fit time), so
        no round computes one; keys with as many rows share one call."""
        by_rows: dict[int, list[str]] = {}
        for key in keys:
            arr = self.rows.get(key)
            if arr is not None and arr.shape[0] and key not in self._stats:
                by_rows.setdefault(arr.shape[0], []).append(key)
        width = len(self.feature_names)
        for group in by_rows.values():
            stack = np.stack([self.rows[k][:, :width] for k in group])  # (K, n, F)
            with warnings.catch_warnings():
                # A feature a point never reports is all NaN: its median is NaN, as wanted.
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(stack, axis=1)
                mad = np.nanmedian(np.abs(stack - med[:, None, :]), axis=1)
            for i, key in enumerate(group):
                self._stats[key] = (med[i], mad[i])

    def _stat(self, key: str) -> tuple[FloatArray, FloatArray]:
        cached = self._stats.get(key)
        if cached is not None:
            return cached
        arr = self.rows.get(key)
        if arr is None or not arr.shape[0]:
            nan = np.full(len(self.feature_names), np.nan)
            return nan, nan
        med = _nanstat(np.nanmedian, arr)
        stat = self._stats[key] = (med, _nanstat(np.nanmedian, np.abs(arr - med)))
        return stat

    def columns(self, key: str, names: list[str]) -> dict[str, FloatArray]:
        """A key's commissioning rows of `names`, one array per feature it has."""
        arr = self.rows.get(key)
        if arr is None:
            return {}
        return {n: arr[:, self.feature_names.index(n)] for n in names if n in self.feature_names}

    def median(self, key: str) -> dict[str, float]:
        return dict(zip(self.feature_names, self.median_array(key).tolist(), strict=True))

    def stacked(self, keys: list[str]) -> tuple[FloatArray, npt.NDArray[np.str_]]:
        """All rows of `keys` as one matrix plus the key of each row."""
        mats = [self.rows[k] for k in keys]
        if not mats:
            return np.zeros((0, len(self.feature_names))), np.zeros(0, dtype=str)
        ids = np.concatenate([np.full(m.shape[0], k) for k, m in zip(keys, mats, strict=True)])
        return np.vstack(mats), ids


def _nanstat(func: Any, arr: FloatArray) -> FloatArray:
    # All-NaN columns (a feature this point never reports) give NaN without a warning.
    out = np.full(arr.shape[1], np.nan)
    measured = ~np.isnan(arr).all(axis=0)
    if measured.any():
        out[measured] = func(arr[:, measured], axis=0)
    return out


def align_columns(values: FloatArray, names: list[str], target: list[str]) -> FloatArray:
    """Reorder/reindex columns from `names` to `target`; missing columns become NaN."""
    out = np.full((values.shape[0], len(target)), np.nan)
    pos = {n: i for i, n in enumerate(names)}
    for j, name in enumerate(target):
        i = pos.get(name)
        if i is not None:
            out[:, j] = values[:, i]
    return out


@dataclass
class SnapshotRequest:
    """The waveform scoring last asked an asset's gateway for, and a new alert held for it.

    Times are round times (epoch seconds). `asked_at_s` keeps the gateway from being asked
    again within the retry interval; `waiting_since_s` is set while a new alert waits for
    the waveform, and bounds that wait.
    """

    point: str
    asked_at_s: float | None = None
    command_id: str | None = None
    waiting_since_s: float | None = None


@dataclass
class PipelineState:
    """The whole remembered state, loadable from and savable to a directory."""

    keys: dict[str, KeyState] = field(default_factory=dict)
    baseline: Baseline = field(default_factory=Baseline)
    # Per asset: failure modes with an open condition raised by this pipeline.
    open_modes: dict[str, list[str]] = field(default_factory=dict)
    # Verdict ids already fed back to the detector, so each is applied once.
    verdicts_applied: list[int] = field(default_factory=list)
    # Rows engineers gave a verdict on, replayed after every refit of the detector.
    verdict_rows: list[dict[str, Any]] = field(default_factory=list)
    #: What changed since the last save: written to the database, nothing else.
    dirty_keys: set[str] = field(default_factory=set)
    dirty_assets: set[str] = field(default_factory=set)
    #: Keys whose commissioning rows changed (their baseline matrix is written too).
    dirty_baselines: set[str] = field(default_factory=set)
    #: Per asset: the snapshot last asked for, and whether a new alert waits for it.
    snapshot_requests: dict[str, SnapshotRequest] = field(default_factory=dict)
    dirty_requests: set[str] = field(default_factory=set)

    def key(self, key: str) -> KeyState:
        ks = self.keys.get(key)
        if ks is None:
            ks = self.keys[key] = KeyState()
        return ks

    def clean(self) -> None:
        """Everything changed so far is saved."""
        self.dirty_keys.clear()
        self.dirty_assets.clear()
        self.dirty_baselines.clear()
        self.dirty_requests.clear()

    def waiting_since(self, asset_id: str) -> float | None:
        """When a new alert of the asset started waiting for its waveform; None: it is not."""
        request = self.snapshot_requests.get(asset_id)
        return None if request is None else request.waiting_since_s

    def waiting_assets(self) -> set[str]:
        return {a for a, r in self.snapshot_requests.items() if r.waiting_since_s is not None}

    def wait_for_snapshot(self, asset_id: str, point: str, t: float) -> float:
        """Hold the asset's new alert for its waveform from `t`, unless it already waits."""
        request = self.snapshot_requests.setdefault(asset_id, SnapshotRequest(point))
        if request.waiting_since_s is None:
            request.waiting_since_s = t
            self.dirty_requests.add(asset_id)
        return request.waiting_since_s

    def stop_waiting(self, asset_id: str) -> None:
        request = self.snapshot_requests.get(asset_id)
        if request is not None and request.waiting_since_s is not None:
            request.waiting_since_s = None
            self.dirty_requests.add(asset_id)

    def asked_for_snapshot(
        self, asset_id: str, point: str, t: float, command_id: str | None = None
    ) -> None:
        """Note a snapshot request sent (or being sent) at round time `t`."""
        request = self.snapshot_requests.setdefault(asset_id, SnapshotRequest(point))
        request.point, request.asked_at_s, request.command_id = point, t, command_id
        self.dirty_requests.add(asset_id)

    def touch_asset(self, asset_id: str) -> None:
        self.dirty_assets.add(asset_id)

    def forget_assets(self, asset_ids: set[str]) -> None:
        """Drop what is remembered of assets another worker now scores."""
        for key in [k for k in self.keys if split_key(k)[0] in asset_ids]:
            del self.keys[key]
            self.baseline.drop(key)
            self.dirty_keys.discard(key)
            self.dirty_baselines.discard(key)
        for asset_id in asset_ids:
            self.open_modes.pop(asset_id, None)
            self.dirty_assets.discard(asset_id)
            self.snapshot_requests.pop(asset_id, None)
            self.dirty_requests.discard(asset_id)
        self.verdict_rows = [
            v for v in self.verdict_rows if split_key(str(v["key"]))[0] not in asset_ids
        ]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        b = self.baseline
        npz_name = f"baseline-v{b.version}.npz"
        npz_path = directory / npz_name
        if not npz_path.exists():
            keys = sorted(b.rows)
            tmp = directory / f".{npz_name}.tmp.npz"
            arrays: dict[str, Any] = {f"rows_{i}": b.rows[k] for i, k in enumerate(keys)}
            arrays["feature_names"] = np.array(b.feature_names, dtype=str)
            arrays["keys"] = np.array(keys, dtype=str)
            np.savez(tmp, **arrays)
            os.replace(tmp, npz_path)
        doc = {
            "state_version": STATE_VERSION,
            "baseline_version": b.version,
            "baseline_file": npz_name,
            "keys": {k: v.to_json() for k, v in self.keys.items()},
            "open_modes": self.open_modes,
            "verdicts_applied": self.verdicts_applied,
            "verdict_rows": self.verdict_rows,
        }
        tmp_json = directory / ".state.json.tmp"
        tmp_json.write_text(json.dumps(doc))
        os.replace(tmp_json, directory / "state.json")
        # Older baseline versions are superseded; keep the previous one for rollback.
        for old in directory.glob("baseline-v*.npz"):
            v = _version_of(old)
            if v is not None and v < b.version - 1:
                old.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path) -> PipelineState:
        """The state an older version kept in `directory` (imported once into the database)."""
        path = directory / "state.json"
        if not path.exists():
            return cls()
        doc = json.loads(path.read_text())
        if doc.get("state_version") != STATE_VERSION:
            log.warning("pipeline state %s has version %s, expected %s: starting afresh",
                        path, doc.get("state_version"), STATE_VERSION)
            return cls()
        baseline = Baseline(version=int(doc["baseline_version"]))
        npz_path = directory / doc["baseline_file"]
        if npz_path.exists():
            with np.load(npz_path) as npz:
                baseline.feature_names = [str(x) for x in npz["feature_names"]]
                for i, k in enumerate(npz["keys"]):
                    baseline.rows[str(k)] = np.asarray(npz[f"rows_{i}"], dtype=np.float64)
        keys = {k: KeyState.from_json(v) for k, v in doc.get("keys", {}).items()}
        open_modes = {k: list(v) for k, v in doc.get("open_modes", {}).items()}
        verdicts = [int(v) for v in doc.get("verdicts_applied", [])]
        return cls(keys=keys, baseline=baseline, open_modes=open_modes, verdicts_applied=verdicts,
                   verdict_rows=list(doc.get("verdict_rows", [])))


def _version_of(path: Path) -> int | None:
    stem = path.name.removeprefix("baseline-v").removesuffix(".npz")
    return int(stem) if stem.isdigit() else None
