"""A Modbus device that dies for longer than max_stale_s: last values flagged stale, then nulls.

Against a real pymodbus TCP server and the real poller; only the clock of the test is short.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from edge_agent.acquisition import ModbusCoordinator, PointTable
from edge_agent.acquisition.modbus import ModbusReader
from edge_agent.config import ModbusSourceConfig
from edge_agent.outbox import PendingRecord
from firmware_bridge.modbus_poller import ModbusPoller
from firmware_bridge.modbus_profile import DeviceProfile
from firmware_bridge.modbus_sim import ProfileServer
from ironwatch_app.local_servers import free_port

pytestmark = pytest.mark.integration

PROFILE = "generic_vibration_transmitter"
KEY = ("pump-01", "de")
MAX_STALE_S = 1.0
# Read every second; the profile polls temperature only every 5 s.
FAST = ("velocity_rms_mms", "accel_rms_ms2", "accel_peak_ms2")
BEFORE = {"velocity_rms_mms": 2.5, "accel_rms_ms2": 4.0, "accel_peak_ms2": 11.0,
          "temperature_c": 41.5}
AFTER = {"velocity_rms_mms": 3.25, "accel_rms_ms2": 5.0, "accel_peak_ms2": 12.0,
         "temperature_c": 42.0}


@pytest.fixture
def server() -> Iterator[ProfileServer]:
    s = ProfileServer({1: DeviceProfile.load(PROFILE)}, transport="tcp", port=free_port(),
                      values={1: BEFORE}).start()
    yield s
    s.stop()


def _coordinator(server: ProfileServer, table: PointTable) -> ModbusCoordinator:
    source = ModbusSourceConfig(host=server.host, port=server.port, profile=PROFILE,
                                asset_id=KEY[0], point=KEY[1])

    def reader(src: ModbusSourceConfig) -> ModbusReader:
        # The real poller, with timeouts and backoff short enough for a test.
        return ModbusPoller(DeviceProfile.load(src.profile), transport="tcp", host=src.host,
                            port=src.port or 502, timeout_s=0.2, retries=0,
                            reconnect_backoff_s=(0.1, 0.2))

    return ModbusCoordinator(source, table, reader_factory=reader, interval_s=0.1)


def _report(coord: ModbusCoordinator, table: PointTable) -> PendingRecord:
    coord.poll_once()
    (record,) = table.collect(0.1)
    return record


def test_dead_device_reports_stale_then_null_then_real_values_again(
    server: ProfileServer,
) -> None:
    table = PointTable([KEY], max_stale_s=MAX_STALE_S)
    coord = _coordinator(server, table)
    try:
        first = _report(coord, table)
        assert not first.stale
        assert first.features == pytest.approx(BEFORE)

        server.stop()
        died = time.monotonic()
        # A value read less than its poll interval ago is still current: the device's death
        # shows at the next read that is due, within a second here.
        stale_at: float | None = None
        seen: list[tuple[float, PendingRecord]] = []
        while stale_at is None or time.monotonic() - stale_at < MAX_STALE_S + 0.5:
            record = _report(coord, table)
            if record.stale and stale_at is None:
                stale_at = time.monotonic()
            if stale_at is not None:
                seen.append((time.monotonic() - stale_at, record))
            assert time.monotonic() - died < 10, "the dead device never showed as stale"
            time.sleep(0.1)
        assert stale_at is not None and stale_at - died < 2.0
        # From then on every record is stale ...
        assert all(r.stale for _, r in seen)
        # ... carrying the last good value while it is young (never an invented one) ...
        early = [r for t, r in seen if t < MAX_STALE_S * 0.5]
        assert early
        for r in early:
            for name in FAST:
                assert r.features[name] == pytest.approx(BEFORE[name])
        # ... and null once it has been stale for longer than max_stale_s.
        late = [r for t, r in seen if t > MAX_STALE_S + 0.2]
        assert late
        for r in late:
            assert all(r.features[name] is None for name in FAST), r.features
        assert coord.counters.stale_values > 0

        server.set_values(1, AFTER)
        server.start()
        deadline = time.monotonic() + 10
        back = _report(coord, table)
        while back.stale and time.monotonic() < deadline:
            time.sleep(0.1)
            back = _report(coord, table)
        assert not back.stale
        for name in FAST:
            assert back.features[name] == pytest.approx(AFTER[name])
    finally:
        coord.stop()
