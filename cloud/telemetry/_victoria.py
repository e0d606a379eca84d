"""VictoriaMetricsStore: telemetry in VictoriaMetrics, an InfluxDB-write-compatible TSDB.

VictoriaMetrics accepts influxdb-client's /api/v2/write (each field becomes a series
`features_<field>` with the tags as labels) but does not answer InfluxQL; records are
read back through its /api/v1/export API and reassembled by (tags, timestamp).
It keeps millisecond timestamps, and is idempotent only with -dedup.minScrapeInterval.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from cloud.telemetry._errors import StoreUnavailableError, TelemetryQueryError
from cloud.telemetry._frame import FeatureFrame, TimeLike, datetime_to_ns, to_ns
from cloud.telemetry._http_store import HttpLineStoreBase
from cloud.telemetry._lineproto import MEASUREMENT, META_FIELDS, V2LineWriter, to_lines
from cloud.telemetry._query_args import check_asset_ids, check_limit
from cloud.telemetry._snapshots import SnapshotDirectory
from cloud.telemetry._store import (
    RecordGroup,
    StorableRecord,
    StoredRow,
    WriteResult,
    sort_out,
)

__all__ = ["VictoriaMetricsStore"]

_PREFIX = f"{MEASUREMENT}_"
_MS = 1_000_000


def _label(value: str) -> str:
    return json.dumps(value)  # a PromQL string literal is a JSON-compatible double-quoted string


def _selector(names: Sequence[str] | None, **labels: Any) -> str:
    """A series selector for the `features_<field>` series of `names` (all: None)."""
    metric = (f"{_PREFIX}(" + "|".join(re.escape(n) for n in names) + ")"
              if names is not None else f"{_PREFIX}.+")
    matchers = [f"__name__=~{_label(metric)}"]
    for key, value in labels.items():
        if value is None:
            continue
        if isinstance(value, str):
            matchers.append(f"{key}={_label(value)}")
        else:
            matchers.append(f"{key}=~{_label('|'.join(re.escape(v) for v in value))}")
    return "{" + ",".join(matchers) + "}"


# Groups of a batch whose time spans lie this close share one lookup export, as long as the
# export's span stays under _CLUSTER_MAX_NS (an old replay gets an export of its own).
_CLUSTER_GAP_NS = 60 * 10**9
_CLUSTER_MAX_NS = 600 * 10**9


def _clusters(spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Indices of `spans` in clusters of neighbouring spans."""
    out: list[list[int]] = []
    lo = hi = 0
    for i in sorted(range(len(spans)), key=lambda i: spans[i]):
        s_lo, s_hi = spans[i]
        if out and s_lo <= hi + _CLUSTER_GAP_NS and max(hi, s_hi) - lo <= _CLUSTER_MAX_NS:
            out[-1].append(i)
            hi = max(hi, s_hi)
        else:
            out.append([i])
            lo, hi = s_lo, s_hi
    return out


class VictoriaMetricsStore(HttpLineStoreBase):
    """TelemetryStore on VictoriaMetrics single-node (writes: line protocol; reads: export API).

    flush_after_write makes a write visible to the next read at once (VictoriaMetrics
    otherwise buffers ~1 s), which the new-record count of write() relies on.
    """

    def __init__(
        self,
        url: str,
        *,
        snapshot_dir: str | Path,
        timeout_s: float = 10.0,
        flush_after_write: bool = True,
        count_new: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.flush_after_write = flush_after_write
        self.count_new = count_new
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self._writer = V2LineWriter(self.url, "", "-", "ironwatch", timeout_s)
        self._snapshots = SnapshotDirectory(snapshot_dir)

    def _export(
        self, names: Sequence[str] | None, start_ns: int | None = None,
        end_ns: int | None = None, **labels: Any,
    ) -> Iterator[dict[str, Any]]:
        return self._export_selectors([_selector(names, **labels)], start_ns, end_ns)

    def _export_selectors(
        self, selectors: Sequence[str], start_ns: int | None = None, end_ns: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The series any of `selectors` matches, posted: a batch's lookup is long for a URL."""
        form: dict[str, Any] = {
            "match[]": list(selectors),
            "start": str((start_ns // _MS) / 1000 if start_ns is not None else 0),
        }
        if end_ns is not None:
            form["end"] = str((end_ns // _MS + 1) / 1000)
        try:
            with self._http.stream("POST", "/api/v1/export", data=form) as resp:
                if resp.status_code == 400:
                    raise TelemetryQueryError(f"export refused: {resp.read().decode()}")
                if resp.status_code != 200:
                    raise StoreUnavailableError(f"export: HTTP {resp.status_code}")
                for line in resp.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as err:
            raise StoreUnavailableError(f"VictoriaMetrics export failed: {err}") from err

    def write_records(
        self, gateway_id: str, epoch: str, records: Sequence[StorableRecord]
    ) -> WriteResult:
        return self.write_batch([RecordGroup(gateway_id, epoch, records)])[0]

    def write_batch(self, groups: Sequence[RecordGroup]) -> list[WriteResult]:
        """Every group's new records in one line-protocol body (one HTTP write, one flush).

        With count_new, the seqs already stored are looked up first: the groups whose time
        spans lie close together in one export (see _stored_rows).
        """
        live = [g for g in groups if g.records]
        found = (self._stored_rows(live) if self.count_new and live
                 else [{} for _ in live])
        existing = iter(found)
        lines: list[str] = []
        results: list[WriteResult] = []
        for gateway_id, epoch, records in groups:
            if not records:
                results.append(WriteResult())
                continue
            to_write, result = sort_out(records, next(existing), ts_resolution_ns=_MS)
            lines.extend(to_lines(gateway_id, to_write, epoch))
            results.append(result)
        if lines:
            self._writer.write(lines)
            if self.flush_after_write:
                self._flush()
        return results

    def _stored_rows(self, groups: Sequence[RecordGroup]) -> list[dict[int, StoredRow]]:
        """Per group, its seqs already stored with their content, from its time span.

        One export per cluster of groups whose spans lie within a minute of each other (a
        live batch is one cluster); each group keeps only the points of its own span.
        """
        spans = []
        for g in groups:
            times = [datetime_to_ns(r.ts) for r in g.records]
            spans.append((min(times), max(times)))
        found: list[dict[int, StoredRow]] = [{} for _ in groups]
        for members in _clusters(spans):
            keys = sorted({(groups[i].gateway_id, groups[i].epoch) for i in members})
            # epoch="" matches series without the label: the legacy epoch.
            selectors = [_selector(None, gateway=gw, epoch=ep) for gw, ep in keys]
            start = min(spans[i][0] for i in members)
            end = max(spans[i][1] for i in members)
            rows: dict[tuple[str, str], dict[tuple[str, str, int], dict[str, float]]] = {}
            for s in self._export_selectors(selectors, start, end):
                m = s["metric"]
                field = m["__name__"][len(_PREFIX):]
                of_key = rows.setdefault((m.get("gateway", ""), m.get("epoch", "")), {})
                for v, t in zip(s["values"], s["timestamps"], strict=True):
                    of_key.setdefault((m.get("asset", ""), m.get("point", ""), int(t)),
                                      {})[field] = v
            for i in members:
                g = groups[i]
                wanted = {r.seq for r in g.records}
                lo_ms, hi_ms = spans[i][0] // _MS, spans[i][1] // _MS + 1
                for (asset, point, t_ms), fields in rows.get((g.gateway_id, g.epoch), {}).items():
                    seq = fields.get("seq")
                    if seq is None or int(seq) not in wanted or not lo_ms <= t_ms <= hi_ms:
                        continue
                    found[i][int(seq)] = StoredRow(
                        asset_id=asset, point=point, ts_ns=t_ms * _MS,
                        window_s=float(fields.get("window_s", np.nan)),
                        stale=bool(fields.get("stale", 0.0)),
                        features={k: float(v) for k, v in fields.items()
                                  if k not in META_FIELDS},
                    )
        return found

    def _flush(self) -> None:
        try:
            self._http.get("/internal/force_flush")
        except httpx.HTTPError as err:
            raise StoreUnavailableError(f"VictoriaMetrics flush failed: {err}") from err

    def query(
        self,
        *,
        asset_ids: Sequence[str] | None = None,
        point: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        features: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> FeatureFrame:
        check_asset_ids(asset_ids)
        if (asset_ids is not None and not asset_ids) or limit == 0:
            return FeatureFrame.empty(features or ())
        check_limit(limit)
        start_ns = None if start is None else to_ns(start)
        end_ns = None if end is None else to_ns(end)
        names = None if features is None else [*META_FIELDS, *features]
        # Keyed with the epoch too: two outbox epochs may hold a record of the same time.
        rows: dict[tuple[str, str, str, int, str], dict[str, float]] = {}
        for s in self._export(names, start_ns, end_ns, asset=asset_ids, point=point):
            m = s["metric"]
            field = m["__name__"][len(_PREFIX):]
            key_base = (m.get("gateway", ""), m.get("asset", ""), m.get("point", ""))
            for v, t in zip(s["values"], s["timestamps"], strict=True):
                ts = int(t) * _MS
                if start_ns is not None and ts < start_ns:
                    continue
                if end_ns is not None and ts >= end_ns:
                    continue
                rows.setdefault((*key_base, ts, m.get("epoch", "")), {})[field] = v
        keyed = sorted(
            ((k, f) for k, f in rows.items() if "seq" in f),
            key=lambda kf: (kf[0][3], kf[0][0], kf[1]["seq"]),
        )
        if limit is not None:
            keyed = keyed[:limit]
        if not keyed:
            return FeatureFrame.empty(features or ())
        out_names = (list(features) if features is not None
                     else sorted({n for _, f in keyed for n in f} - set(META_FIELDS)))
        values = np.array([[f.get(n, np.nan) for n in out_names] for _, f in keyed],
                          dtype=np.float64).reshape(len(keyed), len(out_names))
        return FeatureFrame.from_columns(
            gateway_ids=[k[0] for k, _ in keyed],
            seqs=[int(f["seq"]) for _, f in keyed],
            asset_ids=[k[1] for k, _ in keyed],
            points=[k[2] for k, _ in keyed],
            ts_ns=[k[3] for k, _ in keyed],
            window_s=[float(f.get("window_s", np.nan)) for _, f in keyed],
            stale=[bool(f.get("stale", 0.0)) for _, f in keyed],
            values=values,
            feature_names=out_names,
        )

    def count(self, *, gateway_id: str | None = None, asset_id: str | None = None) -> int:
        return sum(len(s["values"])
                   for s in self._export(["seq"], gateway=gateway_id, asset=asset_id))

    def duplicate_count(self) -> int:
        per_gateway: dict[tuple[str, str], list[float]] = {}
        for s in self._export(["seq"]):
            key = (s["metric"].get("gateway", ""), s["metric"].get("epoch", ""))
            per_gateway.setdefault(key, []).extend(s["values"])
        return sum(len(v) - len(set(v)) for v in per_gateway.values())
