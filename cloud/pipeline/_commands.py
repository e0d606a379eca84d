"""Asking gateways for raw waveform snapshots: diagnosis needs the waveform, not just features.

The pipeline asks when an asset's anomaly persists and no snapshot since its onset has
arrived; the dashboard asks when an engineer clicks. Commands go to the asset's gateway
on `ironwatch/v1/<gateway>/command` at QoS 1, so an offline gateway gets it on return.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from cloud.db.engine import SessionFactory
from cloud.db.models import Asset
from cloud.settings import CloudSettings
from ironwatch.mqtt import build_client
from ironwatch.wire import Command, command_topic, encode

__all__ = ["GatewayCommands", "SnapshotRequestError"]

log = logging.getLogger(__name__)


class SnapshotRequestError(LookupError):
    """The command could not be addressed (unknown asset, asset without a gateway)."""


class GatewayCommands:
    """Publishes commands to gateways over its own MQTT connection (reconnects by itself)."""

    def __init__(
        self,
        settings: CloudSettings,
        session_factory: SessionFactory,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.clock = clock or (lambda: datetime.now(UTC))
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        s = self.settings
        # Asynchronous: the cloud must come up even while the broker is still down.
        client = build_client(s.broker, client_id=f"{s.mqtt_client_id}-commands")
        client.loop_start()
        self._client = client

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def request_snapshot(self, asset_id: str, point: str | None, actor: str) -> str:
        """Send a snapshot command to the asset's gateway; returns the command id."""
        with self.session_factory() as session:
            asset = session.get(Asset, asset_id)
            gateway_id = asset.gateway_id if asset is not None else None
        if gateway_id is None:
            raise SnapshotRequestError(f"asset {asset_id} is unknown or has no gateway")
        command = Command(
            command_id=f"snap-{secrets.token_hex(6)}",
            issued_at=self.clock(),
            action="snapshot",
            asset_id=asset_id,
            point=point,
        )
        with self._lock:
            if self._client is None:
                raise SnapshotRequestError("the command channel is not running")
            # QoS 1 is queued by paho while disconnected and sent on reconnect.
            self._client.publish(command_topic(gateway_id), encode(command), qos=1)
        log.info("snapshot of %s/%s requested from %s by %s (%s)", asset_id, point or "*",
                 gateway_id, actor, command.command_id)
        return command.command_id
