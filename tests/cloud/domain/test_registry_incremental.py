"""The fleet registry reads only what changed between refreshes, and reloads on deletions."""

from __future__ import annotations

from sqlalchemy import select

from cloud.db import Asset, Gateway, SessionFactory
from cloud.domain import DbAssetRegistry


def test_refreshes_read_changed_rows_and_a_deletion_reloads_all(
    session_factory: SessionFactory,
) -> None:
    now = [0.0]
    registry = DbAssetRegistry(session_factory, ttl_s=5.0, clock=lambda: now[0])
    assert registry.asset_allowed("gw-1", "pump-1")
    assert registry.full_reloads == 1
    with session_factory() as s:
        s.add(Gateway(id="gw-new", name="", status={}))
        s.add(Asset(id="new-1", gateway_id="gw-new"))
        moved = s.scalars(select(Asset).where(Asset.id == "pump-1")).one()
        moved.gateway_id = "gw-2"  # re-wired to another gateway
        s.commit()
    now[0] = 6.0
    assert registry.gateway_known("gw-new") and registry.asset_allowed("gw-new", "new-1")
    assert registry.asset_allowed("gw-2", "pump-1")
    assert not registry.asset_allowed("gw-1", "pump-1")
    assert (registry.full_reloads, registry.incremental_reloads) == (1, 1)
    with session_factory() as s:
        s.delete(s.get(Asset, "new-1"))
        s.commit()
    now[0] = 12.0
    assert not registry.asset_allowed("gw-new", "new-1")  # the count disagreed: reloaded
    assert registry.full_reloads == 2
    now[0] = 400.0  # and now and then everything, whatever the counts say
    assert registry.gateway_known("gw-1")
    assert registry.full_reloads == 3
