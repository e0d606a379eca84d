"""A serial sensor that disappears and comes back: the agent keeps running and resumes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge_agent.agent import EdgeAgent
from edge_agent.config import load_config
from ironwatch_app.local_servers import Mosquitto, PtyPair

from .conftest import gateway_toml, wait_until
from .test_process import SensorWriter

pytestmark = pytest.mark.integration


def test_unplug_and_replug(mosquitto: Mosquitto, pty_pair: PtyPair, tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(gateway_toml(gateway_id="gw-unplug", broker_port=mosquitto.port,
                                 outbox=tmp_path / "ob.db", serial_port=pty_pair.b))
    agent = EdgeAgent(load_config(path))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    writer = SensorWriter(pty_pair.a)
    try:
        assert wait_until(lambda: agent.counters()["windows"] >= 3)
        writer.close()
        pty_pair.stop()  # the USB adapter is pulled out
        assert wait_until(lambda: agent.serial[0].counters.windows >= 3)
        before = agent.counters()["windows"]
        pty_pair.start()  # ... and plugged in again, at the same path
        writer = SensorWriter(pty_pair.a)
        assert wait_until(lambda: agent.counters()["windows"] >= before + 3, timeout_s=15)
        assert thread.is_alive()
    finally:
        writer.close()
        stop.set()
        thread.join(20)
    assert agent.counters()["sent"] >= 1
