"""Acquisition logic without ports: windows, the point table, serial and Modbus coordinators."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from edge_agent.acquisition import (
    ModbusCoordinator,
    PointTable,
    RawWindow,
    SerialCoordinator,
    WindowAssembler,
)
from edge_agent.acquisition.modbus import feature_name
from edge_agent.config import AssetConfig, ModbusSourceConfig, SerialSourceConfig
from firmware_bridge import Hello, Quantity, ScalarReading

from .conftest import SAMPLE_RATE_HZ, sine_block

KEY = ("pump-01", "de")


def test_windows_are_contiguous_and_split_across_blocks() -> None:
    asm = WindowAssembler(1000)
    windows = []
    for i in range(5):
        windows += asm.feed(sine_block(1, i, i * 512, n=512))
    assert len(windows) == 2  # 2560 samples -> two windows of 1000, 560 pending
    assert windows[0].samples_ms2.shape == (1, 1000)
    assert windows[1].first_sample_index == 1000
    assert windows[0].duration_s == pytest.approx(1000 / SAMPLE_RATE_HZ)
    assert asm.gaps == 0


def test_sample_index_gap_drops_the_partial_window() -> None:
    asm = WindowAssembler(1024)
    assert asm.feed(sine_block(1, 0, 0, n=512)) == []
    # Block with first_sample_index 512 was lost: the half window is dropped and counted.
    assert asm.feed(sine_block(1, 2, 1024, n=512)) == []
    out = asm.feed(sine_block(1, 3, 1536, n=512))
    assert asm.gaps == 1
    assert len(out) == 1 and out[0].first_sample_index == 1024


def test_values_are_scaled_to_ms2() -> None:
    asm = WindowAssembler(512)
    (window,) = asm.feed(sine_block(1, 0, 0, n=512, amplitude_ms2=3.0))
    assert np.max(np.abs(window.samples_ms2)) == pytest.approx(3.0, abs=0.3)


def _raw() -> RawWindow:
    return RawWindow(np.zeros(8, dtype=np.float32), 1000.0, datetime.now(UTC), None)


def test_point_table_averages_windows_and_marks_stale() -> None:
    table = PointTable([KEY, ("pump-01", "nde")], max_stale_s=0.2)
    table.add_window(KEY, {"velocity_rms_mms": 2.0, "kurtosis": math.nan}, 0.5, _raw())
    table.add_window(KEY, {"velocity_rms_mms": 4.0, "kurtosis": math.nan}, 0.5, _raw())
    table.add_temperature(KEY, 40.0)
    table.add_temperature(KEY, 42.0)
    table.set_scalars(KEY, {"speed_rpm": 1470.0})
    (record,) = table.collect(1.0)  # "nde" never had data: no record, nothing invented
    assert record.features["velocity_rms_mms"] == 3.0
    assert record.features["kurtosis"] is None
    assert record.features["temperature_c"] == 41.0
    assert record.features["temperature_max_c"] == 42.0
    assert record.features["speed_rpm"] == 1470.0
    assert record.window_s == 1.0 and not record.stale
    # Nothing new: the last good values again, flagged stale.
    (again,) = table.collect(1.0)
    assert again.stale and again.features["velocity_rms_mms"] == 3.0
    import time

    time.sleep(0.25)
    (old,) = table.collect(1.0)
    assert old.stale and set(old.features.values()) == {None}


def _serial_source() -> SerialSourceConfig:
    return SerialSourceConfig.model_validate(
        {"port": "/dev/null", "device_id": 7, "window_samples": 2048,
         "channels": [{"channel": 0, "asset_id": "pump-01", "point": "de"}]}
    )


_ASSET = AssetConfig(asset_id="pump-01", speed_rpm=1480, points=[
    {"id": "de", "bearing": {"n_balls": 9, "ball_diameter_mm": 7.94, "pitch_diameter_mm": 39.04}}])


def test_serial_coordinator_computes_features_with_measured_speed() -> None:
    table = PointTable([KEY])
    coord = SerialCoordinator(_serial_source(), {"pump-01": _ASSET}, table)
    coord.handle(Hello(7, 0, "1.0", "IW-1", "SN1", 1, SAMPLE_RATE_HZ))
    # The shaft turns at 1200 rpm (20 Hz), not the nominal 1480: order 1x must find it.
    coord.handle(ScalarReading(7, 1, 0, Quantity.SPEED_RPM, 1200.0))
    coord.handle(ScalarReading(7, 2, 0, Quantity.TEMPERATURE_C, 55.0))
    coord.handle(ScalarReading(7, 3, 0, Quantity.PRESSURE_KPA, 250.0))
    coord.handle(ScalarReading(99, 0, 0, Quantity.TEMPERATURE_C, 99.0))  # another device
    for i in range(8):
        coord.handle(sine_block(7, 4 + i, i * 512, freq_hz=20.0, amplitude_ms2=2.0))
    assert coord.counters.windows == 2
    assert coord.counters.foreign_frames == 1
    (record,) = table.collect(1.0)
    f = record.features
    assert f["order_1x_ms2"] == pytest.approx(2.0, rel=0.1)
    assert f["speed_rpm"] == 1200.0
    assert f["temperature_c"] == 55.0
    assert f["pressure_bar"] == pytest.approx(2.5)
    assert f["velocity_rms_mms"] == pytest.approx(2.0 / (2 * math.pi * 20) / math.sqrt(2) * 1000,
                                                  rel=0.1)
    raw = table.raw_window(KEY)
    assert raw is not None and raw.samples_ms2.shape == (2048,) and raw.speed_rpm == 1200.0


def test_serial_coordinator_counts_gaps() -> None:
    table = PointTable([KEY])
    coord = SerialCoordinator(_serial_source(), {"pump-01": _ASSET}, table)
    coord.handle(sine_block(7, 0, 0))
    coord.handle(sine_block(7, 1, 4096))
    assert coord.counters.window_gaps == 1


@dataclass
class _Reading:
    value: float
    stale: bool = False


@dataclass
class _Result:
    values: dict[str, _Reading]
    errors: tuple[str, ...] = ()


class _FakeReader:
    def __init__(self, results: list[Any]) -> None:
        self.results = results

    def poll(self) -> Any:
        item = self.results.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        pass


def _modbus_source(**kw: Any) -> ModbusSourceConfig:
    return ModbusSourceConfig(host="127.0.0.1", profile="generic_vibration_transmitter",
                              asset_id="pump-01", point="de", **kw)


def test_modbus_coordinator_maps_and_flags_stale() -> None:
    table = PointTable([KEY])
    reader = _FakeReader([
        _Result({"velocity_rms_mms": _Reading(2.5), "temperature_c": _Reading(40.0),
                 "status_word": _Reading(1.0), "oil_kpa": _Reading(300.0)}),
        _Result({"velocity_rms_mms": _Reading(2.5, stale=True)}, errors=("timeout",)),
        OSError("connection refused"),
    ])
    coord = ModbusCoordinator(_modbus_source(), table, reader_factory=lambda _s: reader,
                              interval_s=0.1)
    assert coord.poll_once()
    (record,) = table.collect(1.0)
    assert record.features == {"velocity_rms_mms": 2.5, "temperature_c": 40.0,
                               "oil_bar": 3.0}
    assert not record.stale
    assert coord.counters.unmapped == 1  # status_word has no unit
    assert coord.poll_once()
    (record,) = table.collect(1.0)
    assert record.stale and record.features["velocity_rms_mms"] == 2.5
    assert coord.counters.poll_failures == 1 and coord.counters.stale_values == 1
    assert not coord.poll_once()
    assert coord.counters.poll_failures == 2


def test_feature_name_mapping() -> None:
    assert feature_name("velocity_rms_mms", {}) == ("velocity_rms_mms", 1.0)
    assert feature_name("vel", {"vel": "velocity_rms_mms"}) == ("velocity_rms_mms", 1.0)
    assert feature_name("status_word", {}) is None
    assert feature_name("energy_kwh", {}) is None


def test_scalars_wait_for_the_window_then_go_stale() -> None:
    table = PointTable([KEY], max_stale_s=60)
    table.add_window(KEY, {"velocity_rms_mms": 2.0}, 1.0, _raw())
    table.add_temperature(KEY, 40.0)
    (first,) = table.collect(1.0)
    assert first.features["velocity_rms_mms"] == 2.0 and not first.stale
    # A temperature reading but no window yet: wait (up to two intervals) for the window.
    table.add_temperature(KEY, 41.0)
    assert table.collect(1.0) == []
    table.add_window(KEY, {"velocity_rms_mms": 4.0}, 1.0, _raw())
    (second,) = table.collect(1.0)
    assert second.features == pytest.approx({"velocity_rms_mms": 4.0, "temperature_c": 41.0,
                                             "temperature_max_c": 41.0,
                                             "temperature_slope_c_per_h": None})
    assert not second.stale
    # The accelerometer died, temperature goes on: after the wait, last vibration as stale.
    for _ in range(2):
        table.add_temperature(KEY, 42.0)
        assert table.collect(1.0) == []
    table.add_temperature(KEY, 43.0)
    (third,) = table.collect(1.0)
    assert third.stale and third.features["velocity_rms_mms"] == 4.0
    assert third.features["temperature_max_c"] == 43.0
    # The final flush sends no record without a window.
    table.add_temperature(KEY, 44.0)
    assert table.collect(1.0, repeat_stale=False) == []


def test_serial_coordinator_survives_a_failing_window(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_agent.acquisition.serial as serial_mod

    from .conftest import FakeSerial, wait_until

    def broken(*_a: object, **_k: object) -> dict[str, np.ndarray]:
        raise RuntimeError("simulated numerical failure")

    monkeypatch.setattr(serial_mod, "extract_features", broken)
    table = PointTable([KEY])
    coord = SerialCoordinator(_serial_source(), {"pump-01": _ASSET}, table,
                              transport_factory=lambda _s: FakeSerial())
    coord.start()
    try:
        assert wait_until(lambda: coord.counters.feature_errors >= 2, timeout_s=5)
        assert coord._thread is not None and coord._thread.is_alive()
    finally:
        coord.stop()


def test_each_point_uses_the_bearing_under_it() -> None:
    asset = AssetConfig(asset_id="pump-01", speed_rpm=1480, points=[
        {"id": "de", "bearing": {"n_balls": 9, "ball_diameter_mm": 7.94,
                                 "pitch_diameter_mm": 39.04}},
        "nde",  # no bearing geometry known here
    ])
    source = SerialSourceConfig(port="/dev/null", device_id=7, window_samples=2048, channels=[
        {"channel": 0, "asset_id": "pump-01", "point": "de"},
        {"channel": 1, "asset_id": "pump-01", "point": "nde"},
    ])
    table = PointTable([("pump-01", "de"), ("pump-01", "nde")])
    coord = SerialCoordinator(source, {"pump-01": asset}, table)
    for i in range(4):
        coord.handle(sine_block(7, i, i * 512, channels=2))
    assert coord.counters.windows == 1 and coord.counters.feature_errors == 0
    by_point = {r.point: r.features for r in table.collect(1.0)}
    assert by_point["de"]["env_bpfo_ms2"] is not None
    assert by_point["nde"]["env_bpfo_ms2"] is None
    assert all(by_point[p]["order_1x_ms2"] is not None for p in ("de", "nde"))


def _pinned_source(identity: dict[str, str]) -> SerialSourceConfig:
    return SerialSourceConfig.model_validate(
        {"port": "/dev/null", "device_id": 7, "window_samples": 2048, "identity": identity,
         "channels": [{"channel": 0, "asset_id": "pump-01", "point": "de"}]}
    )


def test_pinned_identity_takes_data_only_from_the_pinned_sensor() -> None:
    table = PointTable([KEY])
    source = _pinned_source({"model": "IW-1", "serial_number": "SN1"})
    coord = SerialCoordinator(source, {"pump-01": _ASSET}, table)
    blocks = iter(sine_block(7, i, i * 512) for i in range(100))
    # Before any Hello the device is unknown: nothing is taken.
    for _ in range(4):
        coord.handle(next(blocks))
    assert coord.counters.windows == 0 and coord.counters.unverified_frames == 4
    # Another sensor (same device id, other serial number) says Hello: reported, not taken.
    coord.handle(Hello(7, 0, "1.0", "IW-1", "SN2", 1, SAMPLE_RATE_HZ))
    coord.handle(ScalarReading(7, 1, 0, Quantity.TEMPERATURE_C, 99.0))
    for _ in range(8):
        coord.handle(next(blocks))
    assert coord.counters.identity_mismatches == 1 and coord.counters.windows == 0
    assert coord.counters.unverified_frames == 4 + 9
    assert coord.identity_problem is not None and "'SN2'" in coord.identity_problem
    assert table.collect(1.0) == []  # nothing of it reached the asset's point
    # The pinned sensor: its data is the asset's.
    coord.handle(Hello(7, 2, "1.0", "IW-1", "SN1", 1, SAMPLE_RATE_HZ))
    for _ in range(8):
        coord.handle(next(blocks))
    assert coord.counters.windows == 2 and coord.identity_problem is None
    assert coord.counters.unverified_frames == 13


def test_identity_needs_model_or_serial() -> None:
    with pytest.raises(ValueError, match="at least one"):
        _pinned_source({})
