"""MQTT side of the gateway: outbox batches out, PUBACKs back, status and commands.

Delivery: records are read from the outbox in seq order, batched into `TelemetryMessage`s
(bounded in records and bytes) and published at QoS 1, at most `max_inflight_batches` at a
time. paho keeps every unacknowledged message and re-sends it, in order, after a
reconnect; a batch's records are deleted from the outbox only when its PUBACK arrives
(`on_publish` gives the mid, mapped back to the batch). After a restart, whatever is still
in the outbox is sent again: at-least-once, and the cloud deduplicates on (gateway, seq).

paho runs its network thread (`loop_start`); its callbacks only queue events, and `pump()`
does the work in the caller's thread. That keeps SQLite and the batch map in one thread
and avoids waiting on our locks while paho holds its own.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from pydantic import ValidationError

from edge_agent._errors import ConfigError
from edge_agent.config import EdgeConfig
from edge_agent.outbox import OutboxQueue, StoredRecord
from ironwatch.wire import (
    Command,
    FeatureRecord,
    GatewayStatus,
    TelemetryMessage,
    WaveformSnapshot,
    WireError,
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


@dataclass
class PublisherCounters:
    """What the MQTT side did since start; `sent` counts records the broker acknowledged."""

    sent: int = 0
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
        self._connected = threading.Event()
        self._stopping = False
        self.client = self._make_client()

    # -- set-up -------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        m = self.config.mqtt
        v5 = m.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        if m.username is not None:
            password = m.password.get_secret_value() if m.password is not None else None
            client.username_pw_set(m.username, password)
        if m.tls is not None:
            try:
                client.tls_set(
                    ca_certs=str(m.tls.ca_file) if m.tls.ca_file else None,
                    certfile=str(m.tls.cert_file) if m.tls.cert_file else None,
                    keyfile=str(m.tls.key_file) if m.tls.key_file else None,
                    cert_reqs=ssl.CERT_NONE if m.tls.insecure else ssl.CERT_REQUIRED,
                )
            except (OSError, ssl.SSLError, ValueError) as err:
                raise ConfigError(f"mqtt.tls: cannot load certificates: {err}") from err
            client.tls_insecure_set(m.tls.insecure)
        # Telemetry batches plus room for status and snapshot messages.
        client.max_inflight_messages_set(m.max_inflight_batches + 4)
        client.reconnect_delay_set(min_delay=max(1, round(m.reconnect_min_s)),
                                   max_delay=max(1, round(m.reconnect_max_s)))
        will = self._status("offline")
        client.will_set(status_topic(self._gw), encode(will), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background; paho retries with backoff until the broker answers."""
        m = self.config.mqtt
        self.client.connect_async(m.host, m.port, keepalive=m.keepalive_s)
        self.client.loop_start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def inflight_batches(self) -> int:
        return len(self._inflight)

    # -- paho callbacks (network thread): queue events only -----------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                    _props: Any) -> None:
        if reason.is_failure:
            _log.warning("broker refused the connection: %s", reason)
            return
        self._connected.set()
        self.counters.connects += 1
        client.subscribe(command_topic(self._gw), qos=1)
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
        """Apply PUBACKs and hand new batches to paho; waits up to timeout_s for an event."""
        try:
            event = self._events.get(timeout=timeout_s)
        except queue.Empty:
            event = None
        while event is not None:
            kind, mid = event
            if kind == "ack":
                self._acked(mid)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                event = None
        self._fill()

    def _acked(self, mid: int) -> None:
        seqs = self._inflight.pop(mid, None)
        if seqs is None:
            return  # status or snapshot
        self.outbox.ack(seqs)
        self.counters.sent += len(seqs)

    def _fill(self) -> None:
        m = self.config.mqtt
        while len(self._inflight) < m.max_inflight_batches:
            stored = self.outbox.peek(self._cursor, m.max_records_per_message)
            if not stored:
                return
            records = self._records(stored)
            if not records:
                continue
            payload, n = self._encode_batch(records)
            info = self.client.publish(telemetry_topic(self._gw), payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                # Queue full or a client error: try again on the next pump.
                _log.warning("publish refused: %s", mqtt.error_string(info.rc))
                return
            # NO_CONN still queues the message in paho; it goes out after the reconnect.
            sent = records[:n]
            self._inflight[info.mid] = [r.seq for r in sent]
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
        while self.connected and time.monotonic() < deadline and (
            len(self.outbox) or self._inflight
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
