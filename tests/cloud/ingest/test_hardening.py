"""Hostile but authenticated gateways and careless operators against the real cloud ingestion.

A real Mosquitto and the composed cloud app (ingestion into the embedded store, dead letters
in the database, the REST API): poison records, a feature-name flood, a conflicting repeat,
a reinstalled gateway (new outbox epoch). Each test says how many valid records were lost.
"""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.app import create_app
from cloud.settings import CloudSettings
from ironwatch.wire import MAX_SEQ, telemetry_topic
from ironwatch_app.local_servers import Mosquitto
from ironwatch_testing.ingest import Publisher

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

FLEET_TOML = """
[[gateways]]
id = "gw-a"

[[gateways]]
id = "gw-b"

[[assets]]
id = "pump-01"
gateway_id = "gw-a"

[[assets]]
id = "fan-02"
gateway_id = "gw-a"

[[assets]]
id = "motor-03"
gateway_id = "gw-b"
"""
EPOCH_A = "aaaaaaaaaaaaaaaa"
EPOCH_B = "bbbbbbbbbbbbbbbb"


def record(seq: int, asset: str = "pump-01", *, ts: datetime | str | None = None,
           **features: Any) -> dict[str, Any]:
    """A record as JSON would carry it: anything may be put in, valid or not."""
    when = ts if ts is not None else datetime.now(UTC) - timedelta(minutes=5) + timedelta(
        seconds=seq % 10_000)
    return {"seq": seq, "asset_id": asset, "point": "de", "window_s": 1.0,
            "ts": when if isinstance(when, str) else when.isoformat().replace("+00:00", "Z"),
            "features": features or {"velocity_rms_mms": 1.0 + seq % 7, "temperature_c": 41.5}}


def message(gw: str, records: list[dict[str, Any]], epoch: str = EPOCH_A) -> bytes:
    return json.dumps({"v": 1, "type": "telemetry", "gateway_id": gw, "epoch": epoch,
                       "seq": records[0]["seq"], "sent_at": datetime.now(UTC).isoformat(),
                       "records": records}).encode()


def batches(gw: str, first: int, n: int, asset: str, per: int = 10,
            epoch: str = EPOCH_A) -> list[bytes]:
    return [message(gw, [record(s, asset) for s in range(i, min(i + per, first + n))], epoch)
            for i in range(first, first + n, per)]


class Cloud:
    """The composed cloud app under test, its store and an admin client of its API."""

    def __init__(self, client: TestClient, services: Any, headers: dict[str, str]) -> None:
        self.client = client
        self.services = services
        self.headers = headers

    @property
    def store(self) -> Any:
        return self.services.store

    @property
    def stats(self) -> Any:
        return self.services.ingest.stats

    def get(self, url: str) -> Any:
        response = self.client.get(url, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def dead_letters(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in {"limit": "500", **filters}.items())
        return list(self.get(f"/api/v1/dead-letters?{query}")["items"])


def wait_for(predicate: Callable[[], Any], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def cloud(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Cloud]:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET_TOML)
    token = secrets.token_urlsafe(24)
    settings = CloudSettings(
        data_dir=tmp_path / "data", mqtt_host=mosquitto.host, mqtt_port=mosquitto.port,
        mqtt_client_id="cloud-hardening", admin_token=token, fleet_file=fleet,
    )
    app = create_app(settings, scoring=False)
    with TestClient(app) as client:
        services = app.state.ironwatch_services
        wait_for(lambda: services.ingest.connected)
        yield Cloud(client, services, {"Authorization": f"Bearer {token}"})


@pytest.fixture
def pub(mosquitto: Mosquitto) -> Iterator[Publisher]:
    with Publisher(mosquitto.host, mosquitto.port) as p:
        yield p


def send(pub: Publisher, gw: str, payloads: list[bytes]) -> None:
    infos = [pub.publish(telemetry_topic(gw), p) for p in payloads]
    for info in infos:
        info.wait_for_publish(10)


def test_poison_records_are_dead_lettered_and_other_gateways_go_on(
    cloud: Cloud, pub: Publisher
) -> None:
    poison = {
        "ts in 2263": record(0, ts="2263-01-01T00:00:00Z"),
        "seq 2^63": record(MAX_SEQ + 1),
        '"1.5" as a number': record(1, velocity_rms_mms="1.5"),
        "true as a number": record(2, velocity_rms_mms=True),
        "-300 degC": record(3, temperature_c=-300.0),
        "negative RMS": record(4, velocity_rms_mms=-0.5),
    }
    # Inside a valid message: one record from 26 years ago, outside the cloud's window, and
    # two impossible samples; only those three records are refused.
    mixed = [record(s) for s in range(10, 20)]
    mixed[3] = record(13, ts="2000-06-01T00:00:00Z")
    mixed[5] = record(15, temperature_c=-300.0)
    mixed[7] = record(17, velocity_rms_mms="1.5")
    started = time.monotonic()
    send(pub, "gw-a", [message("gw-a", [r]) for r in poison.values()])
    send(pub, "gw-a", [message("gw-a", mixed)])
    send(pub, "gw-b", batches("gw-b", 0, 50, "motor-03"))
    wait_for(lambda: cloud.store.count(gateway_id="gw-b") == 50)
    through_s = time.monotonic() - started
    send(pub, "gw-a", batches("gw-a", 20, 30, "fan-02"))  # gw-a's own good data goes on too
    wait_for(lambda: cloud.store.count(gateway_id="gw-a") == 7 + 30)
    stored_seqs = set(cloud.store.query(asset_ids=["pump-01"]).seqs.tolist())
    assert stored_seqs == {10, 11, 12, 14, 16, 18, 19}  # every valid record of the mix
    print(f"\nother gateway's 50 records stored {through_s:.2f} s after the first poison "
          f"record was published; valid records lost: 0")
    assert through_s < 1.0

    letters = cloud.dead_letters(gateway_id="gw-a")
    reasons = sorted(d["reason_code"] for d in letters)
    assert reasons == (["invalid_payload"] * len(poison) + ["invalid_record"] * 2
                       + ["ts_out_of_window"])
    by_reason = " | ".join(d["reason"] for d in letters)
    for field in ("records.0.ts", "seq", "velocity_rms_mms", "temperature_c"):
        assert field in by_reason
    late = next(d for d in letters if d["reason_code"] == "ts_out_of_window")
    assert late["seq"] == 13 and late["epoch"] == EPOCH_A and "2000-06-01" in late["payload"]
    stats = cloud.get("/api/v1/ingest/stats")["stats"]
    assert stats["dead_lettered_by_gateway"]["gw-a"] == {
        "invalid_payload": 6, "invalid_record": 2, "ts_out_of_window": 1}
    assert {d["seq"] for d in letters if d["reason_code"] == "invalid_record"} == {15, 17}
    assert "gw-b" not in stats["dead_lettered_by_gateway"]
    assert cloud.store.duplicate_count() == 0


def test_feature_name_flood_is_bounded_and_dead_lettered(cloud: Cloud, pub: Publisher) -> None:
    limit = cloud.services.settings.ingest_max_features_per_asset
    # 400 records carrying 10,000 distinct, validly named features: 25 new names each.
    flood = [dict(record(s), features={f"made_up_{s}_{k}_mms": 1.0 for k in range(25)})
             for s in range(400)]
    send(pub, "gw-a", [message("gw-a", flood[i:i + 20]) for i in range(0, 400, 20)])
    send(pub, "gw-a", batches("gw-a", 400, 20, "fan-02"))  # another asset is not affected
    accepted = limit // 25
    wait_for(lambda: cloud.stats.records_received == 420)
    assert cloud.store.count(asset_id="pump-01") == accepted
    assert cloud.store.count(asset_id="fan-02") == 20
    frame = cloud.store.query(asset_ids=["pump-01"])
    assert len(frame.feature_names) == limit
    refused = cloud.dead_letters(reason="too_many_features")
    assert len(refused) == 400 - accepted
    assert all(len(d["payload"]) <= 2048 for d in refused)
    print(f"\nfeature-name flood: {accepted} records / {limit} names stored, "
          f"{400 - accepted} dead-lettered as too_many_features; valid records lost: 0")


def test_a_repeat_with_other_content_is_a_conflict(cloud: Cloud, pub: Publisher) -> None:
    original = [record(s) for s in range(10)]
    send(pub, "gw-a", [message("gw-a", original)])
    wait_for(lambda: cloud.store.count(gateway_id="gw-a") == 10)
    changed = dict(original[5], features={"velocity_rms_mms": 99.0, "temperature_c": 41.5})
    send(pub, "gw-a", [message("gw-a", [original[3]]), message("gw-a", [changed])])
    wait_for(lambda: cloud.stats.records_received == 12)
    assert cloud.stats.duplicates == 1  # the identical repeat: silent, counted
    [conflict] = cloud.dead_letters(reason="conflict")
    assert conflict["seq"] == 5 and conflict["gateway_id"] == "gw-a"
    assert "99.0" in conflict["payload"]
    stored = cloud.store.query(asset_ids=["pump-01"], features=["velocity_rms_mms"])
    assert 99.0 not in stored.column("velocity_rms_mms")  # the first copy stays
    assert cloud.store.count() == 10
    # Both copies arriving together (most likely in one batch): the later one is refused.
    fresh = [record(s) for s in range(20, 25)]
    other = dict(fresh[2], features={"velocity_rms_mms": 77.0, "temperature_c": 41.5})
    send(pub, "gw-a", [message("gw-a", fresh), message("gw-a", [other])])
    wait_for(lambda: len(cloud.dead_letters(reason="conflict")) == 2)
    assert "77.0" in cloud.dead_letters(reason="conflict")[0]["payload"]
    stored = cloud.store.query(asset_ids=["pump-01"], features=["velocity_rms_mms"])
    assert cloud.store.count() == 15 and 77.0 not in stored.column("velocity_rms_mms")


def test_a_reinstalled_gateway_is_stored_under_its_new_epoch_and_reported(
    cloud: Cloud, pub: Publisher
) -> None:
    send(pub, "gw-a", batches("gw-a", 0, 40, "pump-01"))
    wait_for(lambda: cloud.store.count(gateway_id="gw-a") == 40)
    # The SD card is swapped: a new outbox, a new epoch, seqs from 0 again.
    send(pub, "gw-a", batches("gw-a", 0, 25, "pump-01", epoch=EPOCH_B))
    wait_for(lambda: cloud.store.count(gateway_id="gw-a") == 65)
    assert cloud.stats.duplicates == 0 and cloud.store.duplicate_count() == 0

    def event() -> list[Any]:
        return list(cloud.get("/api/v1/gateways/gw-a/events")["items"])

    wait_for(event)
    [new_epoch] = event()
    assert new_epoch["kind"] == "new_epoch"
    assert new_epoch["detail"] == {"epoch": EPOCH_B, "previous_epoch": EPOCH_A, "first_seq": 0}
    assert cloud.get("/api/v1/gateways/gw-a")["status"]["epoch"] == EPOCH_B
    print("\nnew outbox epoch: 25 of 25 records stored, 0 lost; event raised")
