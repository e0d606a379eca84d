"""The fleet publisher against a real Mosquitto: every counted record arrives, in order."""

from __future__ import annotations

import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ironwatch import wire
from ironwatch_app.local_servers import Mosquitto
from simulators.fleet import (
    SENSOR_RATES_HZ,
    FleetMachine,
    FleetPublisher,
    expected_records,
    make_fleet,
)
from simulators.spec import FaultMode


def test_make_fleet_is_varied_and_seeded() -> None:
    fleet = make_fleet(60, seed=4, healthy_fraction=0.3)
    assert len({s.machine_id for s in fleet}) == 60
    assert len({s.speed_rpm for s in fleet}) >= 3
    assert len({s.bearing for s in fleet}) >= 4
    faults = {s.fault for s in fleet}
    assert FaultMode.NONE in faults and len(faults) >= 5
    assert all(s.failure_h > s.onset_h for s in fleet)
    assert make_fleet(60, seed=4, healthy_fraction=0.3) == fleet
    assert make_fleet(60, seed=5, healthy_fraction=0.3) != fleet


def test_realistic_fleet_switches_the_tricks_on_and_keeps_the_physics() -> None:
    plain = make_fleet(60, seed=4, healthy_fraction=0.3)
    fleet = make_fleet(60, seed=4, healthy_fraction=0.3, realism=True)
    assert [s.fault for s in fleet] == [s.fault for s in plain]
    assert [s.speed_rpm for s in fleet] == [s.speed_rpm for s in plain]
    assert all(s.slip and s.band_limited and len(s.load_steps) == 1 for s in fleet)
    assert {s.sample_rate_hz for s in fleet} == set(SENSOR_RATES_HZ)
    multi = [s for s in fleet if s.points]
    assert 10 <= len(multi) <= 30
    assert all(len(s.points) == 4 and s.failing_bearing == s.bearing for s in multi)

    spec = next(s for s in multi if s.fault.is_bearing)
    machine = FleetMachine(spec)
    assert machine.points == spec.point_ids
    # Near failure the failing point reads highest; the others carry less of the fault.
    near_failure = spec.failure_h - 1.0
    truth = np.array([machine.machine.expected_velocity_rms_mms(near_failure)])[0]
    failing = spec.point_ids.index(spec.failing_point_id)
    assert int(np.argmax(truth)) == failing
    v = [machine.features(near_failure, i)["velocity_rms_mms"] or 0.0 for i in range(4)]
    assert max(range(4), key=lambda i: v[i]) == failing
    # The step changes the speed the machine reports.
    step = spec.load_steps[0]
    after = machine.features(step.at_h + 1.0)["speed_rpm"]
    assert after == pytest.approx(step.speed_rpm, rel=0.01)


@pytest.mark.integration
def test_fleet_delivers_exactly_the_counted_records(mosquitto: Mosquitto) -> None:
    received: list[wire.TelemetryMessage] = []
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        decoded = wire.decode(msg.topic, bytes(msg.payload))
        assert isinstance(decoded, wire.TelemetryMessage)
        with lock:
            received.append(decoded)

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-test-sub")
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect(mosquitto.host, mosquitto.port)
    sub.subscribe(wire.TELEMETRY_FILTER, qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(5.0)
        specs = make_fleet(24, seed=2)
        publisher = FleetPublisher(specs, host=mosquitto.host, port=mosquitto.port,
                                   gateways=3, rate_hz=4.0, batch_records=5)
        stats = publisher.run(duration_s=2.0)
        assert stats.records_produced == expected_records(24, 4.0, 2.0)
        assert stats.messages_acked == stats.messages_published
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            with lock:
                if sum(len(m.records) for m in received) >= stats.records_produced:
                    break
            time.sleep(0.05)
        time.sleep(0.2)  # nothing extra may arrive either
    finally:
        sub.disconnect()
        sub.loop_stop()

    assert sum(len(m.records) for m in received) == stats.records_produced
    by_gateway: dict[str, list[int]] = {}
    for message in received:
        by_gateway.setdefault(message.gateway_id, []).extend(r.seq for r in message.records)
    assert set(by_gateway) == set(publisher.gateway_ids)
    for gateway, seqs in by_gateway.items():
        # Per-gateway record seqs: 0, 1, 2, ... with no gap and no duplicate.
        assert sorted(seqs) == list(range(stats.per_gateway_records[gateway]))
    record = received[0].records[0]
    assert set(record.features) == {"velocity_rms_mms", "accel_rms_ms2", "temperature_c",
                                    "speed_rpm"}
