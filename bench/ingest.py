"""Ingestion throughput: records/s from a real Mosquitto into the embedded store, per worker.

The stream is queued first: every subscriber's persistent session exists (subscribed,
then disconnected) while a publisher sends pre-encoded telemetry batches (20 features per
record by default) at QoS 1, so what is timed is draining a queue, not the publisher.
Then, one configuration after another so they never share the CPU:

- a bare paho subscriber that only counts records (what the broker and paho cost);
- 1 IngestionWorker process (msgspec batch validation, registry, time window, one
  SQLite statement and commit per batch, PUBACK after the write);
- 2 IngestionWorker processes in one MQTT 5 shared-subscription group writing to one
  SQLite file (`--workers 1,2` picks the counts).

In the same run the store's own bulk insert is timed on the same rows: the records
(decoded beforehand) written with `SqliteTelemetryStore.write_batch` in batches of
`--batch-messages` messages, and below that the bare `executemany` of the prepared rows
(SQLite's floor), once before the drains and once after (their sum is the baseline: the
shared machine's load moves the store's own rate as much as a worker's). Each ingestion
run is reported as a ratio to both and to the bare subscriber.

With `--store influx` the same runs write to a real InfluxDB 1.x (Debian's influxd, started
on 127.0.0.1, one database per configuration) instead: the store's own bulk insert is then
`InfluxStore.write_batch` of the decoded records, and below it the HTTP write of line
protocol built beforehand (what the server itself takes).

    python bench/ingest.py [--messages 1000] [--records-per-message 100] [--features 20]
                           [--workers 1,2] [--validator fast|pydantic] [--store sqlite|influx]

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SELF = Path(__file__).resolve()
GATEWAYS = 10
ASSETS_PER_GATEWAY = 5


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _wait_go() -> None:
    if sys.stdin.readline().strip() != "go":
        raise SystemExit(0)


def _assets(g: int) -> list[str]:
    return [f"gw{g}-a{i}" for i in range(ASSETS_PER_GATEWAY)]


def _open_store(kind: str, where: str, name: str) -> Any:
    """The telemetry store a role writes to: a SQLite file in `where`, or database `name`
    of the InfluxDB at `where` (its snapshots in a temporary directory)."""
    if kind == "influx":
        from cloud.telemetry import InfluxStore

        return InfluxStore(where, database=name, snapshot_dir=tempfile.mkdtemp())
    from cloud.telemetry import SqliteTelemetryStore

    return SqliteTelemetryStore(Path(where) / f"{name}.db")


def role_bare(port: int, expected: int) -> None:
    """Count records (by seq keys in the payload) and time first to last message."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from ironwatch.wire import TELEMETRY_FILTER

    state = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        if not state["n"]:
            state["first"] = time.perf_counter()
        state["n"] += msg.payload.count(b'"seq":') - 1  # the message seq + one per record
        state["last"] = time.perf_counter()
        if state["n"] >= expected:
            done.set()

    def client() -> Any:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare",
                        protocol=MQTTProtocolVersion.MQTTv5)
        c.on_message = on_message
        c.on_subscribe = lambda *_a: subscribed.set()
        c.on_connect = lambda cl, *_a: cl.subscribe(TELEMETRY_FILTER, qos=1)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", port, clean_start=False, properties=props)
        return c

    c = client()
    c.loop_start()
    subscribed.wait(10)
    c.disconnect()
    c.loop_stop()
    _emit({"ready": True})
    _wait_go()
    c = client()
    c.loop_start()
    cpu0 = time.process_time()
    done.wait(600)
    cpu = time.process_time() - cpu0
    c.disconnect()
    c.loop_stop()
    _emit({"records": state["n"], "seconds": state["last"] - state["first"], "cpu_s": cpu})


def role_ingest(port: int, kind: str, where: str, name: str, group: str, client_id: str,
                validator: str) -> None:
    """One ingestion worker: subscribe once (the session queues), then drain on "go"."""
    from cloud.ingest import IngestConfig, IngestionWorker, MemoryAssetRegistry
    from ironwatch.mqtt import BrokerSettings

    if validator == "pydantic":  # what-if: the contract's pydantic models for every record
        import functools

        import cloud.ingest._worker as worker_module
        from cloud.ingest._validate import validate

        worker_module.validate = functools.partial(validate, fast=False)  # type: ignore[assignment]
    registry = MemoryAssetRegistry({f"gw{g}": _assets(g) for g in range(GATEWAYS)})
    store = _open_store(kind, where, name)
    calls = {"n": 0, "records": 0, "s": 0.0}
    write_batch = store.write_batch

    def timed_write_batch(groups: Any) -> Any:  # how long the worker waits on its store
        t = time.perf_counter()
        try:
            return write_batch(groups)
        finally:
            calls["s"] += time.perf_counter() - t
            calls["n"] += 1
            calls["records"] += sum(len(g.records) for g in groups)

    store.write_batch = timed_write_batch
    config = IngestConfig(broker=BrokerSettings(port=port), client_id=client_id,
                          shared_group=group, topics=("ironwatch/v1/+/telemetry",))
    worker = IngestionWorker(config, store, registry, on_stored=lambda *_a: None)
    worker.start()
    worker.stop()
    _emit({"ready": True})
    _wait_go()
    first: list[float] = []  # when the first message arrived (CLOCK_MONOTONIC, system-wide)
    on_message = worker._on_message

    def note_first(client: Any, userdata: Any, msg: Any) -> None:
        if not first:
            first.append(time.perf_counter())
        on_message(client, userdata, msg)

    worker._on_message = note_first  # type: ignore[method-assign]
    worker.start()
    # The parent asks how many records are stored (no query to the store, whose own work
    # a poll would slow) and says when they all are.
    while (line := sys.stdin.readline().strip()) != "stop":
        if line == "count":
            stats = worker.stats
            _emit({"stored": stats.stored + stats.duplicates})
    import psutil

    names = {t.native_id: t.name for t in threading.enumerate()}
    threads = {names.get(t.id, str(t.id)): round(t.user_time + t.system_time, 2)
               for t in psutil.Process().threads()}
    worker.stop()  # finishes the batch in hand first
    stats = worker.stats
    _emit({"stored": stats.stored, "duplicates": stats.duplicates, "received": stats.received,
           "dead_lettered": stats.dead_lettered_total, "thread_cpu_s": threads,
           "store_calls": calls, "first_message_at": first[0] if first else None})
    store.close()


def role_publish(port: int, messages: int, per_msg: int, n_features: int, out: str) -> None:
    """Publish the stream (waiting for every PUBACK) and keep the payloads for the baseline."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    from ironwatch.wire import encode, telemetry_topic
    from ironwatch_testing.ingest import make_records, make_telemetry

    payloads = []
    seqs = dict.fromkeys(range(GATEWAYS), 0)
    for m in range(messages):
        g = m % GATEWAYS
        recs = make_records(seqs[g], per_msg, assets=_assets(g), n_features=n_features)
        seqs[g] += per_msg
        payloads.append((telemetry_topic(f"gw{g}"), encode(make_telemetry(f"gw{g}", recs))))
    Path(out).write_text(json.dumps([[t, p.decode()] for t, p in payloads]))
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub",
                    protocol=MQTTProtocolVersion.MQTTv5)
    c.max_inflight_messages_set(200)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t = time.perf_counter()
    infos = [c.publish(topic, payload, qos=1) for topic, payload in payloads]
    for info in infos:
        info.wait_for_publish(600)
    seconds = time.perf_counter() - t
    c.disconnect()
    c.loop_stop()
    _emit({"records": messages * per_msg, "seconds": seconds,
           "payload_bytes": sum(len(p) for _, p in payloads) // messages})


def role_bulk(payload_file: str, kind: str, where: str, tag: str, batch_messages: int) -> None:
    """The store's own bulk insert of the same rows, timed on records decoded beforehand
    by the worker's own decoder (the same record objects a worker hands the store)."""
    from cloud.ingest._fastwire import _DECODER, decode_telemetry
    from cloud.telemetry import RecordGroup
    from ironwatch.wire import parse_topic

    payloads = json.loads(Path(payload_file).read_text())
    raw = [p.encode() for _, p in payloads]
    c = time.process_time()
    for body in raw:
        _DECODER.decode(body)
    decode_cpu_s = time.process_time() - c
    messages = [decode_telemetry(parse_topic(t)[0], p.encode()) for t, p in payloads]
    batches = []
    for i in range(0, len(messages), batch_messages):
        groups: dict[tuple[str, str], list[Any]] = {}
        for m in messages[i:i + batch_messages]:
            assert m is not None
            groups.setdefault((m.gateway_id, m.epoch), []).extend(m.records)
        batches.append([RecordGroup(g, e, r) for (g, e), r in groups.items()])
    n = sum(len(r.records) for b in batches for r in b)

    store = _open_store(kind, where, f"bulk{tag}")
    t, c = time.perf_counter(), time.process_time()
    for batch in batches:
        store.write_batch(batch)
    store_s, store_cpu_s = time.perf_counter() - t, time.process_time() - c
    assert store.count() == n

    floor = _open_store(kind, where, f"floor{tag}")
    if kind == "influx":  # what the server takes: line protocol built beforehand
        from cloud.telemetry._lineproto import to_lines

        bodies = [[line for g in batch for line in to_lines(g.gateway_id, g.records, g.epoch)]
                  for batch in batches]
        t, c = time.perf_counter(), time.process_time()
        for lines in bodies:
            floor._writer.write(lines)
    else:  # SQLite's executemany of the prepared rows
        from cloud.telemetry._sqlite import _INSERT

        conn = floor._conn()
        rows = [[row for g in batch
                 for row in floor._rows(conn, g.gateway_id, g.epoch, g.records)]
                for batch in batches]
        t, c = time.perf_counter(), time.process_time()
        for batch_rows in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT, batch_rows)
            conn.execute("COMMIT")
    floor_s, floor_cpu_s = time.perf_counter() - t, time.process_time() - c
    assert floor.count() == n
    store.close()
    floor.close()
    _emit({"records": n, "store_s": store_s, "floor_s": floor_s, "store_cpu_s": store_cpu_s,
           "floor_cpu_s": floor_cpu_s, "decode_cpu_s": decode_cpu_s})


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(SELF), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)


def _read(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{proc.args!r} ended without output")
    result: dict[str, Any] = json.loads(line)
    return result


def _say(proc: subprocess.Popen[str], word: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(word + "\n")
    proc.stdin.flush()


def _count(kind: str, where: str, name: str) -> int:
    if kind == "influx":
        store = _open_store(kind, where, name)
        try:
            return int(store.count())
        finally:
            store.close()
    import sqlite3

    db = Path(where) / f"{name}.db"
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _drain(procs: list[subprocess.Popen[str]], kind: str, where: str, name: str,
           expected: int) -> dict[str, Any]:
    """Say go, time until the workers have stored every record, then collect their stats
    and check the store holds every record."""
    import psutil

    for p in procs:
        _say(p, "go")
    t0 = time.perf_counter()
    cpu0 = [psutil.Process(p.pid).cpu_times() for p in procs]
    while True:
        for p in procs:
            _say(p, "count")
        if (stored := sum(_read(p)["stored"] for p in procs)) >= expected:
            break
        if time.perf_counter() - t0 > 900:
            raise RuntimeError(f"only {stored} of {expected} records stored in 900 s")
        time.sleep(0.02)
    done_at = time.perf_counter()
    cpu = [sum(psutil.Process(p.pid).cpu_times()[:2]) - sum(c[:2])
           for p, c in zip(procs, cpu0, strict=True)]
    for p in procs:
        _say(p, "stop")
    stats = [_read(p) for p in procs]
    # Timed from the first message a worker received, as the bare subscriber is: what a
    # worker takes to connect and resume its session is not ingestion.
    seconds = done_at - min(s["first_message_at"] or t0 for s in stats)
    if (in_store := _count(kind, where, name)) != expected:
        raise RuntimeError(f"the store holds {in_store} records, not {expected}")
    return {"seconds": seconds, "cpu_s": cpu, "stats": stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--records-per-message", type=int, default=100)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2")
    ap.add_argument("--batch-messages", type=int, default=100,
                    help="messages per store write in the bulk-insert baseline (the broker's "
                    "in-flight window, 100, bounds a worker's batch the same way)")
    ap.add_argument("--validator", choices=["fast", "pydantic"], default="fast")
    ap.add_argument("--store", choices=["sqlite", "influx"], default="sqlite")
    ap.add_argument("--where", help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    ap.add_argument("--role", choices=["bare", "ingest", "publish", "bulk"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--group")
    ap.add_argument("--client-id")
    ap.add_argument("--out")
    args = ap.parse_args()
    expected = args.messages * args.records_per_message
    if args.role == "bare":
        return role_bare(args.port, expected)
    if args.role == "ingest":
        return role_ingest(args.port, args.store, args.where, args.name, args.group,
                           args.client_id, args.validator)
    if args.role == "publish":
        return role_publish(args.port, args.messages, args.records_per_message, args.features,
                            args.out)
    if args.role == "bulk":
        return role_bulk(args.out, args.store, args.where, args.name, args.batch_messages)

    from ironwatch_app.local_servers import Mosquitto, stop_process

    counts = [int(n) for n in args.workers.split(",") if n]
    runs: dict[int, dict[str, Any]] = {}
    with Mosquitto() as broker, tempfile.TemporaryDirectory() as tmp, \
            contextlib.ExitStack() as servers:
        where = tmp
        if args.store == "influx":
            from ironwatch_app.local_servers import InfluxD

            influx = servers.enter_context(InfluxD())
            where = influx.url
            for name in [*(f"w{n}" for n in counts), *(f"{what}{when}" for what in ("bulk", "floor")
                                                           for when in ("before", "after"))]:
                influx.query(f'CREATE DATABASE "{name}"')
        port = str(broker.port)
        common = ["--port", port, "--messages", str(args.messages),
                  "--records-per-message", str(args.records_per_message),
                  "--store", args.store, "--where", where]
        procs: list[subprocess.Popen[str]] = []
        try:
            bare = _spawn("--role", "bare", *common)
            procs.append(bare)
            workers: dict[int, list[subprocess.Popen[str]]] = {}
            for n in counts:
                workers[n] = [
                    _spawn("--role", "ingest", *common, "--name", f"w{n}",
                           "--group", f"bench{n}", "--client-id", f"bench-{n}-{i}",
                           "--validator", args.validator)
                    for i in range(n)]
                procs.extend(workers[n])
            for p in procs:
                _read(p)  # ready: the session exists and queues
            payload_file = str(Path(tmp) / "payloads.json")
            pub = _spawn("--role", "publish", *common, "--features", str(args.features),
                         "--out", payload_file)
            procs.append(pub)
            published = _read(pub)
            _say(bare, "go")
            bare_result = _read(bare)
            bulks = []
            for when in ("before", "after"):  # the baseline before and after the drains
                if when == "after":
                    for n in counts:
                        runs[n] = _drain(workers[n], args.store, where, f"w{n}", expected)
                bulk = _spawn("--role", "bulk", *common, "--out", payload_file, "--name", when,
                              "--batch-messages", str(args.batch_messages))
                procs.append(bulk)
                bulks.append(_read(bulk))
            bulk_result = {k: sum(b[k] for b in bulks) for k in bulks[0]}
        finally:
            for p in procs:
                stop_process(p)  # type: ignore[arg-type]
    bare_rate = bare_result["records"] / bare_result["seconds"]
    store_rate = bulk_result["records"] / bulk_result["store_s"]
    floor_rate = bulk_result["records"] / bulk_result["floor_s"]
    pub_rate = published["records"] / published["seconds"]
    print(f"{expected:,} records, {args.records_per_message} per message, {args.features} "
          f"features, {published['payload_bytes']:,} B per message; validator {args.validator}")
    print(f"publisher (into the queue)           {pub_rate:>10,.0f} records/s")
    bare_us = bare_result["cpu_s"] / bare_result["records"] * 1e6
    print(f"bare paho subscriber                 {bare_rate:>10,.0f} records/s   "
          f"{bare_us:5.1f} CPU µs/record")
    store_us = bulk_result["store_cpu_s"] / bulk_result["records"] * 1e6
    floor_us = bulk_result["floor_cpu_s"] / bulk_result["records"] * 1e6
    spread = ", ".join(f"{b['records'] / b['store_s']:,.0f}/s "
                       f"{b['store_cpu_s'] / b['records'] * 1e6:.1f} µs" for b in bulks)
    print(f"store bulk insert (write_batch)      {store_rate:>10,.0f} records/s   "
          f"{store_us:5.1f} CPU µs/record  [{args.store}; before and after the drains: "
          f"{spread}]")
    floor_name = ("InfluxDB write of prebuilt lines " if args.store == "influx"
                  else "SQLite executemany of prepared rows")
    print(f"{floor_name:36s} {floor_rate:>10,.0f} records/s   {floor_us:5.1f} CPU µs/record")
    decode_us = bulk_result["decode_cpu_s"] / bulk_result["records"] * 1e6
    print(f"JSON decode alone (msgspec, no checks)               {decode_us:5.1f} CPU µs/record; "
          f"with the bare subscriber {bare_us + decode_us:.1f} µs = "
          f"{(bare_us + decode_us) / store_us:.2f} of the store's own CPU per record (a worker "
          f"can reach at most {store_us / (store_us + bare_us + decode_us):.2f} of it on CPU)")
    result: dict[str, Any] = {
        "bench": "ingest", "records": expected, "records_per_message": args.records_per_message,
        "features": args.features, "validator": args.validator,
        "bare_records_per_s": round(bare_rate), "bare_cpu_us_per_record": round(bare_us, 2),
        "store_bulk_records_per_s": round(store_rate),
        "sqlite_floor_records_per_s": round(floor_rate),
        "store_bulk_cpu_us_per_record": round(store_us, 2),
        "sqlite_floor_cpu_us_per_record": round(floor_us, 2), "store": args.store,
        "decode_only_cpu_us_per_record": round(decode_us, 2),
        "publisher_records_per_s": round(pub_rate), "cpus": os.cpu_count(),
    }
    for n, run in runs.items():
        rate = expected / run["seconds"]
        stored = sum(s["stored"] for s in run["stats"])
        dups = sum(s["duplicates"] for s in run["stats"])
        cpu_us = sum(run["cpu_s"]) / expected * 1e6
        print(f"{n} ingestion worker(s)                 {rate:>10,.0f} records/s   "
              f"{cpu_us:5.1f} CPU µs/record; wall: {rate / store_rate:.2f} of the store's "
              f"bulk insert, {rate / floor_rate:.2f} of the floor, {rate / bare_rate:.3f} of "
              f"bare; CPU: {store_us / cpu_us:.2f} of the store's bulk insert; stored "
              f"{stored:,}, duplicates {dups}")
        for s in run["stats"]:
            c = s["store_calls"]
            print(f"    a worker: {c['n']} store writes of {c['records'] / max(c['n'], 1):,.0f} "
                  f"records on average, {c['s']:.2f} s in them of {run['seconds']:.2f} s")
        result[f"workers_{n}"] = {
            "records_per_s": round(rate), "ratio_to_store_bulk": round(rate / store_rate, 3),
            "ratio_to_sqlite_floor": round(rate / floor_rate, 3),
            "ratio_to_bare": round(rate / bare_rate, 3),
            "cpu_us_per_record": round(cpu_us, 2),
            "cpu_ratio_to_store_bulk": round(store_us / cpu_us, 3),
            "stored_exactly_once": stored == expected and dups == 0,
            "thread_cpu_s": [s["thread_cpu_s"] for s in run["stats"]],
        }
    _emit(result)


if __name__ == "__main__":
    main()
