"""Helpers for tests and benchmarks: synthetic telemetry messages and a blocking publisher.

Not used by the service itself; kept here so tests, bench/ingest.py and the chaos test
build messages the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ironwatch.wire import FeatureRecord, TelemetryMessage, encode, telemetry_topic

__all__ = ["Publisher", "make_records", "make_telemetry"]

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_records(
    first_seq: int,
    n: int,
    *,
    assets: Sequence[str] = ("asset-1",),
    point: str = "de_radial",
    n_features: int = 8,
    t0: datetime = _T0,
) -> list[FeatureRecord]:
    """n records with consecutive seqs, cycling over assets, one second apart."""
    names = ["accel_rms_ms2", "velocity_rms_mms", "temperature_c", "speed_rpm", "crest_factor",
             "kurtosis", "skewness", "bpfo_amp_ms2"]
    names += [f"band{i}_ms2" for i in range(max(0, n_features - len(names)))]
    names = names[:n_features]
    return [
        FeatureRecord(
            seq=s,
            asset_id=assets[s % len(assets)],
            point=point,
            ts=t0 + timedelta(seconds=s),
            window_s=1.0,
            features={k: float(s % 97) + j * 0.5 for j, k in enumerate(names)},
        )
        for s in range(first_seq, first_seq + n)
    ]


#: The outbox epoch synthetic telemetry uses unless a test asks for another.
EPOCH = "00000000000e0c01"


def make_telemetry(
    gateway_id: str, records: Sequence[FeatureRecord], *, epoch: str = EPOCH
) -> TelemetryMessage:
    return TelemetryMessage(
        gateway_id=gateway_id, epoch=epoch, seq=records[0].seq, sent_at=datetime.now(UTC),
        records=list(records),
    )


class Publisher:
    """A QoS 1 MQTT 5 publisher that waits for every PUBACK before returning."""

    def __init__(self, host: str, port: int, *, client_id: str = "",
                 username: str | None = None, password: str | None = None) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self.client.on_connect = lambda *_a: self._connected.set()
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError(f"no CONNACK from {host}:{port}")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos)

    def publish_telemetry(self, messages: Iterable[TelemetryMessage], timeout_s: float = 30) -> int:
        """Publish and wait for all PUBACKs; returns the number of records sent."""
        infos, n = [], 0
        for m in messages:
            infos.append(self.publish(telemetry_topic(m.gateway_id), encode(m)))
            n += len(m.records)
        for info in infos:
            info.wait_for_publish(timeout_s)
        return n

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
