"""`ironwatch edge run` as a separate process, fed by a real pty and a real Modbus TCP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_bridge import Quantity, ScalarReading, encode
from firmware_bridge.modbus_profile import DeviceProfile
from firmware_bridge.modbus_sim import ProfileServer
from ironwatch_app.local_servers import Mosquitto, PtyPair, free_port, stop_process

from .conftest import Listener, gateway_toml, sine_block, wait_until

pytestmark = pytest.mark.integration

GW = "gw-proc"


class SensorWriter:
    """Writes firmware frames into the pty like a sensor would, about real time."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
        self.stop = threading.Event()
        self.seq = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        block = 512
        while not self.stop.is_set():
            os.write(self.fd, encode(sine_block(7, self.seq, self.seq * block, n=block)))
            self.seq += 1
            if self.seq % 10 == 0:
                os.write(self.fd, encode(ScalarReading(7, self.seq, self.seq,
                                                       Quantity.TEMPERATURE_C, 48.5)))
                self.seq += 1
                # Garbage on the line, as a loose connector makes: counted, then resynced.
                os.write(self.fd, b"\x13\x37garbage\x00")
            time.sleep(block / 12_800)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        os.close(self.fd)


@pytest.fixture
def modbus_server() -> Iterator[ProfileServer]:
    profile = DeviceProfile.load("generic_vibration_transmitter")
    server = ProfileServer({1: profile}, transport="tcp", port=free_port(),
                           values={1: {"velocity_rms_mms": 3.5, "temperature_c": 61.2}})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ironwatch_app.cli", "edge", "run", "--config", str(config)],
            stdout=out, stderr=out, start_new_session=True,
        )


def test_edge_run_process_serial_and_modbus(
    mosquitto: Mosquitto, pty_pair: PtyPair, modbus_server: ProfileServer, tmp_path: Path,
    listener_factory: Callable[..., Listener],
) -> None:
    extra_asset = f"""
[[assets]]
asset_id = "motor-03"
speed_rpm = 2975
points = ["de"]

[[modbus]]
transport = "tcp"
host = "127.0.0.1"
port = {modbus_server.port}
device_id = 1
profile = "generic_vibration_transmitter"
asset_id = "motor-03"
point = "de"
poll_interval_s = 0.2
"""
    config = tmp_path / "gw.toml"
    config.write_text(gateway_toml(gateway_id=GW, broker_port=mosquitto.port,
                                   outbox=tmp_path / "ob.db", serial_port=pty_pair.b,
                                   interval_s=0.5) + extra_asset)
    check = subprocess.run([sys.executable, "-m", "ironwatch_app.cli", "edge", "check-config",
                            str(config)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    assert "modbus tcp" in check.stdout

    listener = listener_factory(mosquitto.port)
    log = tmp_path / "agent.log"
    agent = _start_agent(config, log)
    writer = SensorWriter(pty_pair.a)
    try:
        def pump_records() -> list[dict[str, object]]:
            return [r for r in listener.records() if r["asset_id"] == "pump-01"]

        def motor_records() -> list[dict[str, object]]:
            return [r for r in listener.records() if r["asset_id"] == "motor-03"]

        assert wait_until(lambda: len(pump_records()) >= 3 and len(motor_records()) >= 2,
                          timeout_s=20), log.read_text()[-3000:]
        pump = pump_records()[-1]["features"]
        assert isinstance(pump, dict)
        assert pump["velocity_rms_mms"] == pytest.approx(9.1, rel=0.1)
        assert pump["temperature_c"] == 48.5
        motor = motor_records()[-1]
        assert motor["features"] == pytest.approx(
            {"velocity_rms_mms": 3.5, "temperature_c": 61.2, "accel_rms_ms2": 0.0,
             "accel_peak_ms2": 0.0}, abs=0.01)
        assert wait_until(lambda: any(s["counters"].get("decode_errors", 0) > 0
                                      for s in listener.of_type("status")))

        # kill -9: the broker publishes the retained last will; no seq is reused afterwards.
        last_seen = max(r["seq"] for r in listener.records())
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait(10)
        assert wait_until(lambda: listener.of_type("status")[-1]["state"] == "offline")
        late = listener_factory(mosquitto.port)
        assert wait_until(lambda: bool(late.retained_status()))
        assert late.retained_status()[0]["state"] == "offline"
        before = len(listener.records())
        agent = _start_agent(config, log)
        assert wait_until(lambda: len(listener.records()) >= before + 3, timeout_s=20)
        new = [r["seq"] for r in listener.records()[before:]]
        # Records stored but unacknowledged at the kill come again (same seq); new ones are higher.
        assert all(s > last_seen for s in new if s not in {r["seq"] for r in
                                                            listener.records()[:before]})
        # SIGTERM: flush, 'offline' status, exit 0.
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(20) == 0, log.read_text()[-3000:]
        assert listener.of_type("status")[-1]["state"] == "offline"
        assert "records produced=" in log.read_text()
    finally:
        writer.close()
        stop_process(agent, group=True)
