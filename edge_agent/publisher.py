"""MQTT side of the gateway: outbox batches out, PUBACKs and stored-acks back, status, commands.

Delivery: records are read from the outbox in seq order, batched into `TelemetryMessage`s
(bounded in records and bytes) and published at QoS 1, at most `max_inflight_batches` at a
time. paho keeps every unacknowledged message and re-sends it, in order, after a
reconnect. A PUBACK (`on_publish` gives the mid, mapped back to the batch) only means the
broker has the batch: its records then *await the cloud*. They are deleted from the outbox
when the cloud's `StoredAck` for this outbox's epoch names them (end-to-end
acknowledgement), so a broker that dies before saving its queue loses nothing.

Records awaiting the cloud are sent again, in seq order, after every reconnect (the broker
may have restarted without them) and when no StoredAck has arrived for
`stored_ack_timeout_s` (the wait doubles on each try, up to an hour, until one arrives).
At most `max_unstored_records` are out at once. After a restart whatever is still in the
outbox is sent again: at-least-once, and the cloud deduplicates on (gateway, epoch, seq).

paho runs its network thread (`loop_start`); its callbacks only queue events, and `pump()`
does the work in the caller's thread. That keeps SQLite and the batch map in one thread
and avoids waiting on our locks while paho holds its own.
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from pydantic import ValidationError

from edge_agent._errors import ConfigError
from edge_agent.config import EdgeConfig
from edge_agent.outbox import OutboxQueue, StoredRecord
from ironwatch.mqtt import MqttSetupError, Will, build_client
from ironwatch.wire import (
    Command,
    FeatureRecord,
    GatewayStatus,
    StoredAck,
    TelemetryMessage,
    WaveformSnapshot,
    WireError,
    ack_topic,
    command_topic,
    decode,
    encode,
    snapshot_topic,
    status_topic,
    telemetry_topic,
    utc_now,
)

__all__ = ["MqttPublisher", "PublisherCounters"]

_log = logging.getLogger(__name__)

_MAX_ACK_WAIT_S = 3600.0


@dataclass
class PublisherCounters:
    """What the MQTT side did since start.

    `sent` counts records the broker acknowledged (PUBACK), `stored` records the cloud
    acknowledged as stored (StoredAck), `resent` records sent again because no StoredAck
    came in time or the connection was new.
    """

    sent: int = 0
    stored: int = 0
    resent: int = 0
    foreign_acks: int = 0
    bad_acks: int = 0
    batches: int = 0
    connects: int = 0
    disconnects: int = 0
    bad_commands: int = 0
    invalid_records: int = 0
    snapshots: int = 0

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


class MqttPublisher:
    """Owns the paho client; call `start()`, then `pump()` often, then `stop()`."""

    def __init__(
        self,
        config: EdgeConfig,
        outbox: OutboxQueue,
        *,
        status: Callable[[str], GatewayStatus],
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.counters = PublisherCounters()
        self._status = status
        self._gw = config.gateway_id
        self._events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._inflight: dict[int, list[int]] = {}  # mid -> record seqs of that batch
        self._cursor = -1  # highest seq handed to paho
        # seq -> monotonic time of its PUBACK: with the broker, not yet stored by the cloud.
        self._awaiting: dict[int, float] = {}
        self._resend: list[int] = []  # awaiting records to send again, in seq order
        self._resent_mids: set[int] = set()  # batches in flight that are such re-sends
        self._ack_wait_s = config.mqtt.stored_ack_timeout_s
        self._last_progress = time.monotonic()
        self._cloud_seen = False  # a StoredAck arrived in this run
        self._connected = threading.Event()
        self._stopping = False
        self.client = self._make_client()

    # -- set-up -------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        m = self.config.mqtt
        will = Will(status_topic(self._gw), encode(self._status("offline")), qos=1, retain=True)
        try:
            # Telemetry batches plus room for status and snapshot messages in flight.
            client = build_client(m, client_id=self.config.client_id, will=will,
                                  max_inflight_messages=m.max_inflight_batches + 4)
        except MqttSetupError as err:
            raise ConfigError(f"mqtt: {err}") from err
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background; paho retries with backoff until the broker answers."""
        self.client.loop_start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def inflight_batches(self) -> int:
        return len(self._inflight)

    @property
    def awaiting_cloud(self) -> int:
        """Records the broker acknowledged whose StoredAck has not come yet.

        Also read from paho's thread (the birth message): the set is copied in one step.
        """
        again = sum(len(self._inflight.get(mid, ())) for mid in tuple(self._resent_mids))
        return len(self._awaiting) + len(self._resend) + again

    # -- paho callbacks (network thread): queue events only -----------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                    _props: Any) -> None:
        if reason.is_failure:
            _log.warning("broker refused the connection: %s", reason)
            return
        self._connected.set()
        self.counters.connects += 1
        client.subscribe([(command_topic(self._gw), 1), (ack_topic(self._gw), 1)])
        self._events.put(("connect", None))
        # Birth message, retained, so the cloud sees the gateway online at once.
        client.publish(status_topic(self._gw), encode(self._status("online")), qos=1,
                       retain=True)
        _log.info("connected to %s:%d (connect %d)", self.config.mqtt.host,
                  self.config.mqtt.port, self.counters.connects)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any) -> None:
        if self._connected.is_set() and not self._stopping:
            self.counters.disconnects += 1
            _log.warning("disconnected from broker (%s); reconnecting with backoff", reason)
        self._connected.clear()

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any,
                    _props: Any) -> None:
        self._events.put(("ack", mid))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == ack_topic(self._gw):
            try:
                ack = decode(msg.topic, bytes(msg.payload))
                if not isinstance(ack, StoredAck):
                    raise WireError(f"expected a stored-ack, got {ack.type}")
            except WireError as err:
                self.counters.bad_acks += 1
                _log.warning("ignoring malformed stored-ack on %s: %s", msg.topic, err.reason)
                return
            self._events.put(("stored", ack))
            return
        try:
            message = decode(msg.topic, bytes(msg.payload))
            if not isinstance(message, Command):
                raise WireError(f"expected a command, got {message.type}")
        except WireError as err:
            self.counters.bad_commands += 1
            _log.warning("ignoring malformed command on %s: %s", msg.topic, err.reason)
            return
        self.commands.put(message)

    # -- the work (caller's thread) -----------------------------------------------------------
    def pump(self, timeout_s: float = 0.1) -> None:
        """Apply PUBACKs and StoredAcks, re-send what timed out, hand new batches to paho.

        Waits up to timeout_s for an event.
        """
        try:
            event = self._events.get(timeout=timeout_s)
        except queue.Empty:
            event = None
        while event is not None:
            kind, value = event
            if kind == "ack":
                self._acked(value)
            elif kind == "stored":
                self._stored(value)
            elif kind == "connect":
                self._rewind("reconnected")
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                event = None
        self._check_ack_timeout()
        self._fill()

    def _acked(self, mid: int) -> None:
        seqs = self._inflight.pop(mid, None)
        self._resent_mids.discard(mid)
        if seqs is None:
            return  # status or snapshot
        now = time.monotonic()
        if not self._awaiting:
            self._last_progress = now  # the wait for the cloud starts now
        for seq in seqs:
            self._awaiting[seq] = now
        self.counters.sent += len(seqs)

    def _stored(self, ack: StoredAck) -> None:
        """The cloud stored these records: delete them; a stale epoch's ack changes nothing."""
        if ack.epoch != self.outbox.epoch:
            self.counters.foreign_acks += 1
            _log.info("stored-ack for outbox epoch %s ignored (this outbox is %s)", ack.epoch,
                      self.outbox.epoch)
            return
        ranges = sorted(ack.ranges)
        firsts = [first for first, _ in ranges]

        def covered(seq: int) -> bool:
            i = bisect.bisect_right(firsts, seq) - 1
            return i >= 0 and seq <= ranges[i][1]

        deleted = self.outbox.ack_ranges(ranges)
        self._cloud_seen = True
        # Walk whichever is shorter: the acknowledged seqs or the records awaiting the cloud.
        if sum(last - first + 1 for first, last in ranges) <= len(self._awaiting):
            for first, last in ranges:
                for seq in range(first, last + 1):
                    self._awaiting.pop(seq, None)
        else:
            for seq in [s for s in self._awaiting if covered(s)]:
                del self._awaiting[seq]
        if self._resend:
            self._resend = [s for s in self._resend if not covered(s)]
        for mid, seqs in self._inflight.items():
            # Stored before its PUBACK came (a re-send overtaken by the first copy's ack).
            if any(covered(s) for s in seqs):
                self._inflight[mid] = [s for s in seqs if not covered(s)]
        self.counters.stored += deleted
        if deleted:
            self._last_progress = time.monotonic()
            self._ack_wait_s = self.config.mqtt.stored_ack_timeout_s

    def _check_ack_timeout(self) -> None:
        if not self._awaiting or not self.connected:
            return
        now = time.monotonic()
        oldest = next(iter(self._awaiting.values()))
        if now - max(oldest, self._last_progress) < self._ack_wait_s:
            return
        self._rewind(f"no stored-ack for {self._ack_wait_s:.0f} s")
        self._last_progress = now
        self._ack_wait_s = min(self._ack_wait_s * 2, max(_MAX_ACK_WAIT_S,
                                                         self.config.mqtt.stored_ack_timeout_s))

    def _rewind(self, why: str) -> None:
        """Queue every record awaiting the cloud to be sent again, oldest first."""
        if not self._awaiting:
            return
        _log.info("sending %d records again that await the cloud (%s)", len(self._awaiting), why)
        self._resend = sorted({*self._resend, *self._awaiting})
        self._awaiting.clear()

    def _out(self) -> int:
        """Records handed to the broker and not yet stored by the cloud."""
        return sum(len(s) for s in self._inflight.values()) + len(self._awaiting)

    def _fill(self) -> None:
        m = self.config.mqtt
        # A full outbox drops unsent records first; keeping room for them keeps the newest.
        window = max(1, min(m.max_unstored_records, self.outbox.max_records // 2))
        while len(self._inflight) < m.max_inflight_batches and self._out() < window:
            resend = bool(self._resend)
            if resend:
                chunk = self._resend[: m.max_records_per_message]
                stored = self.outbox.get(chunk)
                del self._resend[: len(chunk)]
            else:
                stored = self.outbox.peek(self._cursor, m.max_records_per_message)
            if not stored:
                if resend:
                    continue  # stored meanwhile, or dropped for room
                return
            records = self._records(stored)
            if not records:
                continue
            payload, n = self._encode_batch(records)
            info = self.client.publish(telemetry_topic(self._gw), payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                # Queue full or a client error: try again on the next pump.
                _log.warning("publish refused: %s", mqtt.error_string(info.rc))
                if resend:
                    self._resend[:0] = [r.seq for r in records]
                return
            # NO_CONN still queues the message in paho; it goes out after the reconnect.
            sent = records[:n]
            self._inflight[info.mid] = [r.seq for r in sent]
            self.outbox.mark_sent(sent[-1].seq)
            if resend:
                self._resent_mids.add(info.mid)
                self.counters.resent += n
                self._resend[:0] = [r.seq for r in records[n:]]
            else:
                self._cursor = sent[-1].seq
            self.counters.batches += 1

    def _records(self, stored: list[StoredRecord]) -> list[FeatureRecord]:
        records: list[FeatureRecord] = []
        bad: list[int] = []
        for item in stored:
            try:
                records.append(FeatureRecord.model_validate(item.fields()))
            except (ValidationError, ValueError) as err:
                bad.append(item.seq)
                _log.error("dropping outbox record %d, it breaks the wire contract: %s",
                           item.seq, err)
        if bad:
            # A record that can never be sent must not block the queue behind it.
            self.counters.invalid_records += len(bad)
            self.outbox.ack(bad)
            self._cursor = max(self._cursor, *bad)
        return records

    def _encode_batch(self, records: list[FeatureRecord]) -> tuple[bytes, int]:
        """The largest prefix of records that fits max_message_bytes (at least one record)."""
        n = len(records)
        while True:
            msg = TelemetryMessage(gateway_id=self._gw, epoch=self.outbox.epoch,
                                   seq=records[0].seq, sent_at=utc_now(),
                                   records=records[:n])
            payload = encode(msg)
            if len(payload) <= self.config.mqtt.max_message_bytes or n == 1:
                return payload, n
            n = max(1, n * self.config.mqtt.max_message_bytes // len(payload) * 9 // 10)

    @property
    def unsent(self) -> int:
        """Records in the outbox the broker has not acknowledged yet."""
        return max(0, len(self.outbox) - self.awaiting_cloud)

    def publish_status(self) -> bool:
        """Retained periodic status; skipped while disconnected (a newer one follows)."""
        if not self.connected:
            return False
        self.client.publish(status_topic(self._gw), encode(self._status("online")), qos=1,
                            retain=True)
        return True

    def publish_snapshot(self, snapshot: WaveformSnapshot) -> bool:
        if not self.connected:
            return False
        self.client.publish(snapshot_topic(self._gw), encode(snapshot), qos=1)
        self.counters.snapshots += 1
        return True

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Try to deliver what is queued, publish 'offline' (retained), then disconnect."""
        deadline = time.monotonic() + flush_timeout_s
        # Hand the broker what is left; wait for the cloud's StoredAcks too if a cloud has
        # answered in this run (records still awaiting it are sent again at the next start).
        while self.connected and time.monotonic() < deadline and (
            self.unsent or self._inflight or self._resend
            or (self._cloud_seen and self._awaiting)
        ):
            self.pump(0.05)
        if self.connected:
            info = self.client.publish(status_topic(self._gw), encode(self._status("offline")),
                                       qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.5, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as err:
                _log.debug("offline status not confirmed: %s", err)
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        # paho closes its wake-up socket pair only in __del__, which the garbage collector
        # may run after the sockets' own finalizers (ResourceWarning); close them now.
        reset = getattr(self.client, "_reset_sockets", None)
        if callable(reset):
            reset()
