"""Feature records as InfluxDB line protocol, and the two ways of sending it.

Measurement `features`, tags gateway/epoch/asset/point, fields = the features plus `seq`,
`window_s` and `stale`, timestamp = the record's ts in ns. Writing the same record again
produces the identical point (same series, same time), which InfluxDB overwrites:
that is what makes writes idempotent there. The outbox epoch is a tag (absent for the
legacy epoch ""), so a reinstalled gateway's records are other points than its old ones.
The text is made by `_lineformat` (the same as influxdb-client's Point, faster).

A write the server refuses for its content (HTTP 400/413/422: a value it cannot hold, a
point beyond the retention policy, a body too large) raises RecordRejectedError, which the
ingestion worker answers by splitting the batch; anything else is StoreUnavailableError.
"""

# influxdb-client ships no type hints.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import httpx
from influxdb_client.domain.write_precision import WritePrecision

from cloud.telemetry._errors import RecordRejectedError, StoreUnavailableError
from cloud.telemetry._lineformat import MEASUREMENT, META_FIELDS, to_lines

__all__ = ["MEASUREMENT", "META_FIELDS", "LineWriter", "V1LineWriter", "V2LineWriter", "to_lines"]

# HTTP statuses that mean "this data", not "this server": retrying the same body cannot help.
_REFUSED = frozenset({400, 413, 422})


class LineWriter(Protocol):
    def write(self, lines: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class V1LineWriter:
    """POST /write?db=&rp=&precision=ns: InfluxDB 1.x (all of them, 1.6 included) and 3.x."""

    def __init__(self, client: httpx.Client, database: str, retention_policy: str | None) -> None:
        self._client = client
        self._params = {"db": database, "precision": "ns"}
        if retention_policy:
            self._params["rp"] = retention_policy

    def write(self, lines: Sequence[str]) -> None:
        try:
            resp = self._client.post("/write", params=self._params, content="\n".join(lines))
        except httpx.HTTPError as err:
            raise StoreUnavailableError(f"InfluxDB write failed: {err}") from err
        if resp.status_code in _REFUSED:
            raise RecordRejectedError(f"InfluxDB refused the write: HTTP {resp.status_code}: "
                                      f"{resp.text[:500]}")
        if resp.status_code != 204:
            raise StoreUnavailableError(f"InfluxDB write: HTTP {resp.status_code}: {resp.text}")

    def close(self) -> None:
        return None


class V2LineWriter:
    """influxdb-client's /api/v2/write: InfluxDB 2.x, 1.8+ ("db/rp"), 3.x, VictoriaMetrics."""

    def __init__(self, url: str, token: str, org: str, bucket: str, timeout_s: float) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000))
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket = bucket
        self._org = org

    def write(self, lines: Sequence[str]) -> None:
        from influxdb_client.rest import ApiException

        try:
            self._api.write(bucket=self._bucket, org=self._org, record=list(lines),
                            write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except ApiException as err:
            if err.status in _REFUSED:
                raise RecordRejectedError(f"write refused: HTTP {err.status}: {err.body}") from err
            raise StoreUnavailableError(f"InfluxDB v2 write failed: {err}") from err
        except OSError as err:
            raise StoreUnavailableError(f"InfluxDB v2 write failed: {err}") from err
        except Exception as err:  # urllib3 raises its own hierarchy
            raise StoreUnavailableError(f"InfluxDB v2 write failed: {err}") from err

    def close(self) -> None:
        self._api.close()
        self._client.close()


WriteApi = Literal["v1", "v2"]
