"""Pipeline test fixtures: an in-memory telemetry store, a seeded database, synthetic fleets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import Base, make_engine, make_session_factory, upgrade
from cloud.domain.registry import seed_fleet
from cloud.settings import CloudSettings
from cloud.telemetry import FeatureFrame, TimeLike
from cloud.telemetry._frame import to_ns
from ironwatch.wire import FeatureRecord
from models.features import FEATURE_NAMES

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)
ASSETS = ("pump-01", "fan-02", "motor-03")
HEALTHY = {
    "accel_rms_ms2": 2.0, "accel_peak_ms2": 7.0, "crest_factor": 3.5, "kurtosis": 3.0,
    "skewness": 0.0, "velocity_rms_mms": 1.2, "env_bpfo_ms2": 0.05, "env_bpfi_ms2": 0.05,
    "env_bsf_ms2": 0.04, "env_ftf_ms2": 0.03, "order_1x_ms2": 0.8, "order_2x_ms2": 0.3,
    "order_3x_ms2": 0.1,
}


class MemoryStore:
    """The telemetry store's read side over a list of records (the contract: [start, end))."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, FeatureRecord]] = []

    def write(self, gateway_id: str, records: Sequence[FeatureRecord]) -> int:
        self.rows.extend((gateway_id, r) for r in records)
        return len(records)

    def query(
        self,
        *,
        asset_ids: Sequence[str] | None = None,
        point: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        features: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> FeatureFrame:
        lo = None if start is None else to_ns(start)
        hi = None if end is None else to_ns(end)
        picked = [
            (g, r) for g, r in self.rows
            if (asset_ids is None or r.asset_id in asset_ids)
            and (point is None or r.point == point)
            and (lo is None or to_ns(r.ts) >= lo)
            and (hi is None or to_ns(r.ts) < hi)
        ]
        frame = FeatureFrame.from_records(picked, features)
        return frame if limit is None else frame.take(np.arange(min(limit, len(frame))))

    def latest_snapshot(self, asset_id: str, point: str | None = None) -> Any:
        return None


class Fleet:
    """Synthetic feature records: healthy noise, optionally a growing bearing fault or a spike."""

    def __init__(self, store: MemoryStore, seed: int = 7) -> None:
        self.store = store
        self.rng = np.random.default_rng(seed)
        self.seq = 0
        self.t = T0
        self.progress = dict.fromkeys(ASSETS, 0)

    def emit(self, windows: int, *, degrade: dict[str, float] | None = None,
             spike_at: dict[str, int] | None = None, hold: bool = False) -> datetime:
        """Append `windows` windows for every asset; degrade[asset] = growth per window."""
        degrade = degrade or {}
        spike_at = spike_at or {}
        for w in range(windows):
            self.t += STEP
            records = []
            for asset in ASSETS:
                feats = {k: v * float(np.exp(self.rng.normal(0, 0.05))) for k, v in HEALTHY.items()}
                feats["skewness"] = float(self.rng.normal(0, 0.05))
                if asset in degrade:
                    self.progress[asset] += 0 if hold else 1
                    g = float(np.exp(degrade[asset] * self.progress[asset]))
                    for name in ("env_bpfo_ms2", "velocity_rms_mms", "kurtosis"):
                        feats[name] *= g
                if spike_at.get(asset) == w:
                    feats["env_bpfo_ms2"] *= 40
                    feats["kurtosis"] *= 4
                values: dict[str, float | None] = {k: feats[k] for k in FEATURE_NAMES if k in feats}
                records.append(FeatureRecord(seq=self.seq, asset_id=asset, point="de_radial",
                                             ts=self.t, window_s=1.0, features=values))
                self.seq += 1
            self.store.write("gw-1", records)
        return self.t + timedelta(seconds=1)


FLEET = {
    "gateways": [{"id": "gw-1"}],
    "assets": [
        {"id": a, "gateway_id": "gw-1", "kind": "pump", "customer_tier": "key",
         "physics": {"speed_rpm": 1480.0, "iso_group": 2, "foundation": "rigid", "points": [
             {"id": "de_radial", "bearing": {"n_balls": 9, "ball_diameter_mm": 7.94,
                                             "pitch_diameter_mm": 39.04}}]}}
        for a in ASSETS
    ],
}


def seeded_session_factory() -> sessionmaker[Session]:
    """A fresh in-memory database with the test fleet registered."""
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_fleet(session, FLEET)
        session.commit()
    return factory


@pytest.fixture
def session_factory() -> Iterator[sessionmaker[Session]]:
    factory = seeded_session_factory()
    yield factory
    bind = factory.kw["bind"]
    bind.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> CloudSettings:
    return CloudSettings(data_dir=tmp_path, commissioning_records=30)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def fleet(store: MemoryStore) -> Fleet:
    return Fleet(store)


class WallClock:
    """A wall clock the test moves by hand (lease times are wall-clock times)."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def pg_factory(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated PostgreSQL database with FLEET registered."""
    engine = make_engine(postgres_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_fleet(session, FLEET)
        session.commit()
    yield factory
    engine.dispose()
