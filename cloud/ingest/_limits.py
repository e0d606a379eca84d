"""Per-asset limits the ingestion enforces on valid records: distinct feature names."""

from __future__ import annotations

import threading
from collections.abc import Iterable

__all__ = ["FeatureNameLimit"]


class FeatureNameLimit:
    """At most `max_names` distinct feature names per asset, learnt from accepted records.

    A record that would take its asset past the limit is refused whole (its other values
    are stored nowhere half): a gateway inventing names cannot make every query and model
    of that asset carry thousands of columns. Memory: assets x max_names names.
    """

    def __init__(self, max_names: int) -> None:
        if max_names < 1:
            raise ValueError("max_names must be >= 1")
        self.max_names = max_names
        self._names: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def admit(self, asset_id: str, names: Iterable[str]) -> str | None:
        """None if the record's names fit (they are learnt), else the reason it does not."""
        known = self._names.get(asset_id)
        if known is not None and known.issuperset(names):
            return None  # the usual case, read without the lock: a set only ever grows
        with self._lock:
            known = self._names.setdefault(asset_id, set())
            if known.issuperset(names):
                return None  # the rule: an asset's names are all known already
            new = [n for n in names if n not in known]
            if len(known) + len(new) > self.max_names:
                return (f"asset {asset_id!r} already has {len(known)} feature names; "
                        f"{len(new)} more would pass the limit of {self.max_names}")
            known.update(new)
            return None

    def names(self, asset_id: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._names.get(asset_id, ()))
