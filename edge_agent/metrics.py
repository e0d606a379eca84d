"""The gateway's Prometheus metrics: its status counters, read when Prometheus scrapes.

Nothing is counted twice: the series are the agent's own status counters (the ones the
status message carries, named by `ironwatch.gateway_counters`), read at scrape time,
plus the broker connection and the outbox capacity. `GatewayMetrics.start(agent)` serves
them with the process's CPU and memory on `[metrics] host:port` (off by default).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, disable_created_metrics, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from edge_agent.config import EdgeConfig
from ironwatch import __version__
from ironwatch.gateway_counters import GATEWAY_COUNTER_SERIES

__all__ = ["CountingAgent", "GatewayCollector", "GatewayMetrics"]

_log = logging.getLogger(__name__)
disable_created_metrics()  # no `_created` series: they double every counter for little use


class _Connection(Protocol):
    @property
    def connected(self) -> bool: ...


class CountingAgent(Protocol):
    """What the metrics read of a gateway (`edge_agent.agent.EdgeAgent`)."""

    @property
    def config(self) -> EdgeConfig: ...

    @property
    def publisher(self) -> _Connection | None: ...

    def counters(self) -> dict[str, int]:
        """The status counters (docs/gateway.md)."""
        ...


class GatewayCollector:
    """A Prometheus collector over one agent's counters (label `gateway`)."""

    def __init__(self, agent: CountingAgent) -> None:
        self.agent = agent

    def describe(self) -> list[Metric]:
        # Nothing declared up front: several agents (tests, a demo) may share a registry,
        # each with its own `gateway` label.
        return []

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        gateway = agent.config.gateway_id
        try:
            counters = agent.counters()
        except Exception:  # the outbox closing under a scrape: skip this scrape's values
            _log.debug("gateway counters unavailable for this scrape", exc_info=True)
            return
        for key, series in GATEWAY_COUNTER_SERIES.items():
            if key not in counters:
                continue
            family: Metric
            if series.kind == "counter":
                family = CounterMetricFamily(series.name, series.help, labels=["gateway"])
            else:
                family = GaugeMetricFamily(series.name, series.help, labels=["gateway"])
            family.add_metric([gateway], float(counters[key]))
            yield family
        publisher = agent.publisher
        connected = GaugeMetricFamily(
            "ironwatch_gateway_mqtt_connected", "1 while the gateway is connected to its broker.",
            labels=["gateway"],
        )
        connected.add_metric([gateway], 1.0 if publisher is not None and publisher.connected
                             else 0.0)
        yield connected
        capacity = GaugeMetricFamily(
            "ironwatch_gateway_outbox_capacity_records",
            "Records the outbox holds before it drops the oldest unsent ones.",
            labels=["gateway"],
        )
        capacity.add_metric([gateway], float(agent.config.outbox.max_records))
        yield capacity
        info = GaugeMetricFamily("ironwatch_gateway_build_info",
                                 "The gateway's software version (value 1).",
                                 labels=["gateway", "version"])
        info.add_metric([gateway, __version__], 1.0)
        yield info


class GatewayMetrics:
    """The agent's collector in the process registry and, with a port, its HTTP exporter."""

    def __init__(self, agent: CountingAgent, server: WSGIServer | None,
                 thread: threading.Thread | None) -> None:
        self.collector = GatewayCollector(agent)
        self._server = server
        self._thread = thread
        REGISTRY.register(self.collector)

    @classmethod
    def start(cls, agent: CountingAgent) -> GatewayMetrics:
        """Register the agent's series; serve /metrics when `[metrics] port` is set."""
        cfg = agent.config.metrics
        server: WSGIServer | None = None
        thread: threading.Thread | None = None
        if cfg.port is not None:
            server, thread = start_http_server(cfg.port, addr=cfg.host)
            _log.info("metrics on http://%s:%d/metrics", cfg.host, server.server_port)
        return cls(agent, server, thread)

    @property
    def port(self) -> int | None:
        """The port the exporter listens on (None when off)."""
        return None if self._server is None else int(self._server.server_port)

    def stop(self) -> None:
        """Stop the exporter (the port is free afterwards) and unregister the series."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        with contextlib.suppress(KeyError):
            REGISTRY.unregister(self.collector)
