"""What the cloud does with the physics a gateway reports in its birth message.

The gateway is configured with each asset's physics and computes features with it; the
cloud's copy comes from the fleet file or the API. They must describe the same machine:
where the cloud knows nothing (or only part), it learns the gateway's; where both state a
value and they differ, it keeps its own, logs a warning and shows the disagreement on the
asset (`AssetPublic.physics_mismatch`, the asset page) until one side is corrected.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from cloud.db.models import Asset
from cloud.domain.clock import require_utc
from ironwatch.physics import AssetPhysics, PhysicsDifference

__all__ = ["record_reported_physics"]

log = logging.getLogger(__name__)


def record_reported_physics(
    session: Session, *, gateway_id: str, physics: Mapping[str, AssetPhysics], now: datetime
) -> dict[str, list[PhysicsDifference]]:
    """Store each asset's reported physics, learn what the cloud lacks; return disagreements.

    An asset the gateway does not own (unknown, or registered under another gateway) is
    skipped with a warning: a gateway speaks only for its own assets. Flushes, no commit.
    """
    now = require_utc(now)
    mismatches: dict[str, list[PhysicsDifference]] = {}
    for asset_id, reported in physics.items():
        asset = session.get(Asset, asset_id)
        if asset is None or asset.gateway_id != gateway_id:
            log.warning("gateway %s reported physics for asset %s, which is not its own; ignored",
                        gateway_id, asset_id)
            continue
        news = asset.reported_physics != reported
        asset.reported_physics = reported
        asset.physics_reported_at = now
        if asset.physics is None:
            asset.physics = reported
            log.info("asset %s: physics learned from gateway %s", asset_id, gateway_id)
            continue
        completed = asset.physics.completed_by(reported)
        if completed != asset.physics:
            asset.physics = completed
            log.info("asset %s: unknown parts of its physics learned from gateway %s",
                     asset_id, gateway_id)
        differences = asset.physics.differences(reported)
        if differences:
            mismatches[asset_id] = differences
            if news:  # once per new report, not at every periodic status
                log.warning(
                    "asset %s: gateway %s disagrees about its physics: %s", asset_id, gateway_id,
                    "; ".join(f"{d.field} {d.ours!r} here, {d.theirs!r} on the gateway"
                              for d in differences),
                )
    session.flush()
    return mismatches
