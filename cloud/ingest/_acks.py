"""Stored-acks: the cloud tells each gateway which of its records are stored.

The end-to-end acknowledgement of the wire contract. A gateway deletes a record from its
outbox only once a `StoredAck` on `ack_topic(gateway)` names it, so the broker is never
the only holder of a record. The ingestion worker calls `StoredAckPublisher` after a
batch is written (or dead-lettered: a record the cloud has put in the dead-letter store is
handled too, and re-sending it would not change that), as its `on_stored(gateway_id,
epoch, seqs)` callback; seqs are sent as inclusive ranges, QoS 1. A lost ack costs a
re-send, which the store's dedup absorbs and acknowledges again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from ironwatch.wire import MAX_RECORDS_PER_MESSAGE, StoredAck, ack_topic, encode, utc_now

__all__ = ["StoredAckPublisher", "seq_ranges"]

log = logging.getLogger(__name__)


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive (first, last) runs of seqs; duplicates are harmless."""
    runs: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


class StoredAckPublisher:
    """`on_stored` for the ingestion worker: one StoredAck per call, split if very long.

    `publish(topic, payload)` sends at QoS 1 (the worker passes its own MQTT client's).
    Publishing failures are logged and counted in `failures`, never raised: the gateway
    sends the records again and the next ack covers them.
    """

    def __init__(self, publish: Callable[[str, bytes], None]) -> None:
        self._publish = publish
        self.sent = 0
        self.failures = 0

    def __call__(self, gateway_id: str, epoch: str, seqs: Iterable[int]) -> None:
        ranges = seq_ranges(seqs)
        for i in range(0, len(ranges), MAX_RECORDS_PER_MESSAGE):
            try:
                ack = StoredAck(gateway_id=gateway_id, epoch=epoch, sent_at=utc_now(),
                                ranges=ranges[i : i + MAX_RECORDS_PER_MESSAGE])
                self._publish(ack_topic(gateway_id), encode(ack))
            except Exception as err:
                self.failures += 1
                log.warning("stored-ack to %s not sent: %s", gateway_id, err)
                return
            self.sent += 1
