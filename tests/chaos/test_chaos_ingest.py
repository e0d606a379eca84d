"""Chaos: a simulated fleet through real edge agents into the cloud's ingestion, under faults.

Simulated Modbus machines -> `ironwatch edge run` per gateway (durable outbox) -> Mosquitto
with generated per-gateway ACLs -> `ironwatch cloud ingest` -> embedded telemetry store.
Faults, in order: the broker is down for 60 s; an edge agent is killed with SIGKILL
mid-stream and restarted; the ingestion process is killed with SIGKILL and restarted;
the broker is killed with SIGKILL while the ingestion process is down (what it queued
since its last autosave is gone; the gateways still hold it). At the end every record the
gateways produced (their outbox sequence counters) must be in the store exactly once.

A second run deletes a gateway's outbox (an SD-card swap): the new outbox has a new
epoch and numbers its records from 1 again, and those must be stored too.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tomli_w

from cloud.acl import BrokerAccount, generate_password, write_broker_auth
from cloud.ingest import IngestConfig, IngestionWorker, MemoryAssetRegistry
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.mqtt import BrokerSettings
from ironwatch_app.demo import DemoMachine
from ironwatch_app.local_servers import Mosquitto, free_port, stop_process, wait_for_port

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.slow]

BROKER_DOWN_S = 60.0
# Wide enough that a broker SIGKILL loses what it queued for the cloud in the meantime.
BROKER_AUTOSAVE_S = 30
REPORTING_S = 0.2
MACHINES = [
    DemoMachine("pump-01", "pump", "gw-a", "modbus", "none", 1480.0, seed=1),
    DemoMachine("fan-02", "fan", "gw-a", "modbus", "none", 990.0, seed=2, bearing="6206"),
    DemoMachine("motor-03", "motor", "gw-b", "modbus", "none", 2975.0, seed=3),
    DemoMachine("pump-04", "pump", "gw-c", "modbus", "outer_race", 1480.0, seed=4),
]
GATEWAYS = sorted({m.gateway_id for m in MACHINES})
CLIENT_ID = "chaos-ingest"


class _NullStore:
    """Never written to: the session-opening worker stops before anything arrives."""

    def close(self) -> None:
        return None


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ironwatch_app.cli", "--log-level", "INFO", *args]


class Fleet:
    """Starts and kills the processes of the chain; keeps their logs in the work dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.broker: Mosquitto | None = None
        self.modbus_ports: dict[str, int] = {}
        self.passwords = {g: generate_password() for g in GATEWAYS}
        self.cloud = BrokerAccount("ironwatch-cloud", generate_password())
        self.data_dir = workdir / "cloud-data"

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )

    def kill9(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self, name: str, timeout_s: float = 20.0) -> None:
        stop_process(self.procs.pop(name), timeout_s=timeout_s, group=True)

    def start_broker(self) -> None:
        files = write_broker_auth(self.workdir / "auth", self.passwords, [self.cloud])
        self.broker = Mosquitto(workdir=self.workdir / "mosquitto",
                                password_file=files.password_file, acl_file=files.acl_file,
                                cloud_password_file=files.cloud_password_file,
                                cloud_acl_file=files.cloud_acl_file,
                                autosave_interval_s=BROKER_AUTOSAVE_S)
        self.broker.start()

    def start_machines(self) -> None:
        for m in MACHINES:
            port = free_port()
            self.modbus_ports[m.machine_id] = port
            self.spawn(f"sim-{m.machine_id}", _cli(
                "sim", "modbus", "--tcp-port", str(port), "--host", "127.0.0.1",
                "--profile", "generic_vibration_transmitter", "--machine-id", m.machine_id,
                "--fault", m.fault, "--seed", str(m.seed), "--speed-rpm", str(m.speed_rpm),
                "--bearing", m.bearing, "--time-scale", "600",
            ))
        for port in self.modbus_ports.values():
            wait_for_port(port, timeout_s=60)

    def outbox(self, gateway_id: str) -> Path:
        return self.workdir / f"{gateway_id}-outbox.sqlite3"

    def start_gateway(self, gateway_id: str) -> None:
        assert self.broker is not None
        doc = {
            "gateway_id": gateway_id,
            "reporting_interval_s": REPORTING_S,
            "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "username": gateway_id,
                     "password": self.passwords[gateway_id], "status_interval_s": 5.0,
                     "reconnect_min_s": 0.5, "reconnect_max_s": 2.0,
                     "max_records_per_message": 50, "stored_ack_timeout_s": 10.0},
            "outbox": {"path": str(self.outbox(gateway_id))},
            "assets": [
                m.gateway_asset() for m in MACHINES if m.gateway_id == gateway_id
            ],
            "modbus": [
                {"transport": "tcp", "host": "127.0.0.1", "port": self.modbus_ports[m.machine_id],
                 "device_id": 1, "profile": "generic_vibration_transmitter",
                 "asset_id": m.machine_id, "point": "de_radial", "poll_interval_s": REPORTING_S}
                for m in MACHINES if m.gateway_id == gateway_id
            ],
        }
        path = self.workdir / f"{gateway_id}.toml"
        path.write_text(tomli_w.dumps(doc))
        self.spawn(f"edge-{gateway_id}", _cli("edge", "run", "--config", str(path)))

    def open_cloud_session(self) -> None:
        """Subscribe once as the cloud, as a deployment does before any gateway connects.

        The broker keeps messages for a session only once it exists; without this, what a
        gateway sends before the ingestion process first subscribes is never delivered.
        """
        assert self.broker is not None
        broker = BrokerSettings(host=self.broker.host, port=self.broker.cloud_port,
                                username=self.cloud.username, password=self.cloud.password)
        cfg = IngestConfig(broker=broker, client_id=CLIENT_ID)
        worker = IngestionWorker(cfg, _NullStore(), MemoryAssetRegistry())  # type: ignore[arg-type]
        worker.start()
        worker.stop()

    def start_ingest(self) -> None:
        assert self.broker is not None
        fleet = self.workdir / "fleet.toml"
        fleet.write_text(tomli_w.dumps({
            "gateways": [{"id": g, "name": g} for g in GATEWAYS],
            "assets": [
                m.fleet_asset() for m in MACHINES
            ],
        }))
        # A fixed client id: the restarted worker resumes the broker session of the old one.
        self.spawn("ingest", _cli(
            "cloud", "ingest", "--data-dir", str(self.data_dir), "--mqtt-host", "127.0.0.1",
            "--mqtt-port", str(self.broker.cloud_port), "--client-id", CLIENT_ID,
        ), env={
            "IRONWATCH_CLOUD_MQTT_USERNAME": self.cloud.username,
            "IRONWATCH_CLOUD_MQTT_PASSWORD": self.cloud.password,
            "IRONWATCH_CLOUD_FLEET_FILE": str(fleet),
        })

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name, timeout_s=5)
        if self.broker is not None:
            self.broker.close()


def produced(outbox: Path) -> tuple[int, int]:
    """(last sequence number assigned, records still queued) of a gateway's outbox."""
    db = sqlite3.connect(outbox, timeout=30)
    try:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        queued = db.execute("SELECT count(*) FROM records").fetchone()[0]
        dropped = db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        assert dropped is None or dropped[0] == 0, "the outbox dropped records"
        return (int(row[0]) if row else 0), int(queued)
    finally:
        db.close()


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Compress sorted ints into (first, last) runs for a readable failure message."""
    runs: list[tuple[int, int]] = []
    for s in seqs:
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(tmp_path)
    try:
        yield f
    finally:
        f.close()


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str, fleet: Fleet) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        fleet.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _say_from(t0: float) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {text}", flush=True)

    return say


def _start_fleet(fleet: Fleet) -> SqliteTelemetryStore:
    fleet.start_broker()
    fleet.open_cloud_session()
    fleet.start_machines()
    fleet.start_ingest()
    for g in GATEWAYS:
        fleet.start_gateway(g)
    db = fleet.data_dir / "telemetry.db"
    _wait(db.exists, 60, "the cloud's telemetry store", fleet)
    store = SqliteTelemetryStore(db)
    _wait(lambda: all(store.count(gateway_id=g) >= 10 for g in GATEWAYS), 90,
          "records from every gateway", fleet)
    return store


def _stop_and_check(
    fleet: Fleet, store: SqliteTelemetryStore, t0: float,
    earlier: dict[str, list[int]] | None = None,
) -> None:
    """Stop the gateways (they flush) and check that every record produced is stored once.

    `earlier` holds the seqs of outboxes a gateway had before its current one.
    """
    earlier = earlier or {}
    # Let the cloud catch up first: a stopping gateway waits only 5 s for its StoredAcks.
    _wait(lambda: all(len(earlier.get(g, [])) + produced(fleet.outbox(g))[0]
                      - store.count(gateway_id=g) < 20 for g in GATEWAYS),
          60, "the cloud to catch up", fleet)
    for g in GATEWAYS:
        fleet.stop(f"edge-{g}")
    counts = {g: produced(fleet.outbox(g)) for g in GATEWAYS}
    unsent = {g: q for g, (_, q) in counts.items() if q}
    assert not unsent, f"gateways stopped with records still queued: {unsent}"
    expected = {g: sorted(earlier.get(g, []) + list(range(1, last + 1)))
                for g, (last, _) in counts.items()}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
        store.count(gateway_id=g) < len(expected[g]) for g in GATEWAYS
    ):
        time.sleep(0.25)
    time.sleep(2)  # anything extra (a late duplicate) would show up now

    stored = {g: store.count(gateway_id=g) for g in GATEWAYS}
    frame = store.query()
    per_gateway_seqs = {g: sorted(frame.seqs[frame.gateway_ids == g].tolist())
                        for g in GATEWAYS}
    duplicates = store.duplicate_count()
    # Seqs repeat across outbox epochs: compare as multisets.
    lost = {g: sorted((Counter(expected[g]) - Counter(per_gateway_seqs[g])).elements())
            for g in GATEWAYS}
    print()
    print("gateway  produced  stored  lost")
    for g in GATEWAYS:
        print(f"{g:8s} {len(expected[g]):8d} {stored[g]:7d} {len(lost[g]):5d}")
    print(f"total    {sum(map(len, expected.values())):8d} {sum(stored.values()):7d}   "
          f"duplicates {duplicates}   run {time.monotonic() - t0:.0f} s")
    missing = {g: _ranges(lost[g]) for g in GATEWAYS}
    assert stored == {g: len(e) for g, e in expected.items()}, \
        f"missing seqs per gateway: {missing}"
    assert duplicates == 0
    for g in GATEWAYS:
        # The outbox numbers records 1, 2, 3, ...: every one of them arrived, once.
        assert per_gateway_seqs[g] == expected[g]


def test_chaos_broker_outage_edge_kill_and_ingest_kill_lose_and_double_nothing(
    fleet: Fleet,
) -> None:
    t0 = time.monotonic()
    say = _say_from(t0)
    store = _start_fleet(fleet)
    try:
        say(f"flowing: {store.count()} records stored")

        assert fleet.broker is not None
        fleet.broker.stop()
        say(f"broker stopped for {BROKER_DOWN_S:.0f} s")
        time.sleep(BROKER_DOWN_S)
        before = store.count()
        fleet.broker.start()
        say(f"broker back; {before} records stored so far")
        _wait(lambda: store.count() > before + 50, 90, "catch-up after the outage", fleet)

        victim = "gw-a"
        n = store.count(gateway_id=victim)
        fleet.kill9(f"edge-{victim}")
        say(f"edge agent {victim} killed with SIGKILL after {n} of its records were stored")
        time.sleep(2)
        fleet.start_gateway(victim)
        _wait(lambda: store.count(gateway_id=victim) > n + 20, 60, f"{victim} again", fleet)
        say(f"edge agent {victim} restarted and delivering")

        n = store.count()
        fleet.kill9("ingest")
        say(f"ingestion killed with SIGKILL at {n} records")
        time.sleep(3)
        fleet.start_ingest()
        _wait(lambda: store.count() > n + 50, 60, "ingestion again", fleet)
        say("ingestion restarted and storing")

        # The cloud is down, the broker queues for it, then the broker dies without saving.
        fleet.kill9("ingest")
        time.sleep(8)  # ~40 records per gateway taken by the broker, none stored
        n = store.count()
        fleet.broker.kill()
        say(f"broker killed with SIGKILL while ingestion was down, at {n} records")
        time.sleep(2)
        fleet.broker.start()
        fleet.start_ingest()
        _wait(lambda: store.count() > n + 100, 90, "ingestion after the broker crash", fleet)
        say("broker and ingestion back and storing")
        time.sleep(5)

        _stop_and_check(fleet, store, t0)
    finally:
        store.close()


def test_chaos_deleted_outbox_starts_a_new_epoch_that_is_stored(fleet: Fleet) -> None:
    t0 = time.monotonic()
    say = _say_from(t0)
    store = _start_fleet(fleet)
    try:
        victim = "gw-b"
        fleet.stop(f"edge-{victim}")
        old_last, queued = produced(fleet.outbox(victim))
        assert queued == 0, "a clean stop leaves nothing unconfirmed while the cloud runs"
        _wait(lambda: store.count(gateway_id=victim) >= old_last, 30,
              f"{victim}'s records stored", fleet)
        for path in fleet.workdir.glob(f"{fleet.outbox(victim).name}*"):
            path.unlink()  # the SD card is swapped: a new, empty outbox with a new epoch
        say(f"{victim}'s outbox deleted after {old_last} records")
        fleet.start_gateway(victim)

        def new_records() -> int:
            if not fleet.outbox(victim).exists():
                return 0
            try:
                return produced(fleet.outbox(victim))[0]
            except sqlite3.Error:
                return 0  # the agent is still creating it

        _wait(lambda: new_records() >= 30, 60, f"{victim} producing again", fleet)
        say(f"{victim} runs on a new outbox")
        time.sleep(3)
        _stop_and_check(fleet, store, t0, earlier={victim: list(range(1, old_last + 1))})
    finally:
        store.close()
