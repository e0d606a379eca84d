"""Two scoring worker processes share a fleet through PostgreSQL leases; one is SIGKILLed.

Real PostgreSQL, real Mosquitto, `ironwatch cloud ingest` and two `ironwatch cloud score`
processes, gateways publishing over MQTT and answering snapshot commands. The workers
split the fleet; the one holding the degrading machine is killed with SIGKILL after its
alert opened; the other takes its assets over within the lease time, resumes from the
state in the database and updates the same alert and work order (none opened twice).
A real Prometheus scrapes both workers throughout: the split, the dead worker and the
takeover show in its series.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import (
    Alert,
    ScoringAsset,
    ScoringPoint,
    ScoringWorker,
    WorkOrder,
    make_engine,
    make_session_factory,
)
from cloud.telemetry import SqliteTelemetryStore
from ironwatch_app.local_servers import Mosquitto, Prometheus, free_port, free_ports, wait_for_port
from ironwatch_testing.cloud_fleet import SHAFT_RPM, SnapshotGateways, fleet_messages, wait_for

pytestmark = pytest.mark.integration

LEASE_S = 4.0
ASSETS = {"pump-01": "gw-a", "fan-02": "gw-b", "motor-03": "gw-a", "press-04": "gw-b"}
DEGRADING = "pump-01"
FLEET_TOML = '[[gateways]]\nid = "gw-a"\n\n[[gateways]]\nid = "gw-b"\n' + "".join(
    f"""
[[assets]]
id = "{asset}"
gateway_id = "{gateway}"
kind = "pump"
customer_tier = "key"
[assets.physics]
speed_rpm = {SHAFT_RPM}
iso_group = 2
foundation = "rigid"
[[assets.physics.points]]
id = "de_radial"
bearing = {{ n_balls = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04 }}
"""
    for asset, gateway in ASSETS.items()
)


class Processes:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ironwatch_app.cli", "--log-level", "INFO", *args],
            stdout=log, stderr=log, env=self.env,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _metrics(port: int) -> str | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None


@pytest.fixture
def processes(tmp_path: Path, postgres_url: str, mosquitto: Mosquitto) -> Iterator[Processes]:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET_TOML)
    env = {**os.environ,
           "IRONWATCH_CLOUD_DATABASE_URL": postgres_url,
           "IRONWATCH_CLOUD_FLEET_FILE": str(fleet),
           "IRONWATCH_CLOUD_SCORING_INTERVAL_S": "0.5",
           "IRONWATCH_CLOUD_SCORING_LEASE_S": str(LEASE_S),
           "IRONWATCH_CLOUD_COMMISSIONING_RECORDS": "30"}
    procs = Processes(tmp_path, env)
    try:
        yield procs
    finally:
        procs.close()


def test_two_workers_share_the_fleet_and_one_killed_is_taken_over_without_duplicates(
    processes: Processes, mosquitto: Mosquitto, postgres_url: str, tmp_path: Path,
) -> None:
    common = ("--data-dir", str(tmp_path / "data"), "--mqtt-port", str(mosquitto.port))
    processes.spawn("ingest", "cloud", "ingest", *common)
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)

    def holders() -> dict[str, str | None]:
        with factory() as session:
            return {a: h for a, h in session.execute(
                select(ScoringAsset.asset_id, ScoringAsset.holder))}

    def alerts() -> list[Alert]:
        with factory() as session:
            return list(session.scalars(select(Alert).order_by(Alert.id)))

    def work_orders() -> list[WorkOrder]:
        with factory() as session:
            return list(session.scalars(select(WorkOrder).order_by(WorkOrder.id)))

    gateways = SnapshotGateways(mosquitto.host, mosquitto.port, ("gw-a", "gw-b"))
    ports = dict(zip(("score-1", "score-2"), free_ports(2), strict=True))
    prom = Prometheus(workdir=tmp_path / "prometheus", scrape_interval_s=1.0,
                      targets={"scoring": [f"127.0.0.1:{p}" for p in ports.values()]})
    try:
        prom.start()
        wait_for(lambda: "connected" in processes.log("ingest"), 30)
        workers = {name: processes.spawn(name, "cloud", "score", "--metrics-port",
                                         str(ports[name]), *common)
                   for name in ("score-1", "score-2")}

        def value(promql: str) -> float | None:
            result = prom.query(promql)
            return float(str(result[0]["value"][1])) if result else None  # type: ignore[index]

        def held(name: str) -> float | None:
            return value(f'ironwatch_scoring_assets_held{{instance="127.0.0.1:{ports[name]}"}}')

        # Both workers hold a share of the fleet: two assets each, every asset held once.
        def shared() -> bool:
            held = holders()
            return set(held) == set(ASSETS) and len({h for h in held.values() if h}) == 2 \
                and all(list(held.values()).count(h) == 2 for h in held.values())
        wait_for(shared, 60)
        # Prometheus sees the same split: two assets held by each worker, rounds completing.
        wait_for(lambda: held("score-1") == 2 and held("score-2") == 2, 60)
        wait_for(lambda: value('count(ironwatch_scoring_rounds_total{job="scoring",'
                               'outcome="completed"} > 0)') == 2, 30)
        gateways.publish(fleet_messages(ASSETS, (DEGRADING,), n_windows=60, commissioning=30,
                                        seed=3, epoch="00000000000e0c03"))
        wait_for(lambda: any(a.asset_id == DEGRADING for a in alerts()), 60)
        time.sleep(1.0)  # a few more rounds on the open alert
        before = [(a.id, a.asset_id, a.failure_mode) for a in alerts()]
        orders_before = [(w.id, w.asset_id, w.failure_mode) for w in work_orders()]
        assert [a for a in before if a[1] == DEGRADING]
        assert [w for w in orders_before if w[1] == DEGRADING]

        # SIGKILL the worker that holds the degrading machine: no clean hand-over.
        holder = holders()[DEGRADING]
        assert holder is not None
        pid = int(holder.rsplit("-", 2)[1])
        victim = next(n for n, p in workers.items() if p.pid == pid)
        survivor = next(n for n in workers if n != victim)
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(10)
        killed_at = datetime.now(UTC)
        survivor_holder = next(h for h in holders().values() if h != holder)

        # More degraded windows arrive; the survivor takes the asset over within the lease.
        gateways.publish(fleet_messages(ASSETS, (DEGRADING,), n_windows=40, commissioning=-30,
                                        seed=4, epoch="00000000000e0c04"))
        t0 = time.monotonic()
        wait_for(lambda: set(holders().values()) == {survivor_holder}, LEASE_S + 10)
        taken_over_s = time.monotonic() - t0
        # ... and so does Prometheus: the killed worker's target is down, the survivor holds
        # the whole fleet and counts the two assets it took over.
        victim_target = f'instance="127.0.0.1:{ports[victim]}"'
        wait_for(lambda: value(f"up{{{victim_target}}}") == 0, 30)
        wait_for(lambda: held(survivor) == len(ASSETS), 30)
        gained = value('ironwatch_scoring_lease_changes_total{change="gained",'
                       f'instance="127.0.0.1:{ports[survivor]}"}}')
        assert gained is not None and gained >= len(ASSETS)

        def updated() -> bool:
            pump = [a for a in alerts() if a.asset_id == DEGRADING]
            return any(a.last_seen_at > killed_at for a in pump)
        wait_for(updated, 30)
        time.sleep(1.5)
        after = [(a.id, a.asset_id, a.failure_mode) for a in alerts()]
        orders_after = [(w.id, w.asset_id, w.failure_mode) for w in work_orders()]
    finally:
        prom.stop()
        gateways.close()
        engine.dispose()
    assert processes.procs[survivor].poll() is None, processes.log(survivor)
    assert taken_over_s <= LEASE_S + 5
    # The same alerts and work orders, updated by the survivor: none opened twice.
    assert after == before
    assert orders_after == orders_before
    assert len({(a, m) for _, a, m in after}) == len(after)
    # No scoring state in local files: it is all in PostgreSQL.
    assert not (tmp_path / "data" / "pipeline").exists()
    # The survivor loaded the taken-over machine from the database: commissioned once only.
    logs = processes.log(victim) + processes.log(survivor)
    assert sum(f"{DEGRADING}/de_radial" in line for line in logs.splitlines()
               if "commissioned" in line) == 1


def test_score_workers_n_starts_n_lease_holders_and_a_stop_gives_the_leases_back(
    processes: Processes, mosquitto: Mosquitto, postgres_url: str, tmp_path: Path,
) -> None:
    common = ("--data-dir", str(tmp_path / "data"), "--mqtt-port", str(mosquitto.port))
    # The ingestion worker migrates the database and registers the fleet.
    processes.spawn("ingest", "cloud", "ingest", *common)
    wait_for(lambda: "connected" in processes.log("ingest"), 30)
    metrics_port = free_port()
    supervisor = processes.spawn("score", "cloud", "score", "--workers", "2",
                                 "--metrics-port", str(metrics_port), *common)
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)

    def holders() -> dict[str, str | None]:
        with factory() as session:
            return {a: h for a, h in session.execute(
                select(ScoringAsset.asset_id, ScoringAsset.holder))}
    try:
        wait_for(lambda: len({h for h in holders().values() if h}) == 2
                 and None not in holders().values(), 60)
        # Each worker serves its own metrics, on the port given and the next one.
        for port in (metrics_port, metrics_port + 1):
            text = wait_for(partial(_metrics, port), 30)
            assert "ironwatch_scoring_rounds_total{outcome=\"completed\"}" in text
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 0, processes.log("score")
        # Each worker gave its leases back on the way out: the next one starts at once.
        assert set(holders().values()) == {None}
    finally:
        engine.dispose()


def test_serve_without_scoring_scores_nothing_until_a_score_worker_starts(
    processes: Processes, mosquitto: Mosquitto, postgres_url: str, tmp_path: Path,
) -> None:
    """`cloud serve --no-scoring` ingests a fleet with a failing machine and serves the API,
    but takes no lease, keeps no scoring state and raises no alert; a `cloud score`
    worker started beside it takes the fleet and raises the alert."""
    data = tmp_path / "data"
    common = ("--data-dir", str(data), "--mqtt-port", str(mosquitto.port))
    http = free_port()
    processes.env["IRONWATCH_CLOUD_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
    processes.spawn("serve", "cloud", "serve", "--no-scoring", "--port", str(http), *common)
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)

    def scoring_rows() -> tuple[int, int, int, int]:
        with factory() as session:
            return (len(session.scalars(select(Alert)).all()),
                    len(session.scalars(select(ScoringWorker)).all()),
                    len(session.scalars(select(ScoringAsset)
                                        .where(ScoringAsset.holder.is_not(None))).all()),
                    len(session.scalars(select(ScoringPoint)).all()))

    def stored() -> int:
        store = SqliteTelemetryStore(data / "telemetry.db")
        try:
            return len(store.query(asset_ids=list(ASSETS)))
        finally:
            store.close()

    gateways = SnapshotGateways(mosquitto.host, mosquitto.port, ("gw-a", "gw-b"))
    try:
        wait_for_port(http, timeout_s=60)
        wait_for(lambda: "connected" in processes.log("serve"), 30)
        gateways.publish(fleet_messages(ASSETS, (DEGRADING,), n_windows=60, commissioning=30,
                                        seed=3, epoch="00000000000e0c05"))
        wait_for(lambda: stored() == 60 * len(ASSETS), 30)
        # Six scoring intervals with every window stored: a scoring process would have
        # leased the fleet, saved its state and opened the alert by now.
        time.sleep(3.0)
        assert scoring_rows() == (0, 0, 0, 0), processes.log("serve")
        assert httpx.get(f"http://127.0.0.1:{http}/api/v1/health", timeout=5).status_code == 200

        processes.spawn("score", "cloud", "score", *common)
        alert = wait_for(
            lambda: next((a for a in alerts_of(factory) if a.asset_id == DEGRADING), None), 60)
        alerts, workers, held, points = scoring_rows()
        assert alerts == 1 and workers == 1 and held == len(ASSETS) and points == len(ASSETS)
        assert alert.failure_mode != "unknown_anomaly"  # diagnosed from the waveform
    finally:
        gateways.close()
        engine.dispose()
    assert processes.procs["serve"].poll() is None, processes.log("serve")


def alerts_of(factory: Callable[[], Session]) -> list[Alert]:
    with factory() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))
