"""InfluxStore: telemetry in InfluxDB, written as line protocol and read back with InfluxQL.

InfluxQL over `/query` is what InfluxDB 1.x answers natively, 2.x through its v1
compatibility API (a DBRP mapping), and 3.x as a first-class language, so one reader
covers all three; only the write endpoint differs (see `write_api`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from cloud.telemetry._errors import StoreUnavailableError, TelemetryQueryError
from cloud.telemetry._frame import FeatureFrame, TimeLike, datetime_to_ns, to_ns
from cloud.telemetry._http_store import HttpLineStoreBase
from cloud.telemetry._lineproto import (
    MEASUREMENT,
    META_FIELDS,
    LineWriter,
    V1LineWriter,
    V2LineWriter,
    WriteApi,
    to_lines,
)
from cloud.telemetry._query_args import check_asset_ids, check_limit
from cloud.telemetry._snapshots import SnapshotDirectory
from cloud.telemetry._store import (
    RecordGroup,
    StorableRecord,
    StoredRow,
    WriteResult,
    sort_out,
)

__all__ = ["InfluxStore", "influxql_string"]

_TAGS = ("gateway", "epoch", "asset", "point")


class _PartialAnswerError(Exception):
    """The server answered fewer statements than it was sent."""


def influxql_string(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxStore(HttpLineStoreBase):
    """TelemetryStore on InfluxDB 1.x / 2.x / 3.x.

    write_api "v1" posts to /write?db= (every 1.x incl. 1.6, and 3.x); "v2" uses
    influxdb-client's /api/v2/write (2.x; 1.8+ with bucket "db/rp"; 3.x). Auth: `token`
    (sent as "Token ..."; 2.x/3.x) or `username`/`password` (1.x with auth enabled).
    Snapshots go to `snapshot_dir` on local disk (string fields are capped at 64 KiB).
    """

    def __init__(
        self,
        url: str,
        *,
        database: str,
        snapshot_dir: str | Path,
        retention_policy: str | None = None,
        write_api: WriteApi = "v1",
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        org: str = "-",
        bucket: str | None = None,
        timeout_s: float = 10.0,
        count_new: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.count_new = count_new
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username and not token else None
        self._http = httpx.Client(base_url=self.url, headers=headers, auth=auth, timeout=timeout_s)
        self._writer: LineWriter
        if write_api == "v1":
            self._writer = V1LineWriter(self._http, database, retention_policy)
        elif write_api == "v2":
            v2_token = token or (f"{username}:{password or ''}" if username else "")
            v2_bucket = bucket or (f"{database}/{retention_policy}" if retention_policy
                                   else database)
            self._writer = V2LineWriter(self.url, v2_token, org, v2_bucket, timeout_s)
        else:
            raise TelemetryQueryError(f"write_api must be 'v1' or 'v2', not {write_api!r}")
        self._snapshots = SnapshotDirectory(snapshot_dir)
        # Every group of a batch looked up in one request (see _stored_rows).
        self._joined_lookup = True

    # -- InfluxQL ---------------------------------------------------------------------

    def _results(self, q: str) -> Iterator[dict[str, Any]]:
        """Series of one statement; chunked so a large answer is never cut at max-row-limit."""
        for _, series in self._statement_results(q):
            yield series

    def _statement_results(
        self, q: str, *, post: bool = False, answered: set[int] | None = None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """(statement id, series) of `q`, which may hold several statements split by ";".

        `post` sends the statements in the request body: a batch's lookup is long for a URL.
        `answered` collects the ids of the statements answered (with series or without).
        """
        params = {"db": self.database, "epoch": "ns", "chunked": "true", "chunk_size": "10000"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        if post:
            request = self._http.stream("POST", "/query", params=params, data={"q": q})
        else:
            request = self._http.stream("GET", "/query", params={**params, "q": q})
        try:
            with request as resp:
                if resp.status_code == 400:
                    raise TelemetryQueryError(f"InfluxQL refused: {resp.read().decode()}")
                if resp.status_code != 200:
                    raise StoreUnavailableError(
                        f"InfluxDB query: HTTP {resp.status_code}: {resp.read().decode()}"
                    )
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    chunk = json.loads(line)
                    for result in chunk.get("results", []):
                        if "error" in result:
                            raise TelemetryQueryError(f"InfluxQL error: {result['error']}")
                        sid = int(result.get("statement_id", 0))
                        if answered is not None:
                            answered.add(sid)
                        for series in result.get("series", []):
                            yield sid, series
                    if "error" in chunk:
                        raise TelemetryQueryError(f"InfluxQL error: {chunk['error']}")
        except httpx.HTTPError as err:
            raise StoreUnavailableError(f"InfluxDB query failed: {err}") from err

    def _where(self, **filters: Any) -> str:
        clauses = []
        asset_ids = filters.get("asset_ids")
        if asset_ids is not None:
            check_asset_ids(asset_ids)
            if not asset_ids:
                return " WHERE false"
            clauses.append(
                "(" + " OR ".join(f'"asset" = {influxql_string(a)}' for a in asset_ids) + ")"
            )
        for tag, key in (("gateway", "gateway_id"), ("asset", "asset_id"), ("point", "point")):
            if filters.get(key) is not None:
                clauses.append(f'"{tag}" = {influxql_string(filters[key])}')
        if filters.get("start") is not None:
            clauses.append(f"time >= {to_ns(filters['start'])}")
        if filters.get("end") is not None:
            clauses.append(f"time < {to_ns(filters['end'])}")
        return f" WHERE {' AND '.join(clauses)}" if clauses else ""

    # -- TelemetryStore ---------------------------------------------------------------

    def write_records(
        self, gateway_id: str, epoch: str, records: Sequence[StorableRecord]
    ) -> WriteResult:
        return self.write_batch([RecordGroup(gateway_id, epoch, records)])[0]

    def write_batch(self, groups: Sequence[RecordGroup]) -> list[WriteResult]:
        """Every group's new records in one line-protocol body (one HTTP write).

        With count_new, the seqs already stored are looked up first, for all groups in one
        request (one InfluxQL statement per group, so each keeps its own time span).
        """
        # Without count_new nothing is looked up: repeats overwrite the identical point
        # and are counted as new, and a conflicting repeat overwrites the first copy.
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
            to_write, result = sort_out(records, next(existing))
            lines.extend(to_lines(gateway_id, to_write, epoch))
            results.append(result)
        if lines:
            self._writer.write(lines)
        return results

    def _stored_rows(self, groups: Sequence[RecordGroup]) -> list[dict[int, StoredRow]]:
        """Per group, its seqs already stored with their content, looked up in its time span."""
        statements = []
        wanted: list[set[int]] = []
        for gateway_id, epoch, records in groups:
            times = [datetime_to_ns(r.ts) for r in records]
            wanted.append({r.seq for r in records})
            # '' matches the points without an epoch tag: the legacy epoch.
            statements.append(
                f'SELECT * FROM {_ident(MEASUREMENT)} WHERE "gateway" = '
                f'{influxql_string(gateway_id)} AND "epoch" = {influxql_string(epoch)} '
                f"AND time >= {min(times)} AND time <= {max(times)}")
        if len(statements) > 1 and self._joined_lookup:
            try:
                return self._lookup(statements, wanted)
            except (_PartialAnswerError, TelemetryQueryError):
                pass
            # A server that runs one statement per request (InfluxDB 3 may): one each, and
            # from now on (an error of a statement's own is raised by the first of these).
            found = [self._lookup([s], [w])[0] for s, w in zip(statements, wanted, strict=True)]
            self._joined_lookup = False
            return found
        return [self._lookup([s], [w])[0] for s, w in zip(statements, wanted, strict=True)]

    def _lookup(self, statements: Sequence[str], wanted: Sequence[set[int]]
                ) -> list[dict[int, StoredRow]]:
        """The stored rows of each statement's wanted seqs, all statements in one request."""
        found: list[dict[int, StoredRow]] = [{} for _ in statements]
        answered: set[int] = set()
        reserved = {"time", *META_FIELDS, *_TAGS}
        for sid, series in self._statement_results(";".join(statements), post=True,
                                                   answered=answered):
            if not 0 <= sid < len(statements):
                raise StoreUnavailableError(f"InfluxDB answered an unknown statement {sid}")
            col = {c: i for i, c in enumerate(series["columns"])}
            for row in series.get("values", []):
                seq = row[col["seq"]]
                if seq is None or int(seq) not in wanted[sid]:
                    continue
                found[sid][int(seq)] = StoredRow(
                    asset_id=row[col["asset"]], point=row[col["point"]],
                    ts_ns=int(row[col["time"]]), window_s=float(row[col["window_s"]]),
                    stale=bool(row[col["stale"]]),
                    features={c: float(row[i]) for c, i in col.items()
                              if c not in reserved and row[i] is not None},
                )
        if len(answered) != len(statements):
            raise _PartialAnswerError(f"{len(answered)} of {len(statements)} statements answered")
        return found

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
        if features is None:
            select = "*"
        else:
            select = ", ".join(_ident(n) for n in (*META_FIELDS, *features, *_TAGS))
        q = (f"SELECT {select} FROM {_ident(MEASUREMENT)}"
             f"{self._where(asset_ids=asset_ids, point=point, start=start, end=end)}")
        if limit is not None:
            check_limit(limit)
            if limit == 0:
                return FeatureFrame.empty(features or ())
            q += f" LIMIT {int(limit)}"
        columns: list[str] = []
        rows: list[list[Any]] = []
        for series in self._results(q):
            if not columns:
                columns = list(series["columns"])
            elif list(series["columns"]) != columns:
                raise StoreUnavailableError("InfluxDB returned chunks with different columns")
            rows.extend(series.get("values", []))
        if not rows:
            return FeatureFrame.empty(features or ())
        col = {c: i for i, c in enumerate(columns)}
        reserved = {"time", *META_FIELDS, *_TAGS}
        if features is None:
            # Columns of SELECT * are every field of the measurement; keep those this result has.
            names = sorted(c for c in columns if c not in reserved
                           and any(r[col[c]] is not None for r in rows))
        else:
            names = list(features)
        values = np.array(
            [[np.nan if c not in col or r[col[c]] is None else r[col[c]] for c in names]
             for r in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(names))
        return FeatureFrame.from_columns(
            gateway_ids=[r[col["gateway"]] for r in rows],
            seqs=[int(r[col["seq"]]) for r in rows],
            asset_ids=[r[col["asset"]] for r in rows],
            points=[r[col["point"]] for r in rows],
            ts_ns=[int(r[col["time"]]) for r in rows],
            window_s=[float(r[col["window_s"]]) for r in rows],
            stale=[bool(r[col["stale"]]) for r in rows],
            values=values,
            feature_names=names,
        )

    def count(self, *, gateway_id: str | None = None, asset_id: str | None = None) -> int:
        q = (f'SELECT COUNT("seq") FROM {_ident(MEASUREMENT)}'
             f"{self._where(gateway_id=gateway_id, asset_id=asset_id)}")
        return sum(int(row[1]) for s in self._results(q) for row in s.get("values", []))

    def duplicate_count(self) -> int:
        # Two points with the same (gateway, epoch, seq) but another series or time would
        # both count.
        q = (f'SELECT COUNT("seq"), COUNT(DISTINCT("seq")) FROM {_ident(MEASUREMENT)} '
             'GROUP BY "gateway", "epoch"')
        return sum(int(row[1]) - int(row[2]) for s in self._results(q)
                   for row in s.get("values", []))
