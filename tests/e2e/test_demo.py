"""The demo, end to end: real broker, ptys, Modbus server, gateways and cloud as processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO = [sys.executable, "-m", "ironwatch_app.cli", "demo"]


def leftovers(workdir: Path) -> list[str]:
    """Processes still running whose command line or open files mention the demo's directory."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(workdir) in cmd:
            found.append(f"{proc.info['pid']}: {cmd}")
    return found


def port_free(port: int) -> bool:
    return not any(
        c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
        for c in psutil.net_connections("tcp")
    )


def test_degrading_machine_gets_alert_and_work_order_healthy_ones_none(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    started = time.monotonic()
    proc = subprocess.run(
        [*DEMO, "--duration", "170", "--json", "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=420, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - started < 240
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    machines = summary["machines"]
    print(json.dumps(summary, indent=2))
    assert len(machines) >= 3
    degrading = [m for m in machines.values() if m["degrading"]]
    healthy = [m for m in machines.values() if not m["degrading"]]
    assert len(degrading) >= 1 and len(healthy) >= 2
    for machine in machines.values():
        assert machine["records"] > 50, machine
    for machine in degrading:
        assert machine["alerts"], machine
        assert machine["work_orders"], machine
        for wo in machine["work_orders"]:
            assert wo["priority"] in {"P0", "P1", "P2", "P3"}
            respond_by = datetime.fromisoformat(wo["respond_by"])
            resolve_by = datetime.fromisoformat(wo["resolve_by"])
            assert respond_by.tzinfo is not None
            assert datetime.now(UTC) < respond_by <= resolve_by
    for machine in healthy:
        assert machine["alerts"] == [], machine
        assert machine["work_orders"] == [], machine
    # The demo's strategic customer owns the degrading pump and the fan, not the motor;
    # its portal token sees exactly those.
    assert summary["portal"]["customer_id"] == "jiangnan-steel"
    assert summary["portal"]["assets"] == ["fan-02", "pump-01"]
    for wo in machines["pump-01"]["work_orders"]:
        # The strategic tier's 1 h is shorter than any priority's response time.
        respond = datetime.fromisoformat(wo["respond_by"])
        assert respond - datetime.fromisoformat(wo["created_at"]) == timedelta(hours=1)
    assert leftovers(workdir) == []
    for port in summary.get("ports", {}).values():
        assert port_free(port), port


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.Popen(
        [*DEMO, "--workdir", str(workdir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    output = []
    deadline = time.monotonic() + 90
    # Wait until the demo says where its API is: everything has started by then.
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        output.append(line)
        if "http://127.0.0.1:" in line:
            break
    else:
        proc.kill()
        pytest.fail("".join(output))
    time.sleep(5)
    assert leftovers(workdir), "the demo's processes should be running"
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(output) + rest
    assert leftovers(workdir) == []
    assert os.path.isdir(workdir)  # an explicit --workdir is kept with its logs
