"""OutboxQueue: sequence numbers, acknowledgement, replay order, bound, and kill -9 safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.outbox import OutboxQueue, PendingRecord
from ironwatch.wire import FeatureRecord


def rec(i: int = 0) -> PendingRecord:
    return PendingRecord("pump-01", "de", datetime(2026, 1, 1, tzinfo=UTC), 1.0,
                         {"velocity_rms_mms": float(i), "kurtosis": None})


def test_seqs_increase_and_records_round_trip(tmp_path: Path) -> None:
    with OutboxQueue(tmp_path / "o.db") as ob:
        assert ob.last_seq == -1
        seqs = ob.append([rec(1), rec(2), rec(3)])
        assert seqs == [1, 2, 3]
        assert len(ob) == 3 and ob.last_seq == 3
        stored = ob.peek()
        assert [s.seq for s in stored] == [1, 2, 3]
        record = FeatureRecord.model_validate(stored[1].fields())
        assert record.seq == 2 and record.features["velocity_rms_mms"] == 2.0
        assert record.features["kurtosis"] is None
        assert [s.seq for s in ob.peek(after_seq=1, limit=1)] == [2]


def test_ack_removes_and_seq_never_reused_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with OutboxQueue(path) as ob:
        ob.append([rec(i) for i in range(5)])
        assert ob.ack([1, 2, 3, 4, 5]) == 5
        assert len(ob) == 0
        assert ob.ack([1]) == 0  # a second PUBACK for the same batch is harmless
    with OutboxQueue(path) as ob:
        assert ob.last_seq == 5
        assert ob.append([rec()]) == [6]
        assert ob.stats().acked == 0  # counts since this start


def test_unacked_records_are_replayed_in_order_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with OutboxQueue(path) as ob:
        ob.append([rec(i) for i in range(10)])
        ob.ack([1, 2, 3, 5])  # 4 was in flight in another batch when the power went
    with OutboxQueue(path) as ob:
        assert [s.seq for s in ob.peek(limit=100)] == [4, 6, 7, 8, 9, 10]


def test_bound_drops_oldest_and_counts_persistently(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with OutboxQueue(path, max_records=10) as ob:
        ob.append([rec(i) for i in range(8)])
        ob.append([rec(i) for i in range(5)])
        assert len(ob) == 10
        assert ob.stats().dropped == 3
        assert [s.seq for s in ob.peek(limit=3)] == [4, 5, 6]
    with OutboxQueue(path, max_records=10) as ob:
        ob.append([rec()])
        stats = ob.stats()
        assert stats.dropped == 4 and stats.queued == 10 and stats.last_seq == 14


def test_wal_mode_and_synchronous_setting(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    OutboxQueue(path, synchronous="normal").close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_non_finite_feature_is_refused_before_storage(tmp_path: Path) -> None:
    with OutboxQueue(tmp_path / "o.db") as ob:
        bad = PendingRecord("a", "p", datetime.now(UTC), 1.0, {"x_mms": float("nan")})
        with pytest.raises(ValueError):
            ob.append([bad])
        assert len(ob) == 0


_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from edge_agent.outbox import OutboxQueue, PendingRecord

    ob = OutboxQueue(sys.argv[1], max_records=1_000_000)
    i = 0
    while True:
        recs = [PendingRecord("pump-01", "de", datetime.now(UTC), 1.0,
                              {"velocity_rms_mms": float(i + k)}) for k in range(3)]
        seqs = ob.append(recs)
        # Only now is the batch stored: report it, as the agent would count it produced.
        sys.stdout.write(" ".join(map(str, seqs)) + "\\n")
        sys.stdout.flush()
        if i % 7 == 0:
            # Announced before the call: a kill during ack leaves it either way.
            sys.stdout.write(f"ack {seqs[0]}\\n")
            sys.stdout.flush()
            ob.ack(seqs[:1])
        i += 3
    """
)


@pytest.mark.parametrize("kill_after_s", [0.3, 0.7, 1.1])
def test_kill_9_loses_nothing_stored_and_reuses_no_seq(tmp_path: Path, kill_after_s: float) -> None:
    path = tmp_path / "o.db"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(kill_after_s + 0.5)  # interpreter start-up, then appends under way
    os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, err
    stored: set[int] = set()
    acked: set[int] = set()  # ack announced; committed if any line follows it
    lines = [line for line in out.splitlines() if line.strip()]
    surely_acked: set[int] = set()
    for n, line in enumerate(lines):
        if line.startswith("ack "):
            acked.add(int(line.split()[1]))
            if n + 1 < len(lines):
                surely_acked.add(int(line.split()[1]))
        elif n + 1 < len(lines) or out.endswith("\n"):  # a torn last line is not a report
            stored.update(int(s) for s in line.split())
    assert len(stored) > 10, "the writer did not get going"

    with OutboxQueue(path) as ob:
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        present = {s.seq for s in ob.peek(limit=10_000_000)}
        # Every record reported stored is still there, unless it was acknowledged.
        assert stored - acked <= present
        assert not (present & surely_acked)
        # A batch committed just before the kill may not have been reported: never fewer.
        assert ob.last_seq >= max(stored)
        new = ob.append([rec()])
        assert new[0] > max(stored | present)


def test_full_outbox_drops_unsent_records_first_and_counts_exactly(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with OutboxQueue(path, max_records=10) as ob:
        ob.append([rec(i) for i in range(8)])
        ob.mark_sent(4)  # 1..4 are with the broker: on their way, most likely stored
        ob.append([rec(i) for i in range(5)])  # 3 over: the oldest unsent go, 5 6 7
        assert [s.seq for s in ob.peek(limit=20)] == [1, 2, 3, 4, 8, 9, 10, 11, 12, 13]
        stats = ob.stats()
        assert (stats.dropped, stats.dropped_sent, stats.queued) == (3, 0, 10)
    with OutboxQueue(path, max_records=10) as ob:  # the sent mark survives a restart
        ob.append([rec(i) for i in range(9)])  # 9 over: 8..16, unsent, go
        assert [s.seq for s in ob.peek(limit=20)] == [1, 2, 3, 4, *range(17, 23)]
        ob.mark_sent(22)  # everything is with the broker now
        ob.append([rec(i) for i in range(3)])  # only the new ones are unsent: they go
        assert [s.seq for s in ob.peek(limit=20)] == [1, 2, 3, 4, *range(17, 23)]
        assert (ob.stats().dropped, ob.stats().dropped_sent) == (15, 0)
    with OutboxQueue(path, max_records=5) as ob:  # made smaller: sent records must go too
        ob.append([rec()])
        assert [s.seq for s in ob.peek(limit=20)] == [18, 19, 20, 21, 22]
        stats = ob.stats()
        assert (stats.dropped, stats.dropped_sent, stats.queued) == (16, 5, 5)
        assert stats.dropped + stats.dropped_sent + stats.queued == stats.last_seq


def test_ack_ranges_and_get(tmp_path: Path) -> None:
    with OutboxQueue(tmp_path / "o.db") as ob:
        ob.append([rec(i) for i in range(10)])
        assert [r.seq for r in ob.get([9, 2, 40, 5])] == [2, 5, 9]
        assert ob.ack_ranges([(0, 3), (7, 7), (9, 100)]) == 6
        assert [r.seq for r in ob.peek(limit=20)] == [4, 5, 6, 8]
        assert len(ob) == 4 and ob.stats().acked == 6


def test_a_new_outbox_file_has_a_new_epoch(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with OutboxQueue(path) as ob:
        first = ob.epoch
        ob.append([rec(i) for i in range(3)])
    with OutboxQueue(path) as ob:
        assert ob.epoch == first  # the epoch lives in the file
    for leftover in tmp_path.glob("o.db*"):
        leftover.unlink()  # an SD-card swap: the outbox is gone
    with OutboxQueue(path) as ob:
        assert ob.epoch != first and len(ob.epoch) == 16
        assert ob.append([rec()]) == [1]  # seqs restart, under the new epoch
