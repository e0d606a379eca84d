"""Dead letters and gateway events over the API: filters, pagination, bounded payloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.domain.deadletters import DbDeadLetterStore
from cloud.domain.gateways import note_epoch
from cloud.ingest import DeadLetter

from .conftest import Api


def _letter(gw: str, code: str, seq: int, size: int = 10) -> DeadLetter:
    return DeadLetter.make(f"ironwatch/v1/{gw}/telemetry", b"\xff{" + b"x" * size, code,
                           f"{code} of {seq}", max_payload_bytes=64, gateway_id=gw,
                           epoch="0123456789abcdef", seq=seq)


def test_dead_letters_are_listed_filtered_and_paged(api: Api) -> None:
    store = DbDeadLetterStore(api.session_factory, max_rows=100, trim_every=1)
    store.put_many([_letter("gw-1", "conflict", i) for i in range(5)])
    store.put_many([_letter("gw-2", "too_large", 10, size=5000)])
    page = api.request("engineer", "GET", "/api/v1/dead-letters?limit=2").json()
    assert page["total"] == 6 and len(page["items"]) == 2
    newest = page["items"][0]
    assert newest["gateway_id"] == "gw-2" and newest["reason_code"] == "too_large"
    assert newest["payload_size"] == 5002 and newest["payload_truncated"] is True
    assert len(newest["payload"].encode()) <= 64 + 2  # the bad first byte became U+FFFD
    conflicts = api.request(
        "engineer", "GET", "/api/v1/dead-letters?gateway_id=gw-1&reason=conflict&offset=3"
    ).json()
    assert conflicts["total"] == 5 and [d["seq"] for d in conflicts["items"]] == [1, 0]
    assert api.request("engineer", "GET", "/api/v1/dead-letters?reason=DROP;").status_code == 422


def test_the_table_stays_bounded_and_counts_what_it_drops(api: Api) -> None:
    store = DbDeadLetterStore(api.session_factory, max_rows=100, trim_every=10)
    for i in range(25):
        store.put_many([_letter("gw-1", "invalid_payload", i * 10 + k) for k in range(10)])
    assert store.count() == 100 and store.dropped == 150
    assert [d.seq for d in store.recent(2)] == [249, 248]


def test_a_new_epoch_is_an_event_the_operator_sees(api: Api) -> None:
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    with api.session_factory() as session:
        assert note_epoch(session, gateway_id="gw-1", epoch="aaaaaaaa", first_seq=0,
                          now=now) is None  # the first epoch is no news
        assert note_epoch(session, gateway_id="gw-1", epoch="bbbbbbbb", first_seq=0,
                          now=now + timedelta(hours=1)) is not None
        # A late replay of the old epoch's records raises nothing again.
        assert note_epoch(session, gateway_id="gw-1", epoch="aaaaaaaa", first_seq=7,
                          now=now) is None
        session.commit()
    events = api.request("engineer", "GET", "/api/v1/gateways/gw-1/events").json()
    assert events["total"] == 1
    event = events["items"][0]
    assert event["kind"] == "new_epoch"
    assert event["detail"] == {"epoch": "bbbbbbbb", "previous_epoch": "aaaaaaaa", "first_seq": 0}
    gateway = api.request("engineer", "GET", "/api/v1/gateways/gw-1").json()
    assert gateway["status"]["epoch"] == "bbbbbbbb"
    assert api.request("engineer", "GET", "/api/v1/gateways/gw-x/events").status_code == 404


def test_ingest_stats_say_when_no_worker_runs(api: Api) -> None:
    body = api.request("engineer", "GET", "/api/v1/ingest/stats").json()
    assert body == {"running": False, "stats": {}, "dead_letters_dropped": 0}
