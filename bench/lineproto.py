"""Line protocol for the InfluxDB and VictoriaMetrics stores: the formatter and write_batch.

1. Client CPU per record of `to_lines` (cached series prefixes, msgspec-formatted values)
   against influxdb-client's Point (`point_lines`, what the stores used before), on the same
   records: 20 features, 100 assets per gateway, one value in fifty missing.
2. `InfluxStore.write_batch` against a real influxd (Debian's 1.6, started here): records/s
   and client CPU per record, with `count_new` (the lookup of stored seqs) and without,
   for the store as it is (one lookup request per batch, new formatter) and as it was (one
   InfluxQL request per gateway group, Point), interleaved batch by batch on one server;
   then one batch's lookup alone, of new records and of a replay.
3. `VictoriaMetricsStore.write_batch` the same way against a real victoria-metrics, with
   `count_new` (one export per batch against one per group).

    python bench/lineproto.py [--records 40000] [--groups 50] [--per-group 100]

Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.telemetry import (
    InfluxStore,
    RecordGroup,
    StorableRecord,
    VictoriaMetricsStore,
    WriteResult,
)
from cloud.telemetry._frame import datetime_to_ns
from cloud.telemetry._influx import MEASUREMENT, _ident, influxql_string
from cloud.telemetry._lineformat import LineFormatter, point_lines, to_lines
from cloud.telemetry._store import StoredRow, sort_out
from cloud.telemetry._victoria import _MS
from ironwatch.wire import FeatureRecord
from ironwatch_app.local_servers import InfluxD, VictoriaMetrics

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAMES = [f"band{j}_accel_ms2" for j in range(17)] + ["velocity_rms_mms", "temperature_c",
                                                      "kurtosis"]


def make_groups(batch: int, groups: int, per_group: int, seed: int) -> list[RecordGroup]:
    """One batch as ingestion hands it over: one group per gateway, one record per asset."""
    rng = random.Random(seed)
    out = []
    for g in range(groups):
        recs = [
            FeatureRecord(
                seq=batch * per_group + i, asset_id=f"gw{g}-a{i}", point="de_radial",
                ts=T0 + timedelta(seconds=10 * batch, microseconds=rng.randrange(10**6)),
                window_s=1.0, stale=False,
                features={n: None if rng.random() < 0.02 else min(rng.lognormvariate(1, 1.5), 1e3)
                          for n in NAMES},
            )
            for i in range(per_group)
        ]
        out.append(RecordGroup(f"gw{g}", "00c0ffee", recs))
    return out


def cpu_per_record(fn: Callable[[], object], n: int, repeats: int = 5) -> float:
    """The least CPU time of `repeats` calls of fn, per record, in µs."""
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best / n * 1e6


class PointInfluxStore(InfluxStore):
    """InfluxStore's write_batch as it was: Point lines, one lookup request per group."""

    def write_batch(self, groups: Sequence[RecordGroup]) -> list[WriteResult]:
        lines: list[str] = []
        results: list[WriteResult] = []
        for gateway_id, epoch, records in groups:
            if not records:
                results.append(WriteResult())
                continue
            existing = self._one_group(gateway_id, epoch, records) if self.count_new else {}
            to_write, result = sort_out(records, existing)
            lines.extend(point_lines(gateway_id, to_write, epoch))
            results.append(result)
        if lines:
            self._writer.write(lines)
        return results

    def _one_group(self, gateway_id: str, epoch: str, records: Sequence[StorableRecord]
                   ) -> dict[int, StoredRow]:
        times = [datetime_to_ns(r.ts) for r in records]
        wanted = {r.seq for r in records}
        q = (f'SELECT * FROM {_ident(MEASUREMENT)} WHERE "gateway" = '
             f'{influxql_string(gateway_id)} AND "epoch" = {influxql_string(epoch)} '
             f"AND time >= {min(times)} AND time <= {max(times)}")
        found: dict[int, StoredRow] = {}
        reserved = {"time", "seq", "window_s", "stale", "gateway", "epoch", "asset", "point"}
        for series in self._results(q):
            col = {c: i for i, c in enumerate(series["columns"])}
            for row in series.get("values", []):
                seq = row[col["seq"]]
                if seq is None or int(seq) not in wanted:
                    continue
                found[int(seq)] = StoredRow(
                    asset_id=row[col["asset"]], point=row[col["point"]],
                    ts_ns=int(row[col["time"]]), window_s=float(row[col["window_s"]]),
                    stale=bool(row[col["stale"]]),
                    features={c: float(row[i]) for c, i in col.items()
                              if c not in reserved and row[i] is not None},
                )
        return found


class PointVictoriaStore(VictoriaMetricsStore):
    """VictoriaMetricsStore's write_batch as it was: Point lines, one export per group."""

    def write_batch(self, groups: Sequence[RecordGroup]) -> list[WriteResult]:
        lines: list[str] = []
        results: list[WriteResult] = []
        for gateway_id, epoch, records in groups:
            if not records:
                results.append(WriteResult())
                continue
            existing = self._one_group(gateway_id, epoch, records) if self.count_new else {}
            to_write, result = sort_out(records, existing, ts_resolution_ns=_MS)
            lines.extend(point_lines(gateway_id, to_write, epoch))
            results.append(result)
        if lines:
            self._writer.write(lines)
            if self.flush_after_write:
                self._flush()
        return results

    def _one_group(self, gateway_id: str, epoch: str, records: Sequence[StorableRecord]
                   ) -> dict[int, StoredRow]:
        times = [datetime_to_ns(r.ts) for r in records]
        wanted = {r.seq for r in records}
        rows: dict[tuple[str, str, int], dict[str, float]] = {}
        for s in self._export(None, min(times), max(times), gateway=gateway_id, epoch=epoch):
            m = s["metric"]
            field = m["__name__"][len("features_"):]
            for v, t in zip(s["values"], s["timestamps"], strict=True):
                rows.setdefault((m.get("asset", ""), m.get("point", ""), int(t)), {})[field] = v
        found: dict[int, StoredRow] = {}
        for (asset, point, t_ms), fields in rows.items():
            seq = fields.get("seq")
            if seq is None or int(seq) not in wanted:
                continue
            found[int(seq)] = StoredRow(
                asset_id=asset, point=point, ts_ns=t_ms * _MS,
                window_s=float(fields.get("window_s", float("nan"))),
                stale=bool(fields.get("stale", 0.0)),
                features={k: float(v) for k, v in fields.items()
                          if k not in ("seq", "window_s", "stale")},
            )
        return found


def formatter(args: argparse.Namespace) -> dict[str, Any]:
    groups = make_groups(0, args.groups, args.per_group, seed=1)
    n = sum(len(g.records) for g in groups)
    for g in groups:  # the same text, or the figures compare nothing
        assert to_lines(g.gateway_id, g.records, g.epoch) == point_lines(
            g.gateway_id, g.records, g.epoch)
    old = cpu_per_record(lambda: [point_lines(g.gateway_id, g.records, g.epoch)
                                  for g in groups], n)
    new = cpu_per_record(lambda: [to_lines(g.gateway_id, g.records, g.epoch) for g in groups], n)
    # Every series seen for the first time: a fresh formatter per batch, nothing cached.
    cold = cpu_per_record(lambda: [fresh.lines(g.gateway_id, g.records, g.epoch)
                                   for fresh in [LineFormatter()] for g in groups], n)
    sort = cpu_per_record(lambda: [sort_out(g.records, {}) for g in groups], n)
    print(f"line protocol, {len(NAMES)} features: Point {old:.1f} CPU µs/record, "
          f"to_lines {new:.2f} µs/record: {old / new:.1f}x less; series not yet cached "
          f"{cold:.2f} µs/record (sort_out, the repeat check, {sort:.2f} µs/record)")
    return {"point_us": round(old, 2), "to_lines_us": round(new, 2),
            "ratio": round(old / new, 2), "cold_us": round(cold, 2),
            "sort_out_us": round(sort, 2)}


def compare(label: str, made: dict[str, Any], args: argparse.Namespace,
            modes: Sequence[bool] = (True, False)) -> dict[str, Any]:
    """write_batch of the store as it is ("now") and as it was ("before"), interleaved."""
    out: dict[str, Any] = {}
    batches = max(1, args.records // (args.groups * args.per_group))
    seed = 100
    for count_new in modes:
        wall = dict.fromkeys(made, 0.0)
        cpu = dict.fromkeys(made, 0.0)
        n = 0
        for b in range(batches):
            for kind, store in made.items():
                store.count_new = count_new
                seed += 1
                # Distinct gateways per path and mode: both write new records only.
                groups = [RecordGroup(f"{kind}-{count_new}-{g.gateway_id}", g.epoch, g.records)
                          for g in make_groups(b, args.groups, args.per_group, seed)]
                t, c = time.perf_counter(), time.process_time()
                results = store.write_batch(groups)
                wall[kind] += time.perf_counter() - t
                cpu[kind] += time.process_time() - c
                assert sum(r.new for r in results) == args.groups * args.per_group
            n += args.groups * args.per_group
        key = "count_new" if count_new else "no_lookup"
        out[key] = {k: {"records_s": round(n / wall[k]), "cpu_us": round(cpu[k] / n * 1e6, 2)}
                    for k in made}
        now, before = out[key]["now"], out[key]["before"]
        print(f"{label}.write_batch ({key}, {n} records/path): now "
              f"{now['records_s']:,} records/s, {now['cpu_us']} CPU µs/record; before "
              f"{before['records_s']:,} records/s, {before['cpu_us']} µs/record "
              f"({now['records_s'] / before['records_s']:.2f}x the rate, "
              f"{before['cpu_us'] / now['cpu_us']:.1f}x less client CPU)")
    return out


def stores(args: argparse.Namespace) -> dict[str, Any]:
    with InfluxD() as server, tempfile.TemporaryDirectory() as snap:
        now = InfluxStore(server.url, database=server.database, snapshot_dir=snap)
        before = PointInfluxStore(server.url, database=server.database, snapshot_dir=snap)
        out = compare("InfluxStore", {"now": now, "before": before}, args)
        out["lookup"] = lookups(now, before, args)
        now.close()
        before.close()
    return out


def victoria(args: argparse.Namespace) -> dict[str, Any]:
    with VictoriaMetrics() as server, tempfile.TemporaryDirectory() as snap:
        made = {"now": VictoriaMetricsStore(server.url, snapshot_dir=snap),
                "before": PointVictoriaStore(server.url, snapshot_dir=snap)}
        out = compare("VictoriaMetricsStore", made, args, modes=(True,))
        for store in made.values():
            store.close()
    return out


def lookups(now: InfluxStore, before: PointInfluxStore, args: argparse.Namespace
            ) -> dict[str, Any]:
    """One batch's lookup of stored seqs: one request in all, or one per group."""
    out: dict[str, Any] = {}
    for case in ("new", "replay"):
        groups = make_groups(10_000, args.groups, args.per_group, seed=7)
        groups = [RecordGroup(f"lookup-{g.gateway_id}", g.epoch, g.records) for g in groups]
        if case == "replay":
            now.count_new = False
            now.write_batch(groups)
        figures: dict[str, dict[str, float]] = {}
        for kind in ("now", "before"):
            t, c = time.perf_counter(), time.process_time()
            found = (now._stored_rows(groups) if kind == "now"
                     else [before._one_group(*g) for g in groups])
            figures[kind] = {"wall_ms": round((time.perf_counter() - t) * 1e3, 1),
                             "cpu_ms": round((time.process_time() - c) * 1e3, 1)}
            n_found = sum(len(f) for f in found)
            assert n_found == (0 if case == "new" else args.groups * args.per_group), n_found
        out[case] = figures
        print(f"lookup of a batch of {args.groups} groups ({case} records): one request "
              f"{figures['now']['wall_ms']} ms wall, {figures['now']['cpu_ms']} ms CPU; one per "
              f"group {figures['before']['wall_ms']} ms wall, {figures['before']['cpu_ms']} ms CPU")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--records", type=int, default=40_000, help="per path and mode")
    ap.add_argument("--groups", type=int, default=50, help="gateway groups per batch")
    ap.add_argument("--per-group", type=int, default=100, help="records per group")
    ap.add_argument("--no-server", action="store_true", help="the formatter only")
    args = ap.parse_args()
    out: dict[str, Any] = {"bench": "lineproto", "features": len(NAMES),
                           "groups": args.groups, "per_group": args.per_group,
                           "python": platform.python_version()}
    out["formatter"] = formatter(args)
    if not args.no_server:
        out["influx_write_batch"] = stores(args)
        out["victoria_write_batch"] = victoria(args)
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
