"""Which gateways may send, and for which assets: the AssetRegistry the worker consults."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

__all__ = ["AssetRegistry", "MemoryAssetRegistry"]


@runtime_checkable
class AssetRegistry(Protocol):
    """Called for every message, from the ingestion thread: keep it fast (cache if remote)."""

    def gateway_known(self, gateway_id: str) -> bool: ...

    def asset_allowed(self, gateway_id: str, asset_id: str) -> bool: ...


class MemoryAssetRegistry:
    """An in-memory registry: gateway id -> the assets it may report; thread-safe updates."""

    def __init__(self, gateways: Mapping[str, Iterable[str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._assets: dict[str, frozenset[str]] = {
            gw: frozenset(assets) for gw, assets in (gateways or {}).items()
        }

    def add(self, gateway_id: str, assets: Iterable[str] = ()) -> None:
        """Register a gateway, or add assets to one already known."""
        with self._lock:
            self._assets[gateway_id] = self._assets.get(gateway_id, frozenset()) | set(assets)

    def remove(self, gateway_id: str) -> None:
        with self._lock:
            self._assets.pop(gateway_id, None)

    def gateway_known(self, gateway_id: str) -> bool:
        return gateway_id in self._assets

    def asset_allowed(self, gateway_id: str, asset_id: str) -> bool:
        return asset_id in self._assets.get(gateway_id, frozenset())

    @property
    def gateways(self) -> dict[str, frozenset[str]]:
        return dict(self._assets)
