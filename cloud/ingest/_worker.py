"""IngestionWorker: MQTT subscriber -> validation -> telemetry store, acknowledging after the write.

paho's network thread only queues messages; one processing thread validates them, writes
them in batches, and only then sends PUBACK (manual ack). A crash between receipt and
write therefore loses nothing: the broker redelivers whatever was not acknowledged, and
the store's idempotence on (gateway_id, seq) absorbs the repeat.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud.ingest._config import IngestConfig
from cloud.ingest._deadletter import DeadLetter, DeadLetterStore, MemoryDeadLetterStore
from cloud.ingest._errors import IngestConnectError
from cloud.ingest._registry import AssetRegistry
from cloud.ingest._stats import IngestStats, StatsCounter
from cloud.ingest._validate import Rejected, validate
from cloud.telemetry import TelemetryStore
from ironwatch.wire import FeatureRecord, GatewayStatus, WaveformSnapshot

__all__ = ["IngestionWorker"]

log = logging.getLogger(__name__)

StatusCallback = Callable[[GatewayStatus], None]
SnapshotCallback = Callable[[WaveformSnapshot], None]


_T = TypeVar("_T")


class _Aborted(enum.Enum):
    ABORTED = enum.auto()


_ABORTED = _Aborted.ABORTED


@dataclass(frozen=True, slots=True)
class _Received:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


class IngestionWorker:
    """One ingestion worker: subscribe, validate, store, acknowledge; run N for scale-out.

    `on_status` / `on_snapshot` are called from the processing thread after validation
    (a snapshot after it is saved); their exceptions are logged and counted, never fatal.
    """

    def __init__(
        self,
        config: IngestConfig,
        store: TelemetryStore,
        registry: AssetRegistry,
        *,
        on_status: StatusCallback | None = None,
        on_snapshot: SnapshotCallback | None = None,
        dead_letters: DeadLetterStore | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        self.dead_letters: DeadLetterStore = dead_letters or MemoryDeadLetterStore()
        self._on_status = on_status
        self._on_snapshot = on_snapshot
        self._stats = StatsCounter()
        self._queue: queue.Queue[_Received] = queue.Queue()
        # Bumped on every connect and disconnect: a message received on an older
        # connection is not acknowledged (its mid may mean something else now); the
        # broker redelivers it and the idempotent store absorbs the copy.
        self._generation = 0
        self._gen_lock = threading.Lock()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None

    # -- public -----------------------------------------------------------------------

    @property
    def stats(self) -> IngestStats:
        return self._stats.snapshot()

    @property
    def connected(self) -> bool:
        return self._stats.connected

    def start(self, *, wait: bool = True, timeout_s: float = 10.0) -> None:
        """Connect and subscribe. With wait, block until subscribed (IngestConnectError if not).

        Without wait, return at once and keep retrying in the background: the cloud may
        come up before the broker.
        """
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._stopping.clear()
        self._abort.clear()
        self._subscribed.clear()
        self._refused = None
        self._client = self._make_client()
        self._thread = threading.Thread(
            target=self._process_loop, name=f"ingest-{self.config.client_id}", daemon=True
        )
        self._thread.start()
        cfg = self.config
        try:
            if cfg.protocol == "5":
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = cfg.session_expiry_s
                props.ReceiveMaximum = min(cfg.receive_maximum, 65535)
                self._client.connect_async(
                    cfg.host, cfg.port, cfg.keepalive_s, clean_start=cfg.clean_start,
                    properties=props,
                )
            else:
                self._client.connect_async(cfg.host, cfg.port, cfg.keepalive_s)
        except (OSError, ValueError) as err:
            self.stop()
            raise IngestConnectError(f"cannot connect to {cfg.host}:{cfg.port}: {err}") from err
        self._client.loop_start()
        if not wait:
            return
        deadline = time.monotonic() + timeout_s
        while not self._subscribed.wait(0.05):
            if self._refused is not None or time.monotonic() > deadline:
                reason = self._refused or f"not subscribed after {timeout_s:.0f} s"
                self.stop(drain=False)
                raise IngestConnectError(f"broker {cfg.host}:{cfg.port}: {reason}")

    def stop(self, *, drain: bool = True, timeout_s: float = 10.0) -> None:
        """Stop. With drain, finish and acknowledge what was received first.

        drain=False behaves like a crash: queued messages are dropped unacknowledged and
        the broker redelivers them to the next session.
        """
        self._stopping.set()
        if not drain:
            self._abort.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                self._abort.set()
                self._thread.join(timeout_s)
            self._thread = None
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        with self._gen_lock:
            self._generation += 1
        self._queue = queue.Queue()
        self._stats.connected = False

    def __enter__(self) -> IngestionWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- paho callbacks (network thread) ----------------------------------------------

    def _make_client(self) -> mqtt.Client:
        cfg = self.config
        if cfg.protocol == "5":
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=cfg.client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
                manual_ack=True,
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=cfg.client_id,
                protocol=MQTTProtocolVersion.MQTTv311,
                clean_session=cfg.clean_start,
                manual_ack=True,
            )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls_ca is not None:
            client.tls_set(ca_certs=str(cfg.tls_ca))
        client.reconnect_delay_set(
            max(1, round(cfg.reconnect_min_s)), max(1, round(cfg.reconnect_max_s))
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any
    ) -> None:
        if rc.is_failure:
            self._refused = f"connection refused: {rc}"
            log.error("ingest %s: broker refused the connection: %s", self.config.client_id, rc)
            return
        with self._gen_lock:
            self._generation += 1
        self._stats.connected = True
        self._stats.add(connects=1)
        log.info("ingest %s connected (session present: %s)", self.config.client_id,
                 getattr(flags, "session_present", None))
        # Subscribing again on a resumed session is harmless and repairs a lost one.
        if self.config.protocol == "5":
            opts = SubscribeOptions(qos=self.config.qos)
            client.subscribe([(t, opts) for t in self.config.subscriptions])
        else:
            subs = self.config.subscriptions
            topics: list[tuple[str, int]] = [(t, self.config.qos) for t in subs]
            client.subscribe(topics)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        failed = [str(c) for c in codes if c.is_failure]
        if failed:
            self._refused = f"subscription refused: {', '.join(failed)}"
            log.error("ingest %s: %s", self.config.client_id, self._refused)
        else:
            self._subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        with self._gen_lock:
            self._generation += 1
        self._stats.connected = False
        self._stats.add(disconnects=1)
        if not self._stopping.is_set():
            log.warning("ingest %s disconnected (%s); reconnecting", self.config.client_id, rc)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        item = _Received(self._generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload))
        self._queue.put(item)

    # -- processing thread --------------------------------------------------------------

    def _process_loop(self) -> None:
        q = self._queue
        while not self._abort.is_set():
            try:
                first = q.get(timeout=0.05)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            batch = [first]
            while len(batch) < self.config.max_batch_messages:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            try:
                self._handle(batch)
            except Exception:  # never let one bad batch end ingestion
                log.exception("ingest %s: batch failed; it will be redelivered",
                              self.config.client_id)

    def _handle(self, batch: list[_Received]) -> None:
        self._stats.last_message_at = datetime.now(UTC)
        by_gateway: dict[str, list[FeatureRecord]] = {}
        to_ack: list[_Received] = []
        n_records = 0
        for item in batch:
            verdict = validate(item.topic, item.payload, self.registry)
            if isinstance(verdict, Rejected):
                self._dead_letter(item, verdict)
                to_ack.append(item)
                continue
            message = verdict.message
            if isinstance(message, GatewayStatus):
                self._stats.add(status_messages=1)
                self._call(self._on_status, message)
            elif isinstance(message, WaveformSnapshot):
                if self._retry(self.store.save_snapshot, message) is _ABORTED:
                    return
                self._stats.add(snapshots=1)
                self._call(self._on_snapshot, message)
            else:
                n_records += len(message.records)
                by_gateway.setdefault(message.gateway_id, []).extend(verdict.records)
                if verdict.refused is not None:
                    self._stats.add(records_refused=len(message.records) - len(verdict.records))
                    self._dead_letter(item, verdict.refused)
            to_ack.append(item)
        for gateway_id, records in by_gateway.items():
            new = self._retry(self.store.write, gateway_id, records)
            if new is _ABORTED:
                return  # aborted: nothing of this batch is acknowledged
            self._stats.add(stored=new, duplicates=len(records) - new)
        # Counted once handled, so `received == n` means n messages are fully processed.
        self._stats.add(received=len(batch), records_received=n_records)
        client = self._client
        if client is None:
            return
        with self._gen_lock:
            for item in to_ack:
                if item.generation == self._generation and item.qos > 0:
                    client.ack(item.mid, item.qos)

    def _retry(self, action: Callable[..., _T], *args: Any) -> _T | _Aborted:
        """Run a store call until it succeeds; _ABORTED if the worker was aborted meanwhile."""
        delay = 0.05
        while True:
            try:
                return action(*args)
            except Exception as err:
                self._stats.add(store_errors=1)
                log.warning("ingest %s: store failed (%s); retrying in %.1f s",
                            self.config.client_id, err, delay)
            if self._abort.wait(delay):
                return _ABORTED
            delay = min(delay * 2, 5.0)

    def _dead_letter(self, item: _Received, verdict: Rejected) -> None:
        self._stats.dead_letter(verdict.reason_code)
        count = self._stats.snapshot().dead_lettered.get(verdict.reason_code, 0)
        # Log the first few of each kind, then every thousandth: a flood must not drown logs.
        if count <= 10 or count % 1000 == 0:
            log.warning("dead letter #%d (%s) on %s: %s", count, verdict.reason_code,
                        item.topic, verdict.reason)
        letter = DeadLetter.make(
            item.topic, item.payload, verdict.reason_code, verdict.reason,
            max_payload_bytes=self.config.max_dead_letter_payload_bytes,
        )
        try:
            self.dead_letters.put(letter)
        except Exception:
            log.exception("dead-letter store failed; the letter is only logged")

    def _call(self, callback: Callable[[Any], None] | None, message: object) -> None:
        if callback is None:
            return
        try:
            callback(message)
        except Exception:
            self._stats.add(callback_errors=1)
            log.exception("ingest callback failed for %s", type(message).__name__)
