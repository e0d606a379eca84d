"""A pinned sensor swapped for another on the same port: reported, and not taken as the asset.

The simulated firmware on a real socat pty says Hello with its model and serial number, as
the firmware does at boot (and here every half second).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge_agent.agent import EdgeAgent
from edge_agent.config import load_config
from edge_agent.outbox import OutboxQueue
from ironwatch_app.local_servers import Mosquitto, PtyPair
from simulators import Machine, MachineSpec
from simulators.serial_device import MODEL, SerialDevice

from .conftest import gateway_toml, wait_until

pytestmark = pytest.mark.integration


def _device(machine_id: str, port: str) -> tuple[SerialDevice, threading.Thread]:
    spec = MachineSpec(machine_id=machine_id, seed=3)
    device = SerialDevice(Machine(spec, sample_rate_hz=8_192.0, channels=1), port,
                          device_id=7, block_size=512, hello_period_s=0.5)
    thread = threading.Thread(target=device.run, daemon=True)
    thread.start()
    return device, thread


def test_another_sensor_on_a_pinned_port_is_reported_not_ingested(
    mosquitto: Mosquitto, pty_pair: PtyPair, tmp_path: Path
) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        gateway_toml(gateway_id="gw-pin", broker_port=mosquitto.port, outbox=tmp_path / "o.db",
                     serial_port=pty_pair.b, interval_s=0.3)
        .replace("window_samples = 2048",
                 f'window_samples = 2048\nidentity = {{ model = "{MODEL}", '
                 f'serial_number = "SIM-pump-01" }}')
    )
    agent = EdgeAgent(load_config(path))
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    device, thread = _device("pump-01", pty_pair.a)  # the sensor the gateway was set up with
    try:
        assert wait_until(lambda: agent.counters()["windows"] >= 3, timeout_s=20)
        assert agent.counters()["identity_mismatches"] == 0
        # Someone swaps the sensor: another one answers on the same port.
        device.stop()
        thread.join(5)
        windows = agent.counters()["windows"]
        device, thread = _device("fan-09", pty_pair.a)
        assert wait_until(lambda: agent.counters()["identity_mismatches"] >= 1, timeout_s=10)
        assert wait_until(lambda: agent.counters()["unverified_frames"] >= 20, timeout_s=10)
        last_seq = agent.outbox.last_seq
        assert wait_until(lambda: agent.outbox.last_seq >= last_seq + 3, timeout_s=10)
        # Every window since the swap came from the other sensor: none was computed.
        assert agent.counters()["windows"] - windows <= 1  # one may have been in progress
        problem = agent.serial[0].identity_problem
        assert problem is not None and "SIM-fan-09" in problem
        status = agent.status("online")
        assert status.counters["identity_mismatches"] >= 1
    finally:
        device.stop()
        thread.join(5)
        stop.set()
        runner.join(20)
    # The records made after the swap carry nothing of the other machine: the point has no
    # fresh window, so it repeats the pinned sensor's last values marked stale (nulls after
    # max_stale_s).
    with OutboxQueue(tmp_path / "o.db") as outbox:
        after = [r.fields() for r in outbox.peek(after_seq=last_seq, limit=1000)]
    assert len(after) >= 3
    assert all(r["stale"] for r in after)
