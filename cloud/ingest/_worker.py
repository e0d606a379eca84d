"""IngestionWorker: MQTT subscriber -> validation -> telemetry store, acknowledging after the write.

paho's network thread only queues messages; one processing thread validates them, writes
them in batches, and only then sends PUBACK (manual ack). A crash between receipt and
write therefore loses nothing: the broker redelivers whatever was not acknowledged, and
the store's idempotence on (gateway_id, epoch, seq) absorbs the repeat.

One bad input never stops the fleet: a message the contract refuses, a record outside the
cloud's time window or beyond its asset's feature-name limit, a record the store refuses
(found by splitting the batch) or one that conflicts with a stored copy is dead-lettered
on its own and everything else goes on. Transient store errors are retried in line for
`store_retry_s`; then that gateway's records wait, unacknowledged, and are retried with
backoff while newer messages are handled.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, TypeVar

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from cloud import metrics
from cloud.gcpause import paused_cyclic_gc
from cloud.ingest._acks import StoredAckPublisher
from cloud.ingest._config import IngestConfig
from cloud.ingest._deadletter import DeadLetter, DeadLetterStore, MemoryDeadLetterStore
from cloud.ingest._errors import IngestConnectError
from cloud.ingest._limits import FeatureNameLimit
from cloud.ingest._registry import AssetRegistry
from cloud.ingest._stats import IngestStats, StatsCounter
from cloud.ingest._validate import Rejected, TimeWindow, validate
from cloud.telemetry import (
    RecordGroup,
    RecordRejectedError,
    StorableRecord,
    StoreUnavailableError,
    TelemetryStore,
    WriteResult,
)
from ironwatch.mqtt import MqttSetupError, build_client
from ironwatch.wire import MAX_SEQ, FeatureRecord, GatewayStatus, WaveformSnapshot, parse_topic

__all__ = ["IngestionWorker"]

log = logging.getLogger(__name__)

StatusCallback = Callable[[GatewayStatus], None]
SnapshotCallback = Callable[[WaveformSnapshot], None]
StoredCallback = Callable[[str, str, list[int]], None]
"""on_stored(gateway_id, epoch, seqs): these records are stored or dead-lettered, durably."""
EpochCallback = Callable[[str, str, int], None]
"""on_epoch(gateway_id, epoch, first_seq): records of an epoch this worker had not seen."""

_T = TypeVar("_T")
# Errors worth retrying: the store (or the way to it) is down, slow or locked.
_TRANSIENT = (StoreUnavailableError, ConnectionError, TimeoutError)
_KNOWN_EPOCHS = 16
_TS = attrgetter("ts")
_SEQ = attrgetter("seq")


class _AbortedError(Exception):
    """The worker was aborted while waiting to retry a store call."""


class _GaveUp(Exception):
    """A store call kept failing transiently for store_retry_s: the records wait."""


@dataclass(frozen=True, slots=True)
class _Received:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    size: int  # the original size: payload holds only its start when too large
    too_large: bool = False


@dataclass
class _Group:
    """The records of one gateway outbox epoch in a batch, and the messages that carried them."""

    gateway_id: str
    epoch: str
    topic: str
    items: list[_Received] = field(default_factory=list)
    records: list[StorableRecord] = field(default_factory=list)
    done: list[int] = field(default_factory=list)  # seqs stored or dead-lettered
    written: set[int] = field(default_factory=set)  # seqs the store has dealt with
    letters: list[DeadLetter] = field(default_factory=list)


class IngestionWorker:
    """One ingestion worker: subscribe, validate, store, acknowledge; run N for scale-out.

    `on_status` / `on_snapshot` are called from the processing thread after validation
    (a snapshot after it is saved); `on_stored(gateway_id, epoch, seqs)` once records are
    stored or dead-lettered (the one place an end-to-end acknowledgement hooks in; by
    default it publishes the gateway's StoredAck on this worker's connection, see `_acks`);
    `on_epoch(gateway_id, epoch, first_seq)` when records of an outbox epoch this worker
    has not seen are stored. Their exceptions are logged and counted, never fatal.
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
        on_stored: StoredCallback | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        self.dead_letters: DeadLetterStore = dead_letters or MemoryDeadLetterStore()
        self._on_status = on_status
        self._on_snapshot = on_snapshot
        self.on_stored: StoredCallback | None = (
            on_stored if on_stored is not None else StoredAckPublisher(self._publish_ack))
        self._on_epoch = on_epoch
        self._stats = StatsCounter()
        self._queue: queue.Queue[_Received] = queue.Queue()
        # Bytes of payload queued: paho's thread waits when it is full, so a flood of large
        # messages cannot grow memory past max_queued_bytes (the broker holds the rest).
        self._queued_bytes = 0
        self._room = threading.Condition()
        self._window = TimeWindow(timedelta(seconds=config.ts_past_s),
                                  timedelta(seconds=config.ts_future_s))
        self._feature_names = FeatureNameLimit(config.max_features_per_asset)
        self._epochs: dict[str, list[str]] = {}
        # Records whose store write gave up (transient error): retried with backoff.
        self._held: list[_Group] = []
        self._held_until = 0.0
        self._held_backoff_s = 0.0
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
        cfg = self.config
        try:
            self._client = self._make_client()
        except MqttSetupError as err:
            raise IngestConnectError(f"cannot connect to {cfg.host}:{cfg.port}: {err}") from err
        self._thread = threading.Thread(
            target=self._process_loop, name=f"ingest-{self.config.client_id}", daemon=True
        )
        self._thread.start()
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
        self._held = []
        with self._room:
            self._queued_bytes = 0
            self._room.notify_all()
        self._stats.connected = False

    def __enter__(self) -> IngestionWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- paho callbacks (network thread) ----------------------------------------------

    def _make_client(self) -> mqtt.Client:
        cfg = self.config
        # With MQTT 3.1.1 a persistent session never expires; session_expiry_s is MQTT 5 only.
        client = build_client(
            cfg.broker, client_id=cfg.client_id, clean_start=cfg.clean_start,
            session_expiry_s=cfg.session_expiry_s, receive_maximum=cfg.receive_maximum,
            manual_ack=True,
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
        metrics.message_received(msg.topic)
        payload = msg.payload
        size = len(payload)
        cfg = self.config
        limit = (cfg.max_snapshot_bytes if msg.topic.endswith("/snapshot")
                 else cfg.max_payload_bytes)
        if size > limit:
            # Too large: keep only the start for the dead letter, never parse the rest.
            item = _Received(self._generation, msg.mid, msg.qos, msg.topic,
                             bytes(payload[:cfg.max_dead_letter_payload_bytes]), size, True)
        else:
            item = _Received(self._generation, msg.mid, msg.qos, msg.topic, bytes(payload), size)
        with self._room:
            while (self._queued_bytes > 0 and
                   self._queued_bytes + len(item.payload) > cfg.max_queued_bytes and
                   not self._abort.is_set()):
                self._room.wait(0.5)
            self._queued_bytes += len(item.payload)
        self._queue.put(item)

    def _taken(self, items: Sequence[_Received]) -> None:
        with self._room:
            self._queued_bytes = max(0, self._queued_bytes - sum(len(i.payload) for i in items))
            self._room.notify_all()

    # -- processing thread --------------------------------------------------------------

    def _process_loop(self) -> None:
        q = self._queue
        while not self._abort.is_set():
            if self._held and time.monotonic() >= self._held_until:
                try:
                    self._retry_held()
                except _AbortedError:
                    return
            try:
                first = q.get(timeout=0.05)
            except queue.Empty:
                if self._stopping.is_set():
                    return  # records still waiting stay unacknowledged: the broker keeps them
                continue
            batch = collect_batch(q, first, self.config, self._stopping)
            self._taken(batch)
            try:
                with paused_cyclic_gc():
                    self._handle(batch)
            except _AbortedError:
                return
            except Exception:  # never let one bad batch end ingestion
                log.exception("ingest %s: batch failed; it will be redelivered",
                              self.config.client_id)

    def _handle(self, batch: list[_Received]) -> None:
        now = datetime.now(UTC)
        self._stats.last_message_at = now
        groups: dict[tuple[str, str], _Group] = {}
        letters: list[DeadLetter] = []
        salvaged: list[tuple[str, str, list[int]]] = []
        to_ack: list[_Received] = []
        n_records = 0
        for item in batch:
            if item.too_large:
                limit = (self.config.max_snapshot_bytes if item.topic.endswith("/snapshot")
                         else self.config.max_payload_bytes)
                letters.append(self._letter(item, Rejected(
                    "too_large", f"payload of {item.size} bytes is over the limit of {limit}")))
                metrics.message_rejected(item.topic)
                to_ack.append(item)
                continue
            verdict = validate(item.topic, item.payload, self.registry,
                               window=self._window, now=now)
            if isinstance(verdict, Rejected):
                letters.append(self._letter(item, verdict))
                metrics.message_rejected(item.topic)
                if (found := _salvage_seqs(item)) is not None:
                    salvaged.append(found)
                to_ack.append(item)
                continue
            message = verdict.message
            if isinstance(message, GatewayStatus):
                self._stats.add(status_messages=1)
                self._call(self._on_status, message)
                to_ack.append(item)
            elif isinstance(message, WaveformSnapshot):
                try:
                    self._store_call(self.store.save_snapshot, message)
                except _GaveUp:
                    continue  # not acknowledged: the broker redelivers it after a reconnect
                except RecordRejectedError as err:
                    letters.append(self._letter(item, Rejected("store_rejected", str(err)),
                                                seq=message.seq))
                    to_ack.append(item)
                    continue
                self._stats.add(snapshots=1)
                self._call(self._on_snapshot, message)
                to_ack.append(item)
            else:
                n_records += len(message.records)
                gw, epoch = message.gateway_id, message.epoch
                group = groups.get((gw, epoch))
                if group is None:
                    group = groups[(gw, epoch)] = _Group(gw, epoch, item.topic)
                group.items.append(item)
                if verdict.refused is not None:
                    kept = {id(r) for r in verdict.records} | {id(r) for r in verdict.out_of_window}
                    refused = [r.seq for r in message.records if id(r) not in kept]
                    self._stats.add(records_refused=len(refused))
                    letters.append(self._letter(item, verdict.refused, epoch=epoch,
                                                seq=refused[0] if len(refused) == 1 else None))
                    group.done.extend(refused)
                for bad in verdict.invalid:
                    group.letters.append(self._raw_letter(group, bad.raw, bad.seq,
                                                          "invalid_record", bad.reason))
                for r in verdict.out_of_window:
                    group.letters.append(self._record_letter(
                        group, r, "ts_out_of_window", self._window.reason(r.ts, now)))
                for r in verdict.records:
                    too_many = self._feature_names.admit(r.asset_id, r.features)
                    if too_many is None:
                        group.records.append(r)
                    else:
                        group.letters.append(
                            self._record_letter(group, r, "too_many_features", too_many))
        # Every gateway's records get one attempt first; only then are the ones that met a
        # transient error retried in line, so one gateway's trouble does not delay the rest.
        done: list[_Group] = []
        failed: list[_Group] = []
        if len(groups) > 1 and self._store_together(list(groups.values())):
            done.extend(groups.values())
        else:
            for group in groups.values():
                (done if self._store_group(group, patient=False) else failed).append(group)
        for group in failed:
            if self._store_group(group, patient=True):
                done.append(group)
            else:
                self._hold(group)
        # Dead letters are durable before anything they cover is acknowledged.
        self._keep_letters([*letters, *(d for g in done for d in g.letters)])
        for gateway_id, epoch, seqs in salvaged:
            self._stored(gateway_id, epoch, seqs)
        for group in done:
            self._finish(group)
            to_ack.extend(group.items)
        # Counted once handled, so `received == n` means n messages are fully processed.
        self._stats.add(received=len(batch), records_received=n_records)
        self._ack(to_ack)

    # -- storing with isolation -----------------------------------------------------------

    def _store_together(self, groups: list[_Group]) -> bool:
        """Write every group of the batch in one store call (one statement, one commit).

        False if the store refused or failed: nothing of it is then guaranteed stored, and
        the groups are written one by one, a refused one split until the culprit is alone.
        """
        todo = [g for g in groups if g.records]
        try:
            results = self.store.write_batch(
                [RecordGroup(g.gateway_id, g.epoch, g.records) for g in todo])
        except RecordRejectedError as err:
            log.info("ingest %s: batch refused (%s); writing gateway by gateway",
                     self.config.client_id, err)
            return False
        except Exception as err:
            self._stats.add(store_errors=1)
            log.info("ingest %s: batch write failed (%s); writing gateway by gateway",
                     self.config.client_id, err)
            return False
        for group, result in zip(todo, results, strict=True):
            self._note_written(group, group.records, result)
        return True

    def _store_group(self, group: _Group, *, patient: bool = True) -> bool:
        """Write a group's records, isolating refused ones; False if the store stays down.

        Records the store dealt with in an earlier attempt are not written again.
        """
        group.records = [r for r in group.records if r.seq not in group.written]
        try:
            self._write_isolated(group, group.records, patient)
        except _GaveUp:
            return False
        return True

    def _write_isolated(
        self, group: _Group, records: Sequence[StorableRecord], patient: bool
    ) -> None:
        """Write records; if the store refuses the batch, split it until the culprit is alone."""
        if not records:
            return
        try:
            result = self._store_call(self.store.write_records, group.gateway_id, group.epoch,
                                      records, patient=patient)
        except RecordRejectedError as err:
            if len(records) == 1:
                group.letters.append(
                    self._record_letter(group, records[0], "store_rejected", str(err)))
                group.written.add(records[0].seq)
                return
            mid = len(records) // 2
            self._write_isolated(group, records[:mid], patient)
            self._write_isolated(group, records[mid:], patient)
            return
        self._note_written(group, records, result)

    def _note_written(
        self, group: _Group, records: Sequence[StorableRecord], result: WriteResult
    ) -> None:
        """Count a write of these records and dead-letter its conflicting repeats."""
        self._stats.add(stored=result.new, duplicates=result.duplicates)
        metrics.records_stored(self.store, result.new, map(datetime.timestamp, map(_TS, records)),
                               time.time())
        seqs = list(map(_SEQ, records))
        group.written.update(seqs)
        if not result.conflicts:
            group.done.extend(seqs)
            return
        # The refused copies of a seq are its last ones: the first copy in the batch was
        # written unless an earlier one was stored already.
        conflicts = collections.Counter(result.conflicts)
        for r in reversed(records):
            if conflicts[r.seq] > 0:
                conflicts[r.seq] -= 1
                group.letters.append(self._record_letter(
                    group, r, "conflict",
                    f"seq {r.seq} of epoch {group.epoch} is stored already with other content"))
            else:
                group.done.append(r.seq)

    def _store_call(self, action: Callable[..., _T], *args: Any, patient: bool = True) -> _T:
        """Call the store, retrying transient errors for at most store_retry_s (once if not
        patient).

        Raises _GaveUp after that (or at once for an unexpected error, which is logged),
        RecordRejectedError as is (a data error is never retried), _AbortedError on abort.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(_TRANSIENT),
            stop=stop_after_delay(self.config.store_retry_s) if patient else stop_after_attempt(1),
            wait=wait_exponential(multiplier=0.05, max=self.config.store_backoff_max_s),
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            return retrying(action, *args)
        except RecordRejectedError:
            raise
        except _AbortedError:
            raise
        except _TRANSIENT as err:
            self._stats.add(store_errors=1)
            if patient:
                log.warning("ingest %s: store unavailable (%s); records wait and are retried",
                            self.config.client_id, err)
            raise _GaveUp from err
        except Exception as err:
            self._stats.add(store_errors=1)
            log.exception("ingest %s: store call failed unexpectedly; records wait",
                          self.config.client_id)
            raise _GaveUp from err

    def _sleep(self, seconds: float) -> None:
        if self._abort.wait(seconds):
            raise _AbortedError

    def _count_retry(self, state: RetryCallState) -> None:
        self._stats.add(store_errors=1)
        err = state.outcome.exception() if state.outcome is not None else None
        log.warning("ingest %s: store failed (%s); retry %d", self.config.client_id, err,
                    state.attempt_number)

    def _hold(self, group: _Group) -> None:
        self._held.append(group)
        self._stats.add(store_give_ups=1)
        self._held_backoff_s = min(max(0.25, self._held_backoff_s * 2),
                                   self.config.store_backoff_max_s)
        self._held_until = time.monotonic() + self._held_backoff_s

    def _retry_held(self) -> None:
        held, self._held = self._held, []
        for group in held:
            if self._store_group(group):
                self._keep_letters(group.letters)
                self._finish(group)
                self._ack(group.items)
            else:
                self._hold(group)
        if not self._held:
            self._held_backoff_s = 0.0

    def _finish(self, group: _Group) -> None:
        """A group is stored: tell the epoch and stored-records hooks."""
        if group.done:
            self._note_epoch(group.gateway_id, group.epoch, min(group.done))
            self._stored(group.gateway_id, group.epoch, sorted(set(group.done)))

    def _note_epoch(self, gateway_id: str, epoch: str, first_seq: int) -> None:
        known = self._epochs.setdefault(gateway_id, [])
        if epoch in known:
            return
        known.append(epoch)
        del known[:-_KNOWN_EPOCHS]
        self._stats.add(epochs_seen=1)
        if self._on_epoch is not None:
            try:
                self._on_epoch(gateway_id, epoch, first_seq)
            except Exception:
                known.remove(epoch)  # try again with the next records
                self._stats.add(callback_errors=1)
                log.exception("ingest: on_epoch failed for %s/%s", gateway_id, epoch)

    def _stored(self, gateway_id: str, epoch: str, seqs: list[int]) -> None:
        """The single place the end-to-end acknowledgement hooks in (see `on_stored`)."""
        if self.on_stored is None or not seqs:
            return
        try:
            self.on_stored(gateway_id, epoch, seqs)
        except Exception:
            self._stats.add(callback_errors=1)
            log.exception("ingest: on_stored failed for %s/%s", gateway_id, epoch)

    def _publish_ack(self, topic: str, payload: bytes) -> None:
        client = self._client
        if client is None:
            raise IngestConnectError("the worker is stopped")
        info = client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise IngestConnectError(mqtt.error_string(info.rc))

    def _ack(self, items: Sequence[_Received]) -> None:
        client = self._client
        if client is None:
            return
        with self._gen_lock:
            for item in items:
                if item.generation == self._generation and item.qos > 0:
                    client.ack(item.mid, item.qos)

    # -- dead letters ---------------------------------------------------------------------

    def _letter(self, item: _Received, verdict: Rejected, *, epoch: str | None = None,
                seq: int | None = None) -> DeadLetter:
        gateway_id = _topic_gateway(item.topic)
        self._count_letter(verdict.reason_code, gateway_id, item.topic, verdict.reason)
        return DeadLetter.make(
            item.topic, item.payload, verdict.reason_code, verdict.reason,
            max_payload_bytes=self.config.max_dead_letter_payload_bytes,
            gateway_id=gateway_id, epoch=epoch, seq=seq, payload_size=item.size,
        )

    def _record_letter(self, group: _Group, record: StorableRecord, code: str,
                       reason: str) -> DeadLetter:
        raw = (record.model_dump(mode="json") if isinstance(record, FeatureRecord)
               else msgspec.to_builtins(record))
        return self._raw_letter(group, raw, record.seq, code, reason)

    def _raw_letter(self, group: _Group, raw: Any, seq: int | None, code: str,
                    reason: str) -> DeadLetter:
        """A dead letter of one record of a group (seq None: the record's own seq is bad)."""
        self._count_letter(code, group.gateway_id, group.topic, reason)
        if seq is not None:
            group.done.append(seq)
        body = json.dumps(raw, separators=(",", ":")).encode()
        return DeadLetter.make(
            group.topic, body, code, reason,
            max_payload_bytes=self.config.max_dead_letter_payload_bytes,
            gateway_id=group.gateway_id, epoch=group.epoch, seq=seq,
        )

    def _count_letter(self, code: str, gateway_id: str | None, topic: str, reason: str) -> None:
        count = self._stats.dead_letter(code, gateway_id)
        metrics.dead_letter(code)
        # The first few of each kind, then one line a minute: a flood must not drown logs.
        if count <= 10 or self._stats.log_due(code):
            log.warning("dead letter #%d (%s) on %s: %s", count, code, topic, reason)

    def _keep_letters(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        try:
            self.dead_letters.put_many(letters)
        except Exception:
            self._stats.add(dead_letter_store_errors=len(letters))
            log.exception("dead-letter store failed; %d letters are only counted and logged",
                          len(letters))

    def _call(self, callback: Callable[[Any], None] | None, message: object) -> None:
        if callback is None:
            return
        try:
            callback(message)
        except Exception:
            self._stats.add(callback_errors=1)
            log.exception("ingest callback failed for %s", type(message).__name__)


def collect_batch(
    q: queue.Queue[_Received], first: _Received, cfg: IngestConfig, stopping: threading.Event
) -> list[_Received]:
    """`first` and what follows it in the queue, up to the batch limits.

    A burst is waited for: up to `batch_linger_s` in all, as long as no gap between two
    messages is longer than `batch_gap_s` (and not once the worker is stopping).
    """
    batch = [first]
    size = len(first.payload)
    linger_until = time.monotonic() + cfg.batch_linger_s
    while len(batch) < cfg.max_batch_messages and size < cfg.max_batch_bytes:
        try:
            item = q.get_nowait()
        except queue.Empty:
            wait_s = min(cfg.batch_gap_s, linger_until - time.monotonic())
            if wait_s <= 0 or stopping.is_set():
                break
            try:
                item = q.get(timeout=wait_s)
            except queue.Empty:
                break  # the burst is over
        batch.append(item)
        size += len(item.payload)
    return batch


def _topic_gateway(topic: str) -> str | None:
    try:
        return parse_topic(topic)[0]
    except ValueError:
        return None


def _salvage_seqs(item: _Received) -> tuple[str, str, list[int]] | None:
    """(gateway, epoch, seqs) of a refused telemetry message, where its JSON still says them.

    A refused record is dead-lettered, so the gateway may drop it: the acknowledgement needs
    its seq even when the message around it broke the contract.
    """
    if not item.topic.endswith("/telemetry"):
        return None
    gateway_id = _topic_gateway(item.topic)
    try:
        body = json.loads(item.payload)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("gateway_id") != gateway_id:
        return None
    epoch, records = body.get("epoch"), body.get("records")
    if gateway_id is None or not isinstance(epoch, str) or not isinstance(records, list):
        return None
    seqs = [r["seq"] for r in records
            if isinstance(r, dict) and type(r.get("seq")) is int and 0 <= r["seq"] <= MAX_SEQ]
    return (gateway_id, epoch, seqs) if seqs else None
