"""ModbusPoller against real pymodbus servers: TCP on a free port, RTU over a socat pty pair."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from firmware_bridge.modbus_poller import ModbusPoller
from firmware_bridge.modbus_profile import DeviceProfile
from firmware_bridge.modbus_sim import ProfileServer
from ironwatch_app.local_servers import PtyPair, free_port

DRIVE_VALUES = {
    "speed_rpm": 1480.0,
    "current_a": 12.3,
    "power_kw": 5.51,
    "temperature_c": 41.2,
    "energy_kwh": 12345.6,
    "fault_code": 0.0,
    "running": 1.0,
}


class FakeClock:
    """Monotonic time that tests move by hand, to drive poll intervals and backoff."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def drive() -> DeviceProfile:
    return DeviceProfile.load("motor_drive")


@pytest.fixture
def tcp_server(drive: DeviceProfile) -> Iterator[ProfileServer]:
    server = ProfileServer(
        {1: drive}, transport="tcp", port=free_port(), values={1: DRIVE_VALUES}
    ).start()
    try:
        yield server
    finally:
        server.stop()


def _assert_values(result_values: dict[str, float], expected: dict[str, float]) -> None:
    for key, value in expected.items():
        assert result_values[key] == pytest.approx(value, abs=1e-9), key


def test_rejects_bad_configuration(drive: DeviceProfile) -> None:
    with pytest.raises(ValueError, match="host"):
        ModbusPoller(drive, transport="tcp")
    with pytest.raises(ValueError, match="serial_port"):
        ModbusPoller(drive, transport="rtu")
    with pytest.raises(ValueError, match="device_id"):
        ModbusPoller(drive, transport="tcp", host="127.0.0.1", device_id=300)


@pytest.mark.integration
def test_tcp_values_round_trip(drive: DeviceProfile, tcp_server: ProfileServer) -> None:
    with ModbusPoller(drive, transport="tcp", host="127.0.0.1", port=tcp_server.port) as poller:
        result = poller.poll()
        assert result.ok
        _assert_values({k: r.value for k, r in result.values.items()}, DRIVE_VALUES)
        assert result.values["speed_rpm"].unit == "rpm"
        assert result.values["temperature_c"].unit == "°C"
        assert not any(r.stale for r in result.values.values())
        assert result.values["speed_rpm"].ts.tzinfo is not None
        tcp_server.set_values(1, {"speed_rpm": -750.0, "running": 0.0})
        time.sleep(1.05)  # speed_rpm polls every 1 s
        again = poller.poll()
        assert again.values["speed_rpm"].value == -750.0
        assert again.values["running"].value == 0.0
        assert poller.stats.polls_ok == 2


@pytest.mark.integration
def test_poll_intervals_decide_what_is_read(tcp_server: ProfileServer) -> None:
    profile = DeviceProfile.from_toml(
        """
        [[register]]
        key = "speed_rpm"
        address = 100
        table = "holding"
        dtype = "int16"
        unit = "rpm"
        poll_interval_s = 1

        [[register]]
        key = "fault_code"
        address = 120
        table = "holding"
        dtype = "uint16"
        unit = ""
        poll_interval_s = 60
        """
    )
    clock = FakeClock()
    poller = ModbusPoller(
        profile, transport="tcp", host="127.0.0.1", port=tcp_server.port, clock=clock
    )
    with poller:
        first = poller.poll()
        tcp_server.set_values(1, {"speed_rpm": 900.0, "fault_code": 7.0})
        clock.now += 1.0
        second = poller.poll()
        assert second.values["speed_rpm"].value == 900.0
        assert second.values["fault_code"] == first.values["fault_code"]  # not due: same reading
        clock.now += 60.0
        assert poller.poll().values["fault_code"].value == 7.0


@pytest.mark.integration
def test_stopped_server_gives_stale_values_then_recovers(
    drive: DeviceProfile, tcp_server: ProfileServer
) -> None:
    clock = FakeClock()
    poller = ModbusPoller(
        drive,
        transport="tcp",
        host="127.0.0.1",
        port=tcp_server.port,
        timeout_s=0.3,
        retries=1,
        reconnect_backoff_s=(5.0, 20.0),
        clock=clock,
    )
    with poller:
        good = poller.poll()
        assert good.ok

        tcp_server.stop()
        clock.now += 1.0
        down = poller.poll()
        assert not down.ok
        assert {e.kind for e in down.errors} <= {"connection_error", "timeout"}
        for key, reading in down.values.items():
            assert reading.stale, key
            assert reading.value == good.values[key].value  # the last good value, not invented
            assert reading.ts == good.values[key].ts  # with its old timestamp
        assert poller.stats.connection_errors + poller.stats.timeouts >= 1

        clock.now += 1.0  # inside the 5 s backoff: no I/O, still stale
        waiting = poller.poll()
        assert [e.kind for e in waiting.errors] == ["unavailable"]
        assert all(r.stale for r in waiting.values.values())

        tcp_server.set_values(1, {"speed_rpm": 1200.0})
        tcp_server.start()
        clock.now += 5.0
        back = poller.poll()
        assert back.ok, back.errors
        assert back.values["speed_rpm"].value == 1200.0
        assert not any(r.stale for r in back.values.values())
        assert back.values["speed_rpm"].ts > good.values["speed_rpm"].ts
        stats = poller.stats
        assert (stats.polls_ok, stats.polls_failed) == (2, 2)


@pytest.mark.integration
def test_exception_response_is_counted(tcp_server: ProfileServer) -> None:
    # The server serves motor_drive; this profile also asks for an address it does not map.
    profile = DeviceProfile.from_toml(
        """
        [[register]]
        key = "speed_rpm"
        address = 100
        table = "holding"
        dtype = "int16"
        unit = "rpm"

        [[register]]
        key = "bearing_temperature_c"
        address = 300
        table = "holding"
        dtype = "int16"
        unit = "°C"
        """
    )
    with ModbusPoller(profile, transport="tcp", host="127.0.0.1", port=tcp_server.port) as poller:
        result = poller.poll()
        assert [e.kind for e in result.errors] == ["exception_response"]
        assert "exception code 2" in result.errors[0].message  # ILLEGAL DATA ADDRESS
        assert result.values["speed_rpm"].value == 1480.0
        assert "bearing_temperature_c" not in result.values  # never read: nothing to show
        stats = poller.stats
        assert (stats.exception_responses, stats.timeouts, stats.connection_errors) == (1, 0, 0)


@pytest.mark.integration
def test_rtu_over_a_pty_pair(drive: DeviceProfile, pty_pair: PtyPair) -> None:
    vib = DeviceProfile.load("generic_vibration_transmitter")
    vib_values = {
        "velocity_rms_mms": 4.5,
        "accel_rms_ms2": 9.75,
        "accel_peak_ms2": 31.4,
        "temperature_c": 38.5,
        "status_word": 5.0,
    }
    # Two devices on one RS-485 line, as on a real bus.
    server = ProfileServer(
        {1: drive, 7: vib},
        transport="rtu",
        serial_port=pty_pair.a,
        values={1: DRIVE_VALUES, 7: vib_values},
    ).start()
    clock = FakeClock()
    try:
        common = {"transport": "rtu", "serial_port": pty_pair.b, "timeout_s": 0.3, "retries": 1}
        with (
            ModbusPoller(vib, device_id=7, clock=clock, **common) as vib_poller,  # type: ignore[arg-type]
            ModbusPoller(drive, device_id=1, **common) as drive_poller,  # type: ignore[arg-type]
        ):
            result = vib_poller.poll()
            assert result.ok, result.errors
            _assert_values({k: r.value for k, r in result.values.items()}, vib_values)
            vib_poller.close()  # one serial client on the line at a time
            drive_result = drive_poller.poll()
            assert drive_result.ok, drive_result.errors
            _assert_values({k: r.value for k, r in drive_result.values.items()}, DRIVE_VALUES)
            drive_poller.close()

            server.stop()  # the device goes silent: RTU has no connection, only timeouts
            clock.now += 10.0
            dead = vib_poller.poll()
            assert [e.kind for e in dead.errors] == ["timeout"]
            assert all(r.stale for r in dead.values.values())
            assert vib_poller.stats.timeouts == 2  # first try and one retry

            server.set_values(7, {"velocity_rms_mms": 7.25})
            server.start()  # the transmitter comes back on the same line
            clock.now += 60.0  # past the reconnect backoff
            back = vib_poller.poll()
            assert back.ok, back.errors
            assert back.values["velocity_rms_mms"].value == 7.25
            assert not any(r.stale for r in back.values.values())
    finally:
        server.stop()
