"""Waveform snapshots as JSON files, for backends that cannot hold megabyte strings.

InfluxDB caps string fields at 64 KiB, so a raw waveform lives next to it on disk:
<dir>/<asset>/<point>/<ts_ns>-<gateway>-<snapshot key>.json, written atomically; one file
per (gateway, asset, snapshot id), so a resend is kept once and every asset's is kept.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from cloud.telemetry._errors import StoreUnavailableError
from cloud.telemetry._frame import datetime_to_ns
from ironwatch.wire import WaveformSnapshot

__all__ = ["SnapshotDirectory", "load_snapshot"]

log = logging.getLogger(__name__)


def load_snapshot(body: str | bytes, where: str) -> WaveformSnapshot | None:
    """A stored snapshot, or None (logged) if it no longer follows the wire contract.

    A snapshot stored by an older version (e.g. with `shaft_hz` rather than `speed_rpm`)
    is skipped rather than failing the caller: diagnosis then asks for a fresh one.
    """
    try:
        return WaveformSnapshot.model_validate_json(body)
    except ValidationError as err:
        log.warning("stored snapshot %s is not a valid snapshot (%s); ignored", where,
                    err.errors()[0]["msg"])
        return None


class SnapshotDirectory:
    """save / latest over a directory tree; ids are contract-checked, so safe as path parts."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def save(self, snapshot: WaveformSnapshot) -> bool:
        folder = self.root / snapshot.asset_id / snapshot.point
        name = f"{datetime_to_ns(snapshot.ts):020d}-{snapshot.gateway_id}-{snapshot.key}.json"
        path = folder / name
        if path.exists():
            return False
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "w") as fh:
                fh.write(snapshot.model_dump_json())
            os.replace(tmp, path)
        except OSError as err:
            raise StoreUnavailableError(f"cannot save snapshot under {folder}: {err}") from err
        return True

    def latest(self, asset_id: str, point: str | None = None) -> WaveformSnapshot | None:
        base = self.root / asset_id
        if not base.is_dir():
            return None
        folders = [base / point] if point is not None else [p for p in base.iterdir() if p.is_dir()]
        # File names start with the zero-padded timestamp, so the name orders by time.
        files = [f for d in folders if d.is_dir() for f in d.glob("*.json")]
        if not files:
            return None
        newest = max(files, key=lambda f: f.name)
        return load_snapshot(newest.read_text(), str(newest))
