"""Schemas of what the ingestion refused and noticed: dead letters, gateway events, counters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cloud.api.schemas.common import PublicModel, UtcTime

__all__ = ["DeadLetterPublic", "GatewayEventPublic", "IngestStatsPublic"]


class DeadLetterPublic(PublicModel):
    """A refused message or record: why, from whom, and the start of what was sent."""

    id: int
    received_at: UtcTime
    topic: str
    gateway_id: str | None
    epoch: str | None
    seq: int | None
    reason_code: str
    reason: str
    payload: str = Field(description="the payload's first bytes as UTF-8 (bad bytes replaced)")
    payload_size: int = Field(description="the payload's size as received, in bytes")
    payload_truncated: bool


class GatewayEventPublic(PublicModel):
    """Something about a gateway an operator should see, e.g. `new_epoch`."""

    id: int
    gateway_id: str
    at: UtcTime
    kind: str
    message: str
    detail: dict[str, Any]


class IngestStatsPublic(BaseModel):
    """Counters of this process's ingestion worker since it started (absent: none runs)."""

    running: bool
    stats: dict[str, Any] = Field(default_factory=dict)
    dead_letters_dropped: int = Field(
        0, description="oldest dead letters deleted to keep the table bounded"
    )
