"""What the HTTP-backed stores (InfluxDB, VictoriaMetrics) share: snapshots on disk, shutdown."""

from __future__ import annotations

from typing import Self

import httpx

from cloud.telemetry._lineproto import LineWriter
from cloud.telemetry._snapshots import SnapshotDirectory
from cloud.telemetry._store import RecordWriter
from ironwatch.wire import WaveformSnapshot

__all__ = ["HttpLineStoreBase"]


class HttpLineStoreBase(RecordWriter):
    """Snapshot and lifecycle methods of a store that writes line protocol over HTTP.

    Subclasses set `_http`, `_writer` and `_snapshots` in their constructor.
    """

    _http: httpx.Client
    _writer: LineWriter
    _snapshots: SnapshotDirectory

    def save_snapshot(self, snapshot: WaveformSnapshot) -> bool:
        return self._snapshots.save(snapshot)

    def latest_snapshot(self, asset_id: str, point: str | None = None) -> WaveformSnapshot | None:
        return self._snapshots.latest(asset_id, point)

    def close(self) -> None:
        self._writer.close()
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
