"""A seeded fleet for dashboard tests: SQLite database, real embedded telemetry store, snapshot."""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from cloud.api import make_context
from cloud.api.context import ScoringMonitor
from cloud.dashboard import mount_dashboard
from cloud.dashboard.csrf import CSRF_FIELD
from cloud.dashboard.sessions import CSRF_COOKIE, SESSION_COOKIE, csrf_token_for
from cloud.db.engine import SessionFactory, make_engine, make_session_factory
from cloud.db.models import (
    Alert,
    AlertEvent,
    Asset,
    Base,
    Gateway,
    WorkOrder,
)
from cloud.domain.tokens import create_token
from cloud.settings import CloudSettings
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.wire import FeatureRecord, WaveformSnapshot
from ironwatch_app.local_servers import free_port
from models.bearing import SKF_6205

with warnings.catch_warnings():
    # Starlette 1.x deprecates httpx for its test client in favour of httpx2, which the pinned
    # dev dependencies do not include yet; drop this once they do.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

__all__ = [
    "ADMIN_TOKEN",
    "LOCAL",
    "DashboardClient",
    "Fleet",
    "TestClient",
    "make_app",
    "outer_race_waveform",
    "seed_fleet",
]

# A browser on the same host as the service: read-only access without a token.
LOCAL = ("127.0.0.1", 50000)
ADMIN_TOKEN = "Adm1n-t0ken-for-dashboard-tests-9f3c"
PUMP_RPM = 1480.0
FS_HZ = 20480.0
N_SAMPLES = 16384


@dataclass
class Fleet:
    """Handles on the seeded fleet."""

    session_factory: SessionFactory
    store: SqliteTelemetryStore
    settings: CloudSettings
    now: datetime
    alert_id: int
    engineer_token: str
    desk_token: str
    gateway_token: str
    requested: list[tuple[str, str | None, str]]


def outer_race_waveform(shaft_hz: float, seed: int = 7) -> npt.NDArray[np.float64]:
    """1×/2× shaft tones plus resonance bursts repeating at BPFO: an outer-race fault."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_SAMPLES) / FS_HZ
    x = 1.0 * np.sin(2 * math.pi * shaft_hz * t) + 0.4 * np.sin(2 * math.pi * 2 * shaft_hz * t)
    bpfo = SKF_6205.defect_frequencies(shaft_hz).bpfo
    for start in np.arange(0.0, t[-1], 1.0 / bpfo):
        tail = t - start
        burst = tail >= 0
        x[burst] += 3.0 * np.exp(-tail[burst] * 800.0) * np.sin(2 * math.pi * 4000.0 * tail[burst])
    return x + 0.05 * rng.standard_normal(N_SAMPLES)


def _records(
    asset_id: str, now: datetime, hours: float, step_s: float, ramp: float
) -> list[FeatureRecord]:
    out = []
    n = int(hours * 3600 / step_s)
    for i in range(n):
        frac = i / max(n - 1, 1)
        ts = now - timedelta(seconds=(n - 1 - i) * step_s)
        growth = ramp * frac**3
        out.append(
            FeatureRecord(
                seq=i,
                asset_id=asset_id,
                point="de_radial",
                ts=ts,
                window_s=1.0,
                features={
                    "velocity_rms_mms": 1.1 + growth + 0.05 * math.sin(i),
                    "accel_rms_ms2": 2.0 + 2 * growth,
                    "kurtosis": 3.0 + 4 * growth,
                    "env_bpfo_ms2": 0.05 + 0.6 * growth,
                    "env_bpfi_ms2": 0.04,
                    "temperature_c": 41.0 + 3 * frac,
                },
            )
        )
    return out


def seed_fleet(tmp: Path, now: datetime) -> Fleet:
    """Three assets on two gateways; pump-01 has an outer-race alert, P1 overdue work order."""
    settings = CloudSettings(data_dir=tmp, admin_token=SecretStr(ADMIN_TOKEN))
    engine = make_engine(settings.sqlalchemy_url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    store = SqliteTelemetryStore(tmp / "telemetry.db")
    bearing = {
        "n_balls": 9,
        "ball_diameter_mm": 7.94,
        "pitch_diameter_mm": 39.04,
        "contact_angle_deg": 0.0,
    }
    points = [{"id": "de_radial", "bearing": bearing}]
    with factory() as s:
        s.add_all(
            [
                Gateway(id="gw-hall-a", name="Hall A", state="online", last_seen=now),
                Gateway(
                    id="gw-hall-b",
                    name="Hall B",
                    state="offline",
                    last_seen=now - timedelta(hours=3),
                ),
                Asset(
                    id="pump-01",
                    gateway_id="gw-hall-a",
                    name="Cooling pump 1",
                    kind="pump",
                    location="Hall A",
                    physics={"speed_rpm": PUMP_RPM, "iso_group": 2, "foundation": "rigid",
                             "points": points},
                    customer_tier="key",
                    running_hours=1234.0,
                ),
                Asset(
                    id="fan-02",
                    gateway_id="gw-hall-a",
                    name="Exhaust fan 2",
                    kind="fan",
                    location="Hall A",
                    physics={"speed_rpm": 990.0, "iso_group": 2, "foundation": "flexible",
                             "points": points},
                    customer_tier="standard",
                ),
                Asset(
                    id="motor-03",
                    gateway_id="gw-hall-b",
                    name="Line motor 3",
                    kind="motor",
                    location="Hall B",
                    physics={"speed_rpm": 2975.0, "iso_group": 1, "foundation": "rigid"},
                    customer_tier="strategic",
                ),
            ]
        )
        s.flush()
        # The shape cloud/pipeline/_evidence.py writes.
        evidence = {
            "point": "de_radial",
            "persistence": {"over_threshold": 5, "of_last": 6, "needed": 4},
            "anomaly_score": 2.4,
            "moved_features": [
                {"feature": "env_bpfo_ms2", "value": 0.65, "baseline_median": 0.05, "z": 9.4},
                {"feature": "kurtosis", "value": 7.1, "baseline_median": 3.0, "z": 5.2},
                {"feature": "velocity_rms_mms", "value": 2.1, "baseline_median": 1.1, "z": 3.1},
            ],
            "iso_zone": "B",
            "velocity_rms_mms": 2.1,
            "diagnosis": {
                "source": "waveform_snapshot",
                "fault": "bearing_outer_race",
                "confidence": 0.86,
                "failure_mode_code": "VIB",
                "failure_mechanism_code": "2.6",
                "findings": [{"fault": "bearing_outer_race", "confidence": 0.86}],
            },
            "spectral_peaks": [
                {
                    "fault": "bearing_outer_race",
                    "peak_1x_hz": 88.6,
                    "peak_1x_ms2": 0.62,
                    "ratio_1x": 11.3,
                    "peak_2x_hz": 177.0,
                    "peak_2x_ms2": 0.31,
                    "ratio_2x": 6.2,
                },
            ],
            "models": {
                "anomaly": "FleetBaseline",
                "diagnosis": "models.diagnosis",
                "rul": "models.rul",
            },
            "rul_hours": {"low": 40.0, "median": 120.0, "high": 300.0},
        }
        alert = Alert(
            asset_id="pump-01",
            failure_mode="bearing_outer_race",
            severity="alarm",
            state="open",
            score=2.4,
            confidence=0.86,
            iso_zone="B",
            evidence=evidence,
            model="FleetBaseline+diagnosis",
            model_version="0.1.0",
            rul_low_h=40.0,
            rul_median_h=120.0,
            rul_high_h=300.0,
            opened_at=now - timedelta(hours=1),
            last_seen_at=now,
            resolution_note="",
        )
        alert.events.append(
            AlertEvent(
                at=now - timedelta(hours=1),
                kind="opened",
                severity="warning",
                score=1.3,
                details=evidence,
            )
        )
        alert.events.append(
            AlertEvent(
                at=now - timedelta(minutes=20),
                kind="escalated",
                severity="alarm",
                score=2.4,
                details={"from": "warning", "to": "alarm"},
            )
        )
        s.add(alert)
        s.add(
            Alert(
                asset_id="pump-01",
                failure_mode="imbalance",
                severity="warning",
                state="resolved",
                score=1.4,
                evidence={},
                model="FleetBaseline",
                model_version="0.1.0",
                opened_at=now - timedelta(hours=5),
                last_seen_at=now - timedelta(hours=4),
                resolved_at=now - timedelta(hours=3),
                resolved_by="token:eng-1",
                resolution_note="balanced the impeller",
            )
        )
        s.flush()

        def wo(
            asset: str,
            mode: str,
            prio: str,
            state: str,
            respond: float,
            resolve: float,
            **kw: object,
        ) -> WorkOrder:
            return WorkOrder(
                asset_id=asset,
                failure_mode=mode,
                title=f"Inspect {mode.replace('_', ' ')}",
                priority=prio,
                state=state,
                created_at=now - timedelta(hours=2),
                updated_at=now,
                respond_by=now + timedelta(hours=respond),
                resolve_by=now + timedelta(hours=resolve),
                **kw,
            )

        s.add_all(
            [
                wo(
                    "pump-01",
                    "bearing_outer_race",
                    "P1",
                    "open",
                    -0.5,
                    20,
                    alert_id=alert.id,
                    suggested_actions=["Check lubrication", "Plan bearing change"],
                    spare_parts=["SKF 6205-2RS"],
                ),
                wo(
                    "fan-02",
                    "unbalance",
                    "P2",
                    "assigned",
                    -1,
                    40,
                    assignee="j.doe",
                    planned_for=now + timedelta(days=1),
                ),
                wo("motor-03", "misalignment", "P3", "in_progress", -5, 100, assignee="a.lee"),
                wo(
                    "fan-02",
                    "scheduled_service",
                    "P3",
                    "done",
                    -50,
                    -10,
                    done_at=now - timedelta(hours=12),
                ),
            ]
        )
        _, engineer = create_token(s, name="eng-1", role="engineer", actor="test", now=now)
        _, desk = create_token(s, name="desk-1", role="service_desk", actor="test", now=now)
        _, gateway = create_token(
            s, name="gw", role="gateway", actor="test", now=now, gateway_id="gw-hall-a"
        )
        alert_id = alert.id
        s.commit()

    store.write("gw-hall-a", _records("pump-01", now, hours=6, step_s=120, ramp=1.6))
    store.write(
        "gw-hall-a",
        [
            r.model_copy(update={"asset_id": "fan-02", "seq": 10_000 + r.seq})
            for r in _records("fan-02", now, hours=6, step_s=300, ramp=0.0)
        ],
    )
    shaft_hz = PUMP_RPM / 60.0
    store.save_snapshot(
        WaveformSnapshot(
            gateway_id="gw-hall-a",
            seq=99_999,
            sent_at=now,
            asset_id="pump-01",
            point="de_radial",
            ts=now - timedelta(minutes=5),
            sample_rate_hz=FS_HZ,
            speed_rpm=PUMP_RPM,
            samples_f32le_b64=WaveformSnapshot.pack(outer_race_waveform(shaft_hz)),
        )
    )
    return Fleet(factory, store, settings, now, alert_id, engineer, desk, gateway, [])


class DashboardClient(TestClient):
    """A test client that sends its forms the way the pages do: with the CSRF token of the
    cookie the dashboard gave it."""

    def csrf_token(self) -> str:
        if not (self.cookies.get(SESSION_COOKIE) or self.cookies.get(CSRF_COOKIE)):
            self.get("/login")
        secret = self.cookies.get(SESSION_COOKIE) or self.cookies.get(CSRF_COOKIE)
        assert secret is not None, "the dashboard set no cookie"
        return csrf_token_for(secret)

    def post(self, url: Any, *, data: Any = None, **kwargs: Any) -> Any:
        form = {CSRF_FIELD: self.csrf_token(), **(data or {})}
        return super().post(url, data=form, **kwargs)


def make_app(
    fleet: Fleet, *, with_snapshot: bool = True, scoring: ScoringMonitor | None = None
) -> FastAPI:
    """An app with only the dashboard, as cloud/app.py includes it (with its protections)."""

    def request_snapshot(asset_id: str, point: str | None, actor: str) -> str:
        fleet.requested.append((asset_id, point, actor))
        return f"cmd-{len(fleet.requested)}"

    context = make_context(
        fleet.settings,
        fleet.session_factory,
        telemetry_store=fleet.store,
        request_snapshot=request_snapshot if with_snapshot else None,
    )
    context.scoring = scoring
    # As cloud/app.py builds it: /docs and /redoc are the dashboard's offline pages.
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    mount_dashboard(app, context)
    return app


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    now = datetime.now(UTC).replace(microsecond=0)
    seeded = seed_fleet(tmp_path, now)
    try:
        yield seeded
    finally:
        seeded.store.close()
        seeded.session_factory.kw["bind"].dispose()


@pytest.fixture
def client(fleet: Fleet) -> Iterator[TestClient]:
    with DashboardClient(make_app(fleet), client=LOCAL) as c:
        yield c


@contextlib.contextmanager
def serving(app: FastAPI, fleet: Fleet | None = None) -> Iterator[str]:
    """The app on a real uvicorn server in a thread, on a free loopback port, for a browser.

    Yields the base URL; afterwards the server stops and the fleet's telemetry store and
    database are closed.
    """
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="dashboard-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if fleet is not None:
            fleet.store.close()
            fleet.session_factory.kw["bind"].dispose()
