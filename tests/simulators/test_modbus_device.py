"""The simulated Modbus devices over real TCP and RTU (socat pty), read with plain pymodbus."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.framer import FramerType

from firmware_bridge.modbus_profile import DeviceProfile, Table
from ironwatch_app.local_servers import PtyPair, free_port, wait_for_port
from simulators import Machine, MachineSpec
from simulators.modbus_device import ModbusDevice

pytestmark = pytest.mark.integration

SPEC = MachineSpec(machine_id="pump-3", seed=13, iso_group=2, foundation="rigid")


def read_profile(client: Any, profile: DeviceProfile, unit: int) -> dict[str, float]:
    """Every value of a profile, read block by block as a gateway would."""
    values: dict[str, float] = {}
    for block in profile.read_blocks():
        read = {
            Table.INPUT: client.read_input_registers,
            Table.HOLDING: client.read_holding_registers,
            Table.DISCRETE: client.read_discrete_inputs,
            Table.COIL: client.read_coils,
        }[block.table]
        rr = read(block.start, count=block.count, device_id=unit)
        assert not rr.isError(), (block, rr)
        words = rr.bits[: block.count] if block.table.is_bits else rr.registers
        values.update(profile.decode(block.table, block.start, words))
    return values


def tolerance(profile: DeviceProfile, key: str) -> float:
    spec = profile.register(key)
    return abs(spec.scale) / 2 + 1e-6 if spec.dtype.value != "float32" else 1e-5


@pytest.fixture
def running() -> Iterator[list[tuple[ModbusDevice, threading.Thread]]]:
    started: list[tuple[ModbusDevice, threading.Thread]] = []
    yield started
    for device, thread in started:
        device.stop()
        thread.join(10.0)


def start(
    device: ModbusDevice,
    running: list[tuple[ModbusDevice, threading.Thread]],
    tcp_port: int | None = None,
) -> None:
    thread = threading.Thread(target=device.run, daemon=True)
    thread.start()
    running.append((device, thread))
    deadline = time.monotonic() + 10.0
    while device.stats.updates == 0 or device.server._server is None:
        assert time.monotonic() < deadline, "device did not start"
        time.sleep(0.02)
    if tcp_port is not None:
        # The server object exists before its socket listens.
        wait_for_port(tcp_port, timeout_s=10.0)


@pytest.mark.parametrize("profile_name", ["generic_vibration_transmitter", "motor_drive"])
def test_tcp_device_serves_the_profile_values(
    profile_name: str, running: list[tuple[ModbusDevice, threading.Thread]]
) -> None:
    profile = DeviceProfile.load(profile_name)
    port = free_port()
    # A long period keeps the registers still while the test reads them.
    device = ModbusDevice(Machine(SPEC, channels=1), profile, transport="tcp", port=port,
                          unit_id=5, update_period_s=60.0)
    start(device, running, tcp_port=port)
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
    assert client.connect()
    try:
        got = read_profile(client, profile, unit=5)
    finally:
        client.close()
    sent = device.stats.last_values
    assert sent is not None and set(got) == set(profile.keys)
    for key in profile.keys:
        assert got[key] == pytest.approx(sent[key], abs=tolerance(profile, key)), key
    if profile_name == "generic_vibration_transmitter":
        # Computed on the device from its own waveform: healthy, so ISO zone B, no alarm bits.
        assert 0.9 * 1.4 < got["velocity_rms_mms"] < 2.8
        assert got["status_word"] == 0
        assert 0.5 < got["accel_rms_ms2"] < 3.0
    else:
        assert got["speed_rpm"] == pytest.approx(SPEC.speed_rpm, rel=0.003)  # 0.05 % noise
        assert got["power_kw"] == pytest.approx(SPEC.rated_power_kw * 0.75, rel=0.02)
        if "running" in got:
            assert got["running"] == 1.0


def test_rtu_device_on_a_pty(
    pty_pair: PtyPair, running: list[tuple[ModbusDevice, threading.Thread]]
) -> None:
    profile = DeviceProfile.load("generic_vibration_transmitter")
    failing = SPEC.with_(fault="imbalance", onset_h=0, failure_h=10, start_age_h=10)
    device = ModbusDevice(Machine(failing, channels=1), profile, transport="rtu",
                          serial_port=pty_pair.a, baudrate=115_200, unit_id=2,
                          update_period_s=60.0)
    start(device, running)
    client = ModbusSerialClient(pty_pair.b, framer=FramerType.RTU, baudrate=115_200, timeout=2)
    assert client.connect()
    try:
        got = read_profile(client, profile, unit=2)
    finally:
        client.close()
    sent = device.stats.last_values
    assert sent is not None
    assert got["velocity_rms_mms"] == pytest.approx(sent["velocity_rms_mms"], rel=1e-6)
    # At its failure time the machine is in zone D: both the warning and alarm bits are set.
    assert got["velocity_rms_mms"] > 4.5
    assert int(got["status_word"]) & 0b1100 == 0b1100


def test_cli_modbus_serves_and_exits_zero_on_sigterm() -> None:
    import signal
    import subprocess
    import sys

    from ironwatch_app.local_servers import wait_for_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ironwatch_app.cli", "sim", "modbus", "--tcp-port", str(port),
         "--profile", "generic_vibration_transmitter", "--fault", "none", "--seed", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout_s=30)
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
        assert client.connect()
        try:
            got = read_profile(client, DeviceProfile.load("generic_vibration_transmitter"), 1)
        finally:
            client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err.decode()
    assert 1.4 * 0.5 < got["velocity_rms_mms"] < 2.8
