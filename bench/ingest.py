"""Ingestion throughput: records/s from a real Mosquitto into the embedded store.

Three processes share one QoS 1 stream: a publisher (pre-encoded telemetry batches, as
fast as the broker takes them), a bare paho subscriber that only counts records, and an
IngestionWorker (validation, registry, SQLite write, manual PUBACK after the write).
Both subscribers see the same messages in the same run, so the ratio says what
validation and storage cost relative to merely receiving.

    python bench/ingest.py [--messages 2000] [--records-per-message 100] [--features 8]

Prints figures, then one JSON line with records_per_s, bare_records_per_s, ratio_to_bare.
"""

from __future__ import annotations

import argparse
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


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def role_bare(port: int, expected: int) -> None:
    """Count records (by seq keys in the payload) and time first to last message."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from ironwatch.wire import TELEMETRY_FILTER

    state = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()
    ready = threading.Event()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        if not state["n"]:
            state["first"] = time.perf_counter()
        state["n"] += msg.payload.count(b'"seq":') - 1  # the message seq + one per record
        state["last"] = time.perf_counter()
        if state["n"] >= expected:
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare",
                    protocol=MQTTProtocolVersion.MQTTv5)
    c.on_message = on_message
    c.on_subscribe = lambda *_a: ready.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    c.on_connect = lambda cl, *_a: cl.subscribe(TELEMETRY_FILTER, qos=1)
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    ready.wait(10)
    _emit({"ready": True})
    done.wait(600)
    c.disconnect()
    c.loop_stop()
    _emit({"records": state["n"], "seconds": state["last"] - state["first"]})


def role_ingest(port: int, expected: int, db: str, cache_names: bool) -> None:
    from cloud.ingest import IngestConfig, IngestionWorker, MemoryAssetRegistry
    from cloud.telemetry import SqliteTelemetryStore
    from ironwatch.mqtt import BrokerSettings

    if cache_names:
        # What-if only: ironwatch.wire re-checks every feature name of every record; a
        # memoised check (names repeat endlessly) shows what validation would cost then.
        import functools

        import ironwatch.wire

        ironwatch.wire.check_feature_name = functools.lru_cache(maxsize=4096)(
            ironwatch.wire.check_feature_name
        )

    registry = MemoryAssetRegistry({f"gw{g}": {f"gw{g}-a{i}" for i in range(5)}
                                    for g in range(GATEWAYS)})
    store = SqliteTelemetryStore(db)
    config = IngestConfig(broker=BrokerSettings(port=port), client_id="bench-ingest",
                          topics=("ironwatch/v1/+/telemetry",))
    worker = IngestionWorker(config, store, registry)
    worker.start()
    _emit({"ready": True})
    first = 0.0
    while worker.stats.records_received < expected:
        if not first and worker.stats.last_message_at is not None:
            first = time.perf_counter()
        time.sleep(0.001)
    last = time.perf_counter()
    stats = worker.stats
    worker.stop()
    _emit({"records": stats.stored, "seconds": last - first, "duplicates": stats.duplicates,
           "stored_in_db": store.count(), "dead_lettered": stats.dead_lettered_total})
    store.close()


def role_publish(port: int, messages: int, per_msg: int, n_features: int) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    from ironwatch.wire import encode, telemetry_topic
    from ironwatch_testing.ingest import make_records, make_telemetry

    payloads = []
    seqs = dict.fromkeys(range(GATEWAYS), 0)
    for m in range(messages):
        g = m % GATEWAYS
        recs = make_records(seqs[g], per_msg, assets=[f"gw{g}-a{i}" for i in range(5)],
                            n_features=n_features)
        seqs[g] += per_msg
        payloads.append((telemetry_topic(f"gw{g}"), encode(make_telemetry(f"gw{g}", recs))))
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


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(SELF), *args], stdout=subprocess.PIPE,
                            text=True, env=env)


def _read(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{proc.args!r} ended without output")
    result: dict[str, Any] = json.loads(line)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--records-per-message", type=int, default=100)
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--role", choices=["bare", "ingest", "publish"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--db")
    ap.add_argument("--cache-feature-names", action="store_true",
                    help="what-if: memoise ironwatch.wire.check_feature_name in the worker")
    args = ap.parse_args()
    expected = args.messages * args.records_per_message
    if args.role == "bare":
        return role_bare(args.port, expected)
    if args.role == "ingest":
        return role_ingest(args.port, expected, args.db, args.cache_feature_names)
    if args.role == "publish":
        return role_publish(args.port, args.messages, args.records_per_message, args.features)

    from ironwatch_app.local_servers import Mosquitto, stop_process

    with Mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
        port = str(broker.port)
        common = ["--port", port, "--messages", str(args.messages),
                  "--records-per-message", str(args.records_per_message),
                  "--features", str(args.features)]
        procs = [_spawn("--role", "bare", *common),
                 _spawn("--role", "ingest", "--db", str(Path(tmp) / "t.db"), *common,
                        *(["--cache-feature-names"] if args.cache_feature_names else []))]
        try:
            for p in procs:
                _read(p)  # ready: subscribed
            pub = _spawn("--role", "publish", *common)
            procs.append(pub)
            published = _read(pub)
            bare = _read(procs[0])
            ingest = _read(procs[1])
        finally:
            for p in procs:
                stop_process(p)  # type: ignore[arg-type]
    rate = ingest["records"] / ingest["seconds"]
    bare_rate = bare["records"] / bare["seconds"]
    pub_rate = published["records"] / published["seconds"]
    print(f"publisher {pub_rate:>10,.0f} records/s  ({published['payload_bytes']:,} B/message)")
    print(f"bare      {bare_rate:>10,.0f} records/s  ({bare['records']:,} records)")
    print(f"ingest    {rate:>10,.0f} records/s  ({ingest['records']:,} stored, "
          f"{ingest['duplicates']} duplicates, {ingest['stored_in_db']:,} in the store)")
    _emit({
        "bench": "ingest",
        "records": expected,
        "records_per_message": args.records_per_message,
        "features": args.features,
        "records_per_s": round(rate),
        "bare_records_per_s": round(bare_rate),
        "publisher_records_per_s": round(pub_rate),
        "ratio_to_bare": round(rate / bare_rate, 3),
        "feature_name_check_memoised": args.cache_feature_names,
        "stored_exactly_once": ingest["stored_in_db"] == expected and ingest["duplicates"] == 0,
        "cpus": os.cpu_count(),
    })


if __name__ == "__main__":
    main()
