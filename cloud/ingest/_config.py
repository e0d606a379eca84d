"""IngestConfig: how an ingestion worker reaches the broker and what it subscribes to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cloud.ingest._errors import IngestConfigError
from ironwatch.mqtt import BrokerSettings, MqttVersion
from ironwatch.wire import SNAPSHOT_FILTER, STATUS_FILTER, TELEMETRY_FILTER, shared_subscription

__all__ = ["IngestConfig"]

WEEK_S = 7 * 24 * 3600
# A worker reconnects quickly: while it is away the broker queues, and the queue grows.
_LOCAL_BROKER = BrokerSettings(reconnect_min_s=0.2, reconnect_max_s=5.0)


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    """Broker connection and session of one ingestion worker (the cloud maps its settings here).

    `broker` is the contract's `BrokerSettings` (address, login, TLS, MQTT version).

    The session is persistent (clean_start False, session expiry) so the broker queues
    messages while the worker is down; with `shared_group`, N workers with distinct
    client ids share one stream through MQTT 5 shared subscriptions. With protocol
    "3.1.1" the session is clean_session=False and never expires (session_expiry_s unused).
    """

    broker: BrokerSettings = _LOCAL_BROKER
    client_id: str = "ironwatch-ingest"
    shared_group: str | None = None
    clean_start: bool = False
    session_expiry_s: int = WEEK_S
    qos: Literal[1, 2] = 1
    topics: tuple[str, ...] = (TELEMETRY_FILTER, STATUS_FILTER, SNAPSHOT_FILTER)
    receive_maximum: int = 1000
    max_batch_messages: int = 200
    # A batch also ends at this much payload: 200 messages of 1,000 records each would
    # otherwise be 200,000 decoded records in memory at once.
    max_batch_bytes: int = 8 * 1024 * 1024
    # A batch also waits up to batch_linger_s for the rest of a burst, ending sooner when
    # no message came for batch_gap_s: after a batch is acknowledged the broker sends the
    # next window of messages within milliseconds, and a batch taken at its first message
    # would cost a whole store round trip for a handful of records.
    batch_linger_s: float = 0.05
    batch_gap_s: float = 0.005
    max_dead_letter_payload_bytes: int = 2 * 1024
    # Limits (docs/ingestion.md, "Limits"): a message larger than its kind's limit is
    # dead-lettered (`too_large`) without being parsed; a record whose ts lies outside
    # [now - ts_past_s, now + ts_future_s] of the cloud's clock is dead-lettered
    # (`ts_out_of_window`); an asset takes at most max_features_per_asset distinct feature
    # names (`too_many_features` beyond).
    max_payload_bytes: int = 4 * 1024 * 1024
    max_snapshot_bytes: int = 16 * 1024 * 1024
    max_queued_bytes: int = 128 * 1024 * 1024
    ts_past_s: float = 10 * 365.25 * 24 * 3600
    ts_future_s: float = 24 * 3600
    max_features_per_asset: int = 300
    # Transient store errors (connection, timeout, lock) are retried in line for at most
    # store_retry_s (after every other gateway of the batch had its turn), then the records
    # wait, unacknowledged, and are retried with backoff up to store_backoff_max_s while
    # newer messages go on. Data errors are never retried.
    store_retry_s: float = 0.25
    store_backoff_max_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.client_id:
            raise IngestConfigError("client_id is required: a persistent session is keyed by it")
        if self.qos not in (1, 2):
            # QoS 0 would lose records silently; at-least-once + dedup is the contract.
            raise IngestConfigError("qos must be 1 or 2")
        if (self.broker.username is None) != (self.broker.password is None):
            raise IngestConfigError("username and password go together")
        if not self.topics:
            raise IngestConfigError("topics must not be empty")
        if self.session_expiry_s < 0 or self.receive_maximum < 1 or self.max_batch_messages < 1:
            raise IngestConfigError("session_expiry_s, receive_maximum, max_batch_messages >= 0/1")
        sizes = (self.max_payload_bytes, self.max_snapshot_bytes, self.max_queued_bytes,
                 self.max_dead_letter_payload_bytes, self.max_features_per_asset,
                 self.max_batch_bytes)
        if min(sizes) < 1:
            raise IngestConfigError("payload, queue and feature limits must be >= 1")
        if self.ts_past_s <= 0 or self.ts_future_s <= 0:
            raise IngestConfigError("ts_past_s and ts_future_s must be > 0")
        if not 0 <= self.batch_gap_s <= self.batch_linger_s:
            raise IngestConfigError("0 <= batch_gap_s <= batch_linger_s")
        if self.store_retry_s < 0 or self.store_backoff_max_s <= 0:
            raise IngestConfigError("store_retry_s >= 0 and store_backoff_max_s > 0")

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port

    @property
    def protocol(self) -> MqttVersion:
        return self.broker.protocol

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """Topic filters as subscribed: wrapped in $share/<group>/ when a group is set."""
        if self.shared_group is None:
            return self.topics
        return tuple(shared_subscription(t, self.shared_group) for t in self.topics)
