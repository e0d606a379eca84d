"""The gateway process: sources feed a point table, each interval goes to the outbox, then MQTT.

`EdgeAgent.run(stop)` is the main loop: it pumps the MQTT publisher, turns each reporting
interval into one record per (asset, point), sends periodic status, answers commands and
logs progress. Acquisition runs in one thread per source; paho in its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from edge_agent._errors import OutboxError
from edge_agent.acquisition import ModbusCoordinator, PointTable, SerialCoordinator
from edge_agent.acquisition.modbus import ModbusReader
from edge_agent.acquisition.serial import FrameSource
from edge_agent.config import EdgeConfig, ModbusSourceConfig, SerialSourceConfig
from edge_agent.metrics import GatewayMetrics
from edge_agent.outbox import OutboxQueue
from edge_agent.publisher import MqttPublisher
from ironwatch import __version__
from ironwatch.wire import Command, GatewayStatus, WaveformSnapshot, utc_now

__all__ = ["EdgeAgent"]

_log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 10.0


class EdgeAgent:
    """One gateway: build it from an `EdgeConfig`, `run()` it until the stop event is set."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        serial_factory: Callable[[SerialSourceConfig], FrameSource] | None = None,
        modbus_factory: Callable[[ModbusSourceConfig], ModbusReader] | None = None,
    ) -> None:
        self.config = config
        self.reporting_interval_s = config.reporting_interval_s
        self.produced = 0
        self.snapshot_misses = 0
        self.outbox_errors = 0
        self.outbox = OutboxQueue(config.outbox.path, max_records=config.outbox.max_records,
                                  synchronous=config.outbox.synchronous)
        assets = {a.asset_id: a for a in config.assets}
        self.table = PointTable(
            [(a.asset_id, p) for a in config.assets for p in a.point_ids],
            max_stale_s=config.max_stale_s,
        )
        serial_kw: dict[str, Any] = {} if serial_factory is None else {
            "transport_factory": serial_factory}
        modbus_kw: dict[str, Any] = {} if modbus_factory is None else {
            "reader_factory": modbus_factory}
        self.serial = [SerialCoordinator(s, assets, self.table, **serial_kw)
                       for s in config.serial]
        self.modbus = [ModbusCoordinator(m, self.table, **modbus_kw) for m in config.modbus]
        self._final_counters: dict[str, int] | None = None
        self.publisher: MqttPublisher | None = None
        self.publisher = MqttPublisher(config, self.outbox, status=self.status)

    # -- status -----------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        """The status counters: outbox, MQTT, acquisition (names in docs/gateway.md)."""
        if self._final_counters is not None:
            return dict(self._final_counters)
        ob = self.outbox.stats()
        pub = self.publisher
        return {
            "produced": self.produced,
            "queued": pub.unsent if pub else ob.queued,
            "sent": pub.counters.sent if pub else 0,
            "awaiting_cloud": pub.awaiting_cloud if pub else 0,
            "stored": pub.counters.stored if pub else 0,
            "resent": pub.counters.resent if pub else 0,
            "foreign_acks": pub.counters.foreign_acks if pub else 0,
            "dropped": ob.dropped,
            "dropped_sent": ob.dropped_sent,
            "decode_errors": sum(s.decode_errors() for s in self.serial),
            "window_gaps": sum(s.counters.window_gaps for s in self.serial),
            "windows": sum(s.counters.windows for s in self.serial),
            "poll_failures": sum(m.counters.poll_failures for m in self.modbus),
            "stale_values": sum(m.counters.stale_values for m in self.modbus),
            "reconnects": pub.counters.reconnects if pub else 0,
            "bad_commands": pub.counters.bad_commands if pub else 0,
            "invalid_records": pub.counters.invalid_records if pub else 0,
            "snapshots": pub.counters.snapshots if pub else 0,
            "snapshot_misses": self.snapshot_misses,
            "outbox_errors": self.outbox_errors,
            "feature_errors": sum(s.counters.feature_errors for s in self.serial),
            "identity_mismatches": sum(s.counters.identity_mismatches for s in self.serial),
            "unverified_frames": sum(s.counters.unverified_frames for s in self.serial),
        }

    def status(self, state: str) -> GatewayStatus:
        return GatewayStatus(
            gateway_id=self.config.gateway_id,
            seq=max(0, self.outbox.last_seq),
            sent_at=utc_now(),
            state="online" if state == "online" else "offline",
            software_version=__version__,
            reporting_interval_s=self.reporting_interval_s,
            assets=[a.asset_id for a in self.config.assets],
            # Online statuses (the birth and the periodic ones) carry the physics, so the
            # retained message always tells the cloud what this gateway computes with.
            physics=(
                {a.asset_id: a.physics for a in self.config.assets} if state == "online" else {}
            ),
            counters=self.counters(),
            # No time reference (NTP state, GPS) is read yet, so the offset is unknown.
            clock_offset_s=None,
            epoch=self.outbox.epoch,
        )

    # -- main loop --------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set, then flush: the last partial interval and the outbox."""
        assert self.publisher is not None
        metrics = self._start_metrics()
        for coordinator in self._coordinators():
            coordinator.start()
        self.publisher.start()
        _log.info("gateway %s: %d serial, %d Modbus sources; reporting every %.1f s; outbox %s"
                  " (%d queued)", self.config.gateway_id, len(self.serial), len(self.modbus),
                  self.reporting_interval_s, self.config.outbox.path, len(self.outbox))
        now = time.monotonic()
        next_report = now + self.reporting_interval_s
        next_status = now + self.config.mqtt.status_interval_s
        next_log = now + PROGRESS_EVERY_S
        try:
            while not stop.is_set():
                try:
                    self.publisher.pump(0.1)
                except OutboxError as err:
                    # Disk trouble: the records stay where they are; try again shortly.
                    self.outbox_errors += 1
                    _log.error("%s", err)
                    stop.wait(1.0)
                self._commands()
                now = time.monotonic()
                if now >= next_report:
                    try:
                        self.report()
                    except OutboxError as err:
                        self.outbox_errors += 1
                        _log.error("interval lost: %s", err)
                    next_report = max(next_report + self.reporting_interval_s, now)
                if now >= next_status:
                    self.publisher.publish_status()
                    next_status = now + self.config.mqtt.status_interval_s
                if now >= next_log:
                    self._log_progress()
                    next_log = now + PROGRESS_EVERY_S
        finally:
            self.close()
            if metrics is not None:
                metrics.stop()

    def _start_metrics(self) -> GatewayMetrics | None:
        """The Prometheus series and exporter; a port in use is logged, never fatal."""
        try:
            return GatewayMetrics.start(self)
        except OSError as err:
            cfg = self.config.metrics
            _log.error("metrics exporter not started on %s:%s: %s", cfg.host, cfg.port, err)
            return None

    def _coordinators(self) -> list[SerialCoordinator | ModbusCoordinator]:
        return [*self.serial, *self.modbus]

    def report(self, *, repeat_stale: bool = True) -> int:
        """Turn the interval's measurements into records in the outbox; returns how many."""
        records = self.table.collect(self.reporting_interval_s, repeat_stale=repeat_stale)
        self.outbox.append(records)
        self.produced += len(records)
        return len(records)

    def close(self, flush_timeout_s: float = 5.0) -> None:
        for coordinator in self._coordinators():
            coordinator.stop()
        # The partial last interval; silent points already reported their stale values.
        self.report(repeat_stale=False)
        if self.publisher is not None:
            self.publisher.stop(flush_timeout_s)
        self._log_progress()
        # The outbox closes now; callers may still ask for the counters of the run.
        self._final_counters = self.counters()
        self.outbox.close()

    def _log_progress(self) -> None:
        c = self.counters()
        _log.info(
            "records produced=%d sent=%d queued=%d dropped=%d | windows=%d gaps=%d "
            "decode_errors=%d poll_failures=%d reconnects=%d connected=%s",
            c["produced"], c["sent"], c["queued"], c["dropped"], c["windows"], c["window_gaps"],
            c["decode_errors"], c["poll_failures"], c["reconnects"],
            self.publisher.connected if self.publisher else False,
        )

    # -- commands ---------------------------------------------------------------------------
    def _commands(self) -> None:
        assert self.publisher is not None
        while True:
            try:
                command = self.publisher.commands.get_nowait()
            except Exception:  # queue.Empty
                return
            try:
                self.handle_command(command)
            except Exception:
                # A command must never take the gateway down.
                _log.exception("command %s failed", command.command_id)

    def handle_command(self, command: Command) -> None:
        if command.action == "set_interval":
            assert command.reporting_interval_s is not None
            _log.info("command %s: reporting interval %.1f s -> %.1f s", command.command_id,
                      self.reporting_interval_s, command.reporting_interval_s)
            self.reporting_interval_s = command.reporting_interval_s
            return
        snapshot = self.snapshot(command)
        if snapshot is None:
            self.snapshot_misses += 1
            _log.warning("command %s: no raw window for %s/%s", command.command_id,
                         command.asset_id, command.point or "*")
            return
        if self.publisher is not None:
            self.publisher.publish_snapshot(snapshot)
        _log.info("command %s: sent a snapshot of %s/%s", command.command_id,
                  snapshot.asset_id, snapshot.point)

    def snapshot(self, command: Command) -> WaveformSnapshot | None:
        """The last raw window of the commanded point (any point of the asset if not named)."""
        points = [k for k in self.table.keys if k[0] == command.asset_id
                  and (command.point is None or k[1] == command.point)]
        for key in points:
            raw = self.table.raw_window(key)
            if raw is None:
                continue
            return WaveformSnapshot(
                gateway_id=self.config.gateway_id,
                seq=max(0, self.outbox.last_seq),
                sent_at=utc_now(),
                request_id=command.command_id,
                asset_id=key[0],
                point=key[1],
                ts=raw.ts,
                sample_rate_hz=raw.sample_rate_hz,
                speed_rpm=raw.speed_rpm,
                samples_f32le_b64=WaveformSnapshot.pack(raw.samples_ms2),
                snapshot_id=WaveformSnapshot.window_id(key[1], raw.ts),
            )
        return None
