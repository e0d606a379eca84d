"""The gateway's status counters as Prometheus series: one table for both sides.

A gateway exports its own counters on its metrics port, and the cloud re-exports the
counters each gateway sends in its status message. Both read this table, so a series has
the same name and meaning wherever it is scraped (Prometheus tells them apart by `job`).
Pure data: no metrics library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["GATEWAY_COUNTER_SERIES", "CounterSeries"]


@dataclass(frozen=True, slots=True)
class CounterSeries:
    """How one status counter is exported: series name (units in it), kind and help."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str


def _c(name: str, help_text: str) -> CounterSeries:
    return CounterSeries(f"ironwatch_gateway_{name}_total", "counter", help_text)


def _g(name: str, help_text: str) -> CounterSeries:
    return CounterSeries(f"ironwatch_gateway_{name}", "gauge", help_text)


# Status counter name (GatewayStatus.counters, docs/gateway.md) -> series.
GATEWAY_COUNTER_SERIES: dict[str, CounterSeries] = {
    "produced": _c("records_produced", "Records written to the outbox since start."),
    "queued": _g("outbox_unsent_records", "Records in the outbox not yet taken by the broker."),
    "awaiting_cloud": _g(
        "outbox_awaiting_cloud_records",
        "Records the broker took that the cloud has not yet confirmed stored.",
    ),
    "sent": _c("records_sent", "Records acknowledged by the broker since start."),
    "stored": _c("records_stored", "Records the cloud confirmed stored since start."),
    "resent": _c("records_resent", "Records sent again after a reconnect or a stored-ack timeout."),
    "foreign_acks": _c("foreign_acks", "Stored-acks for another outbox epoch, ignored."),
    "dropped": _c(
        "outbox_dropped_records", "Records deleted unsent because the outbox was full (lost)."
    ),
    "dropped_sent": _c(
        "outbox_dropped_sent_records",
        "Records deleted for room after they had been sent (the cloud may have them).",
    ),
    "outbox_errors": _c("outbox_errors", "Failed outbox writes (disk full, I/O error)."),
    "decode_errors": _c("serial_decode_errors", "Corrupt serial frames (CRC errors, malformed)."),
    "windows": _c("serial_windows", "Waveform windows computed."),
    "window_gaps": _c("serial_window_gaps", "Partial windows dropped at a sample gap."),
    "feature_errors": _c("feature_errors", "Windows or frames that gave no features."),
    "identity_mismatches": _c(
        "serial_identity_mismatches", "Hello frames from a sensor that is not the pinned one."
    ),
    "unverified_frames": _c(
        "serial_unverified_frames", "Frames dropped before their sensor's identity was confirmed."
    ),
    "poll_failures": _c("modbus_poll_failures", "Modbus polls that failed."),
    "stale_values": _c("modbus_stale_values", "Modbus values passed on as stale."),
    "reconnects": _c("mqtt_reconnects", "MQTT reconnections since start."),
    "bad_commands": _c("bad_commands", "Commands from the cloud that were refused."),
    "invalid_records": _c(
        "invalid_records", "Outbox records that broke the wire contract and were discarded."
    ),
    "snapshots": _c("snapshots", "Waveform snapshots sent."),
    "snapshot_misses": _c("snapshot_misses", "Snapshot requests with no raw window to send."),
}
