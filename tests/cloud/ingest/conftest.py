"""Fixtures for ingestion tests: an embedded store, a registry, a worker factory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.ingest import IngestConfig, IngestionWorker, MemoryAssetRegistry
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.mqtt import BrokerSettings
from ironwatch_app.local_servers import Mosquitto


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteTelemetryStore]:
    s = SqliteTelemetryStore(tmp_path / "telemetry.db")
    yield s
    s.close()


@pytest.fixture
def registry() -> MemoryAssetRegistry:
    return MemoryAssetRegistry({"gw-1": {"asset-1", "asset-2"}, "gw-2": {"asset-3"}})


@pytest.fixture
def make_worker(
    mosquitto: Mosquitto, store: SqliteTelemetryStore, registry: MemoryAssetRegistry
) -> Iterator[Callable[..., IngestionWorker]]:
    workers: list[IngestionWorker] = []

    def make(*, start: bool = True, store_: Any = None, **config: Any) -> IngestionWorker:
        config.setdefault("client_id", f"ingest-{len(workers)}")
        broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
        cfg = IngestConfig(broker=broker, **config)
        w = IngestionWorker(cfg, store_ or store, registry)
        workers.append(w)
        if start:
            w.start()
        return w

    yield make
    for w in workers:
        w.stop(drain=False)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def until() -> Callable[..., None]:
    return wait_for
