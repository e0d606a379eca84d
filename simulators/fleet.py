"""A fleet of simulated machines publishing feature records straight to MQTT, for load tests.

No waveforms: each record's features come from the machine's calibrated physics
(`Machine.expected_velocity_rms_mms`, `expected_accel_rms_ms2`, the thermal model) with a
little measurement noise, so thousands of machines fit on one core. A realistic fleet
(``make_fleet(realistic=True)``) adds the simulator's realism: slip, band-limited sensors at
12/20/25.6 kHz, a load step per machine, and shafts with four measurement points (one record
per point, the failing bearing's vibration attenuated at the others). Messages follow
`ironwatch.wire` exactly: `TelemetryMessage` batches per gateway, record seqs increasing per
gateway, QoS 1. `FleetStats.records_produced` is the ground-truth count to compare the
cloud's ingested total with.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from pydantic import SecretStr

from ironwatch import wire
from ironwatch.mqtt import BrokerSettings, Will, build_client
from simulators.baseline import MACHINE_KINDS, with_baseline
from simulators.machine import Machine
from simulators.spec import BEARINGS, FaultMode, LoadStep, MachineSpec, PointSpec

__all__ = [
    "FleetMachine",
    "FleetPublisher",
    "FleetStats",
    "expected_records",
    "make_fleet",
    "realistic",
]

_log = logging.getLogger(__name__)

_SPEEDS_RPM = (990.0, 1480.0, 1780.0, 2970.0, 3560.0)
# Medium (ISO 10816-3 group 2) and large (group 1, above 300 kW) machines.
_RATED_POWERS_KW = (5.5, 15.0, 55.0, 250.0, 400.0, 1200.0)
_FAULTS = tuple(m for m in FaultMode if m is not FaultMode.NONE)
_AGE_GRID = 400  # points of the per-machine velocity/accel lookup over its life
POINT = "de_radial_h"
SENSOR_RATES_HZ = (12_000.0, 20_000.0, 25_600.0)
MULTI_POINT_SHARE = 1.0 / 3.0
SHAFT_POINTS = ("nde_motor", "de_motor", "de_load", "nde_load")


def realistic(spec: MachineSpec, rng: np.random.Generator, *, end_h: float) -> MachineSpec:
    """The spec with reality's tricks switched on, drawn from ``rng``.

    Slip (a seeded defect factor), a band-limited sensor at 12, 20 or 25.6 kHz, one load step
    between start and ``end_h`` (speed 80-100 %, load 40-100 %), and on a third of the
    machines four measurement points with the failing bearing at a random one of them.
    """
    names = sorted(BEARINGS)
    at_h = float(rng.uniform(spec.start_age_h, end_h))
    step = LoadStep(at_h=at_h, speed_rpm=spec.speed_rpm * float(rng.uniform(0.8, 1.0)),
                    load_pct=float(rng.uniform(40.0, 100.0)))
    changes: dict[str, object] = {
        "slip": True, "band_limited": True,
        "sample_rate_hz": float(rng.choice(SENSOR_RATES_HZ)), "load_steps": (step,),
    }
    if rng.random() < MULTI_POINT_SHARE:
        points = [PointSpec(p, BEARINGS[names[int(rng.integers(len(names)))]])
                  for p in SHAFT_POINTS]
        failing = int(rng.integers(len(points)))
        # The spec's own bearing is the failing one, so its defect lines stay the same.
        points[failing] = PointSpec(SHAFT_POINTS[failing], spec.bearing)
        changes |= {"points": tuple(points), "failing_point": SHAFT_POINTS[failing]}
    return spec.with_(**changes)


def make_fleet(
    n: int, *, seed: int = 0, time_scale: float = 3600.0, healthy_fraction: float = 0.5,
    realism: bool = False,
) -> list[MachineSpec]:
    """N varied machine specs from a seed: speeds, loads, bearings, ISO classes, faults.

    ``realism`` switches reality's tricks on (see `realistic`); the physics drawn otherwise
    is the same as without it.
    """
    if n < 1:
        raise ValueError(f"a fleet needs at least one machine, got {n}")
    rng = np.random.default_rng(seed)
    tricks = np.random.default_rng([seed, 1])
    kinds = np.random.default_rng([seed, 2])
    bearings = sorted(BEARINGS)
    specs = []
    for i in range(n):
        healthy = rng.random() < healthy_fraction
        fault = FaultMode.NONE if healthy else _FAULTS[int(rng.integers(len(_FAULTS)))]
        start = float(rng.uniform(0.0, 2000.0))
        onset = start + float(rng.uniform(0.0, 500.0))
        life = float(rng.uniform(150.0, 1500.0))
        specs.append(MachineSpec(
            machine_id=f"m{seed:x}-{i:05d}",
            speed_rpm=float(rng.choice(_SPEEDS_RPM)),
            load_pct=float(rng.uniform(40.0, 100.0)),
            bearing=BEARINGS[bearings[int(rng.integers(len(bearings)))]],
            # Drawn to keep the stream; the ISO group follows from the rated power below.
            iso_group=int(rng.integers(1, 3)),
            foundation="rigid" if rng.random() < 0.7 else "flexible",
            rated_power_kw=float(rng.choice(_RATED_POWERS_KW)),
            ambient_c=float(rng.uniform(15.0, 35.0)),
            fault=fault,
            onset_h=onset,
            failure_h=onset + life,
            start_age_h=start,
            time_scale=time_scale,
            seed=int(rng.integers(2**31)),
            healthy_severity=float(rng.uniform(0.35, 0.8)),  # replaced by the baseline below
        ))
        # Group, healthy vibration and temperature rise from kind, power and speed.
        kind = MACHINE_KINDS[int(kinds.integers(len(MACHINE_KINDS)))]
        specs[-1] = with_baseline(specs[-1], kind)
        if realism:
            specs[-1] = realistic(specs[-1], tricks, end_h=onset + life)
    return specs


class FleetMachine:
    """A machine reduced to its feature trajectory: lookups over age, plus noise.

    One record stream per measurement point: the radial channel of a one-point machine, or
    each point of a multi-point shaft.
    """

    def __init__(self, spec: MachineSpec) -> None:
        # A low sample rate is enough: only the calibration is used, never a waveform.
        channels = len(spec.points) or 1
        self.machine = Machine(spec, sample_rate_hz=8192.0, channels=channels)
        self.spec = spec
        self.points: tuple[str, ...] = spec.point_ids if spec.points else (POINT,)
        end = max(spec.failure_h * 1.1, spec.start_age_h + 1.0)
        self._ages = np.linspace(spec.start_age_h, end, _AGE_GRID)
        # A load step is a jump: put grid points on both sides of it.
        steps = [s.at_h for s in spec.load_steps if spec.start_age_h < s.at_h < end]
        if steps:
            self._ages = np.unique(np.concatenate(
                [self._ages, steps, np.nextafter(np.array(steps), -np.inf)]))
        self._velocity = self.machine.expected_velocity_rms_mms(self._ages)
        self._accel = self.machine.expected_accel_rms_ms2(self._ages)
        self._rng = np.random.default_rng(spec.seed ^ 0x5EED)

    def features(self, age_h: float, point: int = 0) -> dict[str, float | None]:
        """One record's features at an age, for the point at index ``point``."""
        noise = self._rng.normal(0.0, 1.0, 3)
        scalars = self.machine.scalars(age_h)
        return {
            "velocity_rms_mms": float(np.interp(age_h, self._ages, self._velocity[:, point]))
            * (1.0 + 0.03 * float(noise[0])),
            "accel_rms_ms2": float(np.interp(age_h, self._ages, self._accel[:, point]))
            * (1.0 + 0.03 * float(noise[1])),
            "temperature_c": scalars["temperature_c"],
            "speed_rpm": scalars["speed_rpm"],
        }


@dataclass
class FleetStats:
    """Ground-truth counts of a fleet run."""

    records_produced: int = 0
    messages_published: int = 0
    messages_acked: int = 0
    publish_errors: int = 0
    elapsed_s: float = 0.0
    per_gateway_records: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FleetPublisher:
    """Publishes each machine's features ``rate_hz`` times per second, spread over gateways."""

    def __init__(
        self,
        specs: list[MachineSpec],
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        gateways: int = 1,
        rate_hz: float = 1.0,
        batch_records: int = 100,
        username: str | None = None,
        password: str | None = None,
        gateway_prefix: str = "simgw",
        first_seq: int = 0,
    ) -> None:
        if gateways < 1 or rate_hz <= 0 or not 1 <= batch_records <= wire.MAX_RECORDS_PER_MESSAGE:
            raise ValueError("need gateways >= 1, rate_hz > 0, 1 <= batch_records <= 5000")
        self.machines = [FleetMachine(s) for s in specs]
        self.gateway_ids = [f"{gateway_prefix}-{g:03d}" for g in range(gateways)]
        # Machines are dealt to gateways round-robin.
        self.assignment = {
            gw: self.machines[g::gateways] for g, gw in enumerate(self.gateway_ids)
        }
        self.broker = BrokerSettings(
            host=host, port=port, protocol="3.1.1",
            username=username or None,
            password=SecretStr(password) if username and password is not None else None,
        )
        self.rate_hz = rate_hz
        self.batch_records = batch_records
        self.stats = FleetStats(per_gateway_records={gw: 0 for gw in self.gateway_ids})
        self._seq = dict.fromkeys(self.gateway_ids, first_seq)
        self._epoch = {gw: wire.new_epoch() for gw in self.gateway_ids}
        self._clients: dict[str, mqtt.Client] = {}
        self._lock = threading.Lock()
        # (client, mid) of telemetry messages awaiting their ack, and acks that came first.
        self._pending: set[tuple[int, int]] = set()
        self._early: set[tuple[int, int]] = set()

    # -- MQTT ---------------------------------------------------------------------------

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any
    ) -> None:
        del userdata, rc, props
        key = (id(client), mid)
        with self._lock:
            if key in self._pending:
                self._pending.discard(key)
                self.stats.messages_acked += 1
            else:
                self._early.add(key)  # acked before run() recorded it as sent

    def _connect(self) -> None:
        for gw in self.gateway_ids:
            status = wire.GatewayStatus(
                gateway_id=gw, seq=self._seq[gw], sent_at=wire.utc_now(), state="offline",
                software_version="ironwatch-sim",
            )
            will = Will(wire.status_topic(gw), wire.encode(status), qos=1, retain=True)
            client = build_client(self.broker, client_id=gw, clean_start=False, will=will,
                                  max_inflight_messages=200)
            client.on_publish = self._on_publish
            client.reconnect()
            client.loop_start()
            self._clients[gw] = client
            online = status.model_copy(update={"state": "online", "assets": [
                m.spec.machine_id for m in self.assignment[gw]]})
            info = client.publish(wire.status_topic(gw), wire.encode(online), qos=1, retain=True)
            info.wait_for_publish(10.0)
        with self._lock:
            # Status acks are not telemetry; forget them before telemetry mids start.
            self._early.clear()

    def _disconnect(self) -> None:
        for client in self._clients.values():
            client.disconnect()
            client.loop_stop()
        self._clients.clear()

    # -- records ------------------------------------------------------------------------

    def _publish_tick(self, elapsed_s: float) -> None:
        now = wire.utc_now()
        window_s = 1.0 / self.rate_hz
        for gw, machines in self.assignment.items():
            records = []
            for m in machines:
                age = m.spec.start_age_h + m.spec.time_scale * elapsed_s / 3600.0
                for i, point in enumerate(m.points):
                    seq = self._seq[gw]
                    self._seq[gw] = seq + 1
                    records.append(wire.FeatureRecord(
                        seq=seq, asset_id=m.spec.machine_id, point=point, ts=now,
                        window_s=window_s, features=m.features(age, i),
                    ))
            for i in range(0, len(records), self.batch_records):
                batch = records[i : i + self.batch_records]
                msg = wire.TelemetryMessage(
                    gateway_id=gw, epoch=self._epoch[gw], seq=batch[0].seq, sent_at=now,
                    records=batch,
                )
                client = self._clients[gw]
                info = client.publish(wire.telemetry_topic(gw), wire.encode(msg), qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    # Never connected or queue refused: these records were not sent.
                    self.stats.publish_errors += 1
                    continue
                key = (id(client), info.mid)
                with self._lock:
                    if key in self._early:
                        self._early.discard(key)
                        self.stats.messages_acked += 1
                    else:
                        self._pending.add(key)
                self.stats.messages_published += 1
                self.stats.records_produced += len(batch)
                self.stats.per_gateway_records[gw] += len(batch)

    def run(
        self, stop: threading.Event | None = None, duration_s: float | None = None
    ) -> FleetStats:
        """Publish until stopped or for ``duration_s``; waits for every QoS 1 ack at the end."""
        stop = stop or threading.Event()
        # A duration fixes the number of ticks, so the count is exact even if ticks run late.
        n_ticks = None if duration_s is None else math.ceil(duration_s * self.rate_hz)
        self._connect()
        start = time.monotonic()
        ticks = 0
        try:
            while not stop.is_set() and (n_ticks is None or ticks < n_ticks):
                self._publish_tick(ticks / self.rate_hz)
                ticks += 1
                if n_ticks is not None and ticks >= n_ticks:
                    break
                stop.wait(max(0.0, start + ticks / self.rate_hz - time.monotonic()))
            self._wait_acks(timeout_s=10.0)
        finally:
            self.stats.elapsed_s = time.monotonic() - start
            self._disconnect()
        return self.stats

    def _wait_acks(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                done = self.stats.messages_acked >= self.stats.messages_published
            if done:
                return
            time.sleep(0.02)
        _log.warning("fleet: %d of %d messages unacknowledged",
                     self.stats.messages_published - self.stats.messages_acked,
                     self.stats.messages_published)


def expected_records(machines: int, rate_hz: float, duration_s: float) -> int:
    """How many records a run of ``duration_s`` produces (one tick at 0 s, then every 1/rate).

    ``machines`` counts record streams: a multi-point machine is one per point.
    """
    return machines * math.ceil(duration_s * rate_hz)
