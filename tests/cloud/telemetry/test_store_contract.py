"""The TelemetryStore contract, run against every backend (the servers ones are integration)."""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cloud.ingest._fastwire import decode_telemetry
from cloud.telemetry import (
    FeatureFrame,
    InfluxStore,
    RecordGroup,
    SqliteTelemetryStore,
    TelemetryStore,
    VictoriaMetricsStore,
    WriteResult,
)
from ironwatch.wire import FeatureRecord, TelemetryMessage, WaveformSnapshot, encode
from ironwatch_app.local_servers import InfluxD, VictoriaMetrics

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def rec(seq: int, asset: str = "a1", point: str = "de", **features: float | None) -> FeatureRecord:
    return FeatureRecord(
        seq=seq, asset_id=asset, point=point, ts=T0 + timedelta(seconds=seq), window_s=2.0,
        features=features or {"accel_rms_ms2": seq * 0.5, "temperature_c": 40.0 + seq},
    )


@pytest.fixture(scope="module")
def influxd() -> Iterator[InfluxD]:
    with InfluxD() as server:
        yield server


@pytest.fixture(scope="module")
def victoria() -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics() as server:
        yield server


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("influxdb-1.6", marks=pytest.mark.integration),
        pytest.param("victoria-metrics", marks=pytest.mark.integration),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TelemetryStore]:
    s: TelemetryStore
    if request.param == "sqlite":
        s = SqliteTelemetryStore(tmp_path / "t.db")
    elif request.param == "influxdb-1.6":
        server: InfluxD = request.getfixturevalue("influxd")
        # A fresh database per test keeps tests independent on a shared server.
        db = f"t{uuid.uuid4().hex[:12]}"
        server.query(f'CREATE DATABASE "{db}"')
        s = InfluxStore(server.url, database=db, snapshot_dir=tmp_path / "snap")
    else:
        vm: VictoriaMetrics = request.getfixturevalue("victoria")
        vm.stop()  # a clean data directory per test: VictoriaMetrics has no databases
        shutil.rmtree(vm.workdir / "data", ignore_errors=True)  # type: ignore[operator]
        vm.start()
        s = VictoriaMetricsStore(vm.url, snapshot_dir=tmp_path / "snap")
    yield s
    s.close()


def test_is_a_telemetry_store(store: TelemetryStore) -> None:
    assert isinstance(store, TelemetryStore)


def test_write_is_idempotent_on_gateway_and_seq(store: TelemetryStore) -> None:
    records = [rec(i) for i in range(10)]
    assert store.write("gw-1", records) == 10
    assert store.write("gw-1", [*records[5:], rec(10)]) == 1
    assert store.write("gw-2", records[:3]) == 3  # same seq, other gateway: distinct
    assert store.count() == 14
    assert store.count(gateway_id="gw-1") == 11
    assert store.count(asset_id="a1", gateway_id="gw-2") == 3
    assert store.duplicate_count() == 0


def test_query_returns_columns_with_nan_for_missing(store: TelemetryStore) -> None:
    store.write("gw-1", [rec(1, velocity_rms_mms=2.5), rec(2, temperature_c=None, kurtosis=3.0)])
    frame = store.query()
    assert isinstance(frame, FeatureFrame)
    # temperature_c only ever null: not a column by default, NaN when asked for.
    assert frame.feature_names == ("kurtosis", "velocity_rms_mms")
    assert frame.seqs.tolist() == [1, 2]
    assert frame.gateway_ids.tolist() == ["gw-1", "gw-1"]
    assert frame.asset_ids.tolist() == ["a1", "a1"] and frame.points.tolist() == ["de", "de"]
    assert frame.ts_s.tolist() == [(T0 + timedelta(seconds=s)).timestamp() for s in (1, 2)]
    np.testing.assert_array_equal(frame.column("velocity_rms_mms"), [2.5, np.nan])
    np.testing.assert_array_equal(frame.column("kurtosis"), [np.nan, 3.0])
    assert np.isnan(frame.column("temperature_c")).all()
    assert np.isnan(frame.column("not_there_c")).all()
    assert frame.window_s.tolist() == [2.0, 2.0] and not frame.stale.any()


def test_query_filters_time_assets_point_features_limit(store: TelemetryStore) -> None:
    store.write("gw-1", [rec(i, asset=f"a{i % 3}", point="de" if i % 2 else "nde")
                         for i in range(30)])
    f = store.query(asset_ids=["a0", "a2"], point="de")
    assert set(f.asset_ids.tolist()) == {"a0", "a2"} and set(f.points.tolist()) == {"de"}
    assert len(f) == 10
    f = store.query(start=T0 + timedelta(seconds=10), end=T0 + timedelta(seconds=20))
    assert f.seqs.tolist() == list(range(10, 20))  # [start, end)
    f = store.query(start=(T0 + timedelta(seconds=25)).timestamp())  # epoch seconds work too
    assert f.seqs.tolist() == list(range(25, 30))
    f = store.query(features=["temperature_c", "speed_rpm"], limit=3)
    assert f.feature_names == ("temperature_c", "speed_rpm") and f.values.shape == (3, 2)
    assert f.column("temperature_c").tolist() == [40.0, 41.0, 42.0]
    assert math.isnan(f.values[0, 1])
    assert len(store.query(asset_ids=["nope"])) == 0
    assert store.query(asset_ids=["nope"], features=["kurtosis"]).values.shape == (0, 1)


def test_snapshots_latest_per_asset_and_point(store: TelemetryStore) -> None:
    def snap(seq: int, point: str, second: int) -> WaveformSnapshot:
        return WaveformSnapshot(
            gateway_id="gw-1", seq=seq, sent_at=T0, asset_id="a1", point=point,
            ts=T0 + timedelta(seconds=second), sample_rate_hz=1000.0,
            samples_f32le_b64=WaveformSnapshot.pack(np.arange(8) * seq),
        )

    assert store.latest_snapshot("a1") is None
    assert store.save_snapshot(snap(1, "de", 5)) is True
    assert store.save_snapshot(snap(1, "de", 5)) is False
    store.save_snapshot(snap(2, "nde", 9))
    store.save_snapshot(snap(3, "de", 7))
    latest = store.latest_snapshot("a1")
    assert latest is not None and latest.seq == 2
    latest_de = store.latest_snapshot("a1", "de")
    assert latest_de is not None and latest_de.seq == 3
    np.testing.assert_array_equal(latest_de.samples(), np.arange(8) * 3)


def test_epochs_are_separate_and_conflicts_are_refused(store: TelemetryStore) -> None:
    old = [rec(i) for i in range(5)]
    assert store.write_records("gw-1", "aaaaaaaa", old).new == 5
    # A reinstalled gateway: seqs restart under a new epoch and are new records.
    again = [rec(i, velocity_rms_mms=1.0 + i) for i in range(3)]
    assert store.write_records("gw-1", "bbbbbbbb", again).new == 3
    assert store.count(gateway_id="gw-1") == 8
    # Same key, same content: a duplicate; same key, other content: a conflict, not written.
    changed = rec(2, accel_rms_ms2=99.0, temperature_c=42.0)
    result = store.write_records("gw-1", "aaaaaaaa", [rec(1), changed, rec(5)])
    assert (result.new, result.duplicates, result.conflicts) == (1, 1, (2,))
    frame = store.query(asset_ids=["a1"], features=["accel_rms_ms2"])
    assert 99.0 not in frame.column("accel_rms_ms2")
    assert store.count() == 9 and store.duplicate_count() == 0


def test_two_assets_snapshots_from_one_gateway_are_both_kept(store: TelemetryStore) -> None:
    """A gateway stamps every snapshot with its outbox's last seq: the seq is no key."""

    def snap(asset: str, second: int, snapshot_id: str | None, scale: float) -> WaveformSnapshot:
        return WaveformSnapshot(
            gateway_id="gw-1", seq=41, sent_at=T0, asset_id=asset, point="de",
            ts=T0 + timedelta(seconds=second), sample_rate_hz=1000.0,
            samples_f32le_b64=WaveformSnapshot.pack(np.arange(8) * scale),
            snapshot_id=snapshot_id,
        )

    pump = snap("pump-01", 5, WaveformSnapshot.window_id("de", T0 + timedelta(seconds=5)), 1.0)
    fan = snap("fan-02", 5, WaveformSnapshot.window_id("de", T0 + timedelta(seconds=5)), 2.0)
    assert store.save_snapshot(pump) is True
    assert store.save_snapshot(fan) is True
    # The same window sent again (a QoS 1 redelivery, a second request) is kept once.
    assert store.save_snapshot(pump) is False
    # Without an id (an older gateway) the point and capture time key it.
    older = snap("fan-02", 9, None, 3.0)
    assert store.save_snapshot(older) is True and store.save_snapshot(older) is False
    kept_pump = store.latest_snapshot("pump-01", "de")
    kept_fan = store.latest_snapshot("fan-02")
    assert kept_pump is not None and kept_fan is not None
    np.testing.assert_array_equal(kept_pump.samples(), np.arange(8) * 1.0)
    np.testing.assert_array_equal(kept_fan.samples(), np.arange(8) * 3.0)
    assert kept_fan.key == older.key


def test_write_batch_stores_several_gateway_epochs_in_one_call(store: TelemetryStore) -> None:
    results = store.write_batch([
        RecordGroup("gw-1", "aaaaaaaa", [rec(i) for i in range(5)]),
        RecordGroup("gw-2", "aaaaaaaa", [rec(i, asset="a2") for i in range(3)]),
        RecordGroup("gw-1", "bbbbbbbb", [rec(i) for i in range(2)]),
        RecordGroup("gw-3", "aaaaaaaa", []),
    ])
    assert [r.new for r in results] == [5, 3, 2, 0]
    assert store.count(gateway_id="gw-1") == 7 and store.count(gateway_id="gw-2") == 3
    assert store.duplicate_count() == 0


def test_write_batch_sorts_out_repeats_and_conflicts(store: TelemetryStore) -> None:
    store.write_records("gw-1", "aaaaaaaa", [rec(i) for i in range(3)])
    changed = rec(1, accel_rms_ms2=99.0)
    results = store.write_batch([
        RecordGroup("gw-1", "aaaaaaaa", [rec(0), changed, rec(3)]),  # a redelivery, mixed
        RecordGroup("gw-2", "aaaaaaaa", [rec(7), rec(7)]),  # a repeat inside the batch
    ])
    assert results[0] == WriteResult(new=1, duplicates=1, conflicts=(1,))
    assert results[1] == WriteResult(new=1, duplicates=1)
    assert store.count() == 5 and store.duplicate_count() == 0
    kept = store.query(asset_ids=["a1"], features=["accel_rms_ms2"])
    assert kept.values[list(kept.seqs).index(1), 0] == 0.5  # the first copy stays


def test_write_batch_tells_each_group_what_its_own_gateway_epoch_holds(
    store: TelemetryStore,
) -> None:
    """Many groups, stored rows in several of them: each group's repeats and conflicts are
    its own (InfluxDB looks all groups up in one request; the answers must not cross)."""
    for g in range(4):
        store.write_records(f"gw-{g}", "aaaaaaaa", [rec(i, asset=f"a{g}") for i in range(g + 1)])
    store.write_records("gw-0", "", [rec(5, asset="a0")])  # the legacy epoch
    results = store.write_batch([
        RecordGroup("gw-0", "aaaaaaaa", [rec(0, asset="a0"), rec(9, asset="a0")]),
        RecordGroup("gw-9", "aaaaaaaa", []),
        RecordGroup("gw-1", "bbbbbbbb", [rec(0, asset="a1"), rec(1, asset="a1")]),  # new epoch
        RecordGroup("gw-2", "aaaaaaaa", [rec(1, asset="a2"), rec(2, asset="a2", x_ms2=1.0)]),
        RecordGroup("gw-3", "aaaaaaaa", [rec(i, asset="a3") for i in range(6)]),
        RecordGroup("gw-0", "", [rec(5, asset="a0"), rec(0, asset="a0")]),
        RecordGroup("gw-4", "aaaaaaaa", [rec(0, asset="a4")]),  # gw-0..3 have seq 0, not it
    ])
    assert results == [
        WriteResult(new=1, duplicates=1),
        WriteResult(),
        WriteResult(new=2),
        WriteResult(new=0, duplicates=1, conflicts=(2,)),
        WriteResult(new=2, duplicates=4),
        WriteResult(new=1, duplicates=1),
        WriteResult(new=1),
    ]
    assert store.count() == 11 + 7 and store.duplicate_count() == 0


def test_write_batch_with_an_old_replay_beside_live_groups(store: TelemetryStore) -> None:
    """A gateway replaying a day-old outbox in the same batch as live ones: every group's
    repeats are found in its own span (VictoriaMetrics exports the two apart)."""
    day = timedelta(days=1)

    def old(seq: int, accel_rms_ms2: float | None = None) -> FeatureRecord:
        r = rec(seq, asset="old") if accel_rms_ms2 is None else rec(
            seq, asset="old", accel_rms_ms2=accel_rms_ms2)
        return r.model_copy(update={"ts": T0 - day + timedelta(seconds=seq)})

    store.write_records("gw-old", "aaaaaaaa", [old(i) for i in range(3)])
    store.write_records("gw-live", "aaaaaaaa", [rec(0), rec(1)])
    results = store.write_batch([
        RecordGroup("gw-live", "aaaaaaaa", [rec(1), rec(2)]),
        RecordGroup("gw-old", "aaaaaaaa", [old(0), old(1, accel_rms_ms2=7.0), old(3)]),
        RecordGroup("gw-new", "aaaaaaaa", [rec(0, asset="n")]),
    ])
    assert results == [WriteResult(new=1, duplicates=1),
                       WriteResult(new=1, duplicates=1, conflicts=(1,)),
                       WriteResult(new=1)]
    assert store.count() == 5 + 3 and store.duplicate_count() == 0


def test_records_decoded_by_the_fast_path_are_stored_like_the_contracts(
    store: TelemetryStore,
) -> None:
    records = [rec(i, temperature_c=None, accel_rms_ms2=1.5 * i) for i in range(4)]
    message = TelemetryMessage(gateway_id="gw-1", epoch="aaaaaaaa", seq=0,
                               sent_at=T0, records=records)
    fast = decode_telemetry("gw-1", encode(message))
    assert fast is not None
    assert store.write_records("gw-2", "aaaaaaaa", fast.records).new == 4
    assert store.write_records("gw-1", "aaaaaaaa", records).new == 4
    frame = store.query(features=["accel_rms_ms2", "temperature_c"])
    by_gateway = {gw: frame.values[frame.gateway_ids == gw] for gw in ("gw-1", "gw-2")}
    np.testing.assert_array_equal(by_gateway["gw-1"], by_gateway["gw-2"])
    assert np.isnan(by_gateway["gw-1"][:, 1]).all()
