"""How the processing thread cuts the queue into batches (`collect_batch`)."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from cloud.ingest import IngestConfig
from cloud.ingest._worker import _Received, collect_batch


def _item(i: int, size: int = 10) -> _Received:
    return _Received(0, i, 1, "ironwatch/v1/gw/telemetry", b"x" * size, size)


def _feed(q: queue.Queue[_Received], items: list[_Received], gap_s: float) -> threading.Thread:
    def run() -> None:
        for item in items:
            time.sleep(gap_s)
            q.put(item)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_burst_arriving_message_by_message_is_one_batch() -> None:
    cfg = IngestConfig(batch_linger_s=2.0, batch_gap_s=0.5)
    q: queue.Queue[_Received] = queue.Queue()
    feeder = _feed(q, [_item(i) for i in range(1, 6)], gap_s=0.01)
    batch = collect_batch(q, _item(0), cfg, threading.Event())
    feeder.join()
    assert [b.mid for b in batch] == [0, 1, 2, 3, 4, 5]


def test_a_gap_longer_than_batch_gap_ends_the_batch() -> None:
    cfg = IngestConfig(batch_linger_s=5.0, batch_gap_s=0.05)
    q: queue.Queue[_Received] = queue.Queue()
    q.put(_item(1))
    feeder = _feed(q, [_item(2)], gap_s=0.5)
    t0 = time.monotonic()
    batch = collect_batch(q, _item(0), cfg, threading.Event())
    waited = time.monotonic() - t0
    feeder.join()
    assert [b.mid for b in batch] == [0, 1]
    assert waited < 0.45  # it did not wait for the late message
    assert q.get_nowait().mid == 2  # which stays for the next batch


def test_the_linger_bounds_the_wait_however_steady_the_trickle() -> None:
    cfg = IngestConfig(batch_linger_s=0.2, batch_gap_s=0.15, max_batch_messages=1000)
    q: queue.Queue[_Received] = queue.Queue()
    stop = threading.Event()

    def trickle() -> None:
        i = 1
        while not stop.is_set():
            q.put(_item(i))
            i += 1
            time.sleep(0.02)

    t = threading.Thread(target=trickle)
    t.start()
    try:
        t0 = time.monotonic()
        batch = collect_batch(q, _item(0), cfg, threading.Event())
        waited = time.monotonic() - t0
    finally:
        stop.set()
        t.join()
    assert 1 < len(batch) < 1000
    assert waited < 0.2 + 0.15 + 0.1


@pytest.mark.parametrize(("limit", "expected"), [("messages", 3), ("bytes", 2)])
def test_the_batch_limits_end_it_at_once(limit: str, expected: int) -> None:
    cfg = (IngestConfig(max_batch_messages=3, batch_linger_s=5.0, batch_gap_s=5.0)
           if limit == "messages" else
           IngestConfig(max_batch_bytes=15, batch_linger_s=5.0, batch_gap_s=5.0))
    q: queue.Queue[_Received] = queue.Queue()
    for i in range(1, 10):
        q.put(_item(i))
    t0 = time.monotonic()
    batch = collect_batch(q, _item(0), cfg, threading.Event())
    assert len(batch) == expected
    assert time.monotonic() - t0 < 1.0


def test_a_stopping_worker_does_not_linger() -> None:
    cfg = IngestConfig(batch_linger_s=5.0, batch_gap_s=5.0)
    q: queue.Queue[_Received] = queue.Queue()
    stopping = threading.Event()
    stopping.set()
    t0 = time.monotonic()
    assert len(collect_batch(q, _item(0), cfg, stopping)) == 1
    assert time.monotonic() - t0 < 1.0


def test_the_linger_settings_are_checked() -> None:
    from cloud.ingest import IngestConfigError

    with pytest.raises(IngestConfigError):
        IngestConfig(batch_linger_s=0.01, batch_gap_s=0.02)
