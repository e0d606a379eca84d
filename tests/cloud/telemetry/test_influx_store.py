"""InfluxDB specifics: the line protocol, which write API 1.6 answers, and server outages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.telemetry import (
    InfluxStore,
    RecordGroup,
    StoreUnavailableError,
    TelemetryQueryError,
    WriteResult,
)
from cloud.telemetry._lineproto import to_lines
from ironwatch.wire import FeatureRecord
from ironwatch_app.local_servers import InfluxD

REC = FeatureRecord(
    seq=42, asset_id="pump-01", point="de_radial", ts=datetime(2026, 1, 1, 0, 0, 1, 5, tzinfo=UTC),
    window_s=1.0, features={"accel_rms_ms2": 3, "temperature_c": None}, stale=True,
)


def test_line_protocol_has_tags_float_features_and_ns_time() -> None:
    (line,) = to_lines("gw-1", [REC])
    # A number without the "i" suffix is a float in line protocol, so "3" is 3.0.
    assert line == (
        "features,asset=pump-01,gateway=gw-1,point=de_radial "
        "accel_rms_ms2=3,seq=42i,stale=true,window_s=1 1767225601000005000"
    )


@pytest.mark.integration
def test_influxdb_1_6_needs_the_v1_write_endpoint(tmp_path: Path) -> None:
    with InfluxD() as server:
        v2 = InfluxStore(server.url, database=server.database, write_api="v2",
                         snapshot_dir=tmp_path, count_new=False)
        with pytest.raises(StoreUnavailableError, match="404"):
            v2.write("gw-1", [REC])  # /api/v2/write arrived in 1.8
        v2.close()
        with InfluxStore(server.url, database=server.database, snapshot_dir=tmp_path) as v1:
            assert v1.write("gw-1", [REC]) == 1
            frame = v1.query()
            assert frame.stale.tolist() == [True] and frame.seqs.tolist() == [42]
            assert frame.ts_ns.tolist() == [1767225601000005000]
        server.stop()
        with InfluxStore(server.url, database=server.database, snapshot_dir=tmp_path,
                         timeout_s=1) as down:
            with pytest.raises(StoreUnavailableError):
                down.write("gw-1", [REC])
            with pytest.raises(StoreUnavailableError):
                down.count()


class _FirstStatementOnly(InfluxStore):
    """A server that runs only the first of several statements (silently)."""

    def _statement_results(self, q: str, *, post: bool = False,
                           answered: set[int] | None = None) -> Iterator[tuple[int, Any]]:
        return super()._statement_results(q.partition(";")[0], post=post, answered=answered)


class _OneStatementPerRequest(InfluxStore):
    """A server that refuses a request holding several statements."""

    def _statement_results(self, q: str, *, post: bool = False,
                           answered: set[int] | None = None) -> Iterator[tuple[int, Any]]:
        if ";" in q:
            raise TelemetryQueryError("InfluxQL refused: one statement per request")
        return super()._statement_results(q, post=post, answered=answered)


@pytest.mark.integration
@pytest.mark.parametrize("kind", [_FirstStatementOnly, _OneStatementPerRequest])
def test_a_server_that_answers_one_statement_per_request_gets_one_lookup_per_group(
    kind: type[InfluxStore], tmp_path: Path
) -> None:
    def rec(seq: int, value: float = 1.0) -> FeatureRecord:
        return REC.model_copy(update={"seq": seq, "ts": REC.ts + timedelta(seconds=seq),
                                      "features": {"accel_rms_ms2": value}})

    with InfluxD() as server, kind(server.url, database=server.database,
                                   snapshot_dir=tmp_path) as store:
        store.write_batch([RecordGroup("gw-1", "", [rec(1)]), RecordGroup("gw-2", "", [rec(1)])])
        results = store.write_batch([
            RecordGroup("gw-1", "", [rec(1), rec(2)]),
            RecordGroup("gw-2", "", [rec(1, 5.0), rec(3)]),
        ])
        assert results == [WriteResult(new=1, duplicates=1), WriteResult(new=1, conflicts=(1,))]
        assert store.count() == 4 and store.duplicate_count() == 0
        assert not store._joined_lookup  # one request per group from now on
