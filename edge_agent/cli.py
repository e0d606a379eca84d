"""`ironwatch edge ...`: run a gateway, or check its config file.

Heavy modules (paho, pyserial, numpy) are imported inside the handlers, so `--help` is fast
and a missing optional dependency becomes one clear error line.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

__all__ = ["register"]

_log = logging.getLogger("edge_agent")


def register(subparsers: Any) -> None:
    """Add the `edge` subcommand to the top-level `ironwatch` parser."""
    edge = subparsers.add_parser("edge", help="run an edge gateway (serial/Modbus -> MQTT)",
                                 description="The Ironwatch gateway process.")
    sub = edge.add_subparsers(dest="edge_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run the gateway until SIGTERM/SIGINT")
    run.add_argument("--config", required=True, metavar="FILE", help="gateway TOML file")
    run.set_defaults(func=_run)
    check = sub.add_parser("check-config", help="validate a gateway TOML file, print a summary")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_check)


def _load(path: str) -> Any:
    from edge_agent._errors import ConfigError
    from edge_agent.config import load_config
    from ironwatch.errors import CliError

    try:
        return load_config(path)
    except ConfigError as err:
        raise CliError(str(err)) from err


def _check(args: argparse.Namespace) -> int:
    from edge_agent._errors import ConfigError
    from ironwatch.errors import CliError

    config = _load(args.file)
    try:
        from edge_agent.acquisition.modbus import profile_interval_s

        intervals = [mb.poll_interval_s or profile_interval_s(mb.profile) for mb in config.modbus]
    except ConfigError as err:
        raise CliError(f"{args.file}: {err}") from err
    m = config.mqtt
    lines = [
        f"{args.file}: OK",
        f"gateway {config.gateway_id}: reporting every {config.reporting_interval_s:g} s",
        f"mqtt {m.host}:{m.port} client_id={config.client_id} protocol={m.protocol} "
        f"tls={'on' if m.tls else 'off'} user={m.username or '-'} "
        f"password={'set' if m.password else '-'}",
        f"outbox {config.outbox.path} (max {config.outbox.max_records} records, "
        f"{config.outbox.policy}, synchronous={config.outbox.synchronous})",
    ]
    for a in config.assets:
        points = ", ".join(
            f"{p.id} ({p.bearing.designation or f'{p.bearing.n_balls} balls'})"
            if p.bearing else p.id
            for p in a.points
        )
        lines.append(f"asset {a.asset_id}: {a.nominal_speed_rpm:g} rpm, points {points}")
    for s in config.serial:
        chans = ", ".join(f"ch{c.channel}->{c.asset_id}/{c.point}" for c in s.channels)
        device = "any" if s.device_id is None else s.device_id
        pinned = f" pinned to {s.identity.describe()}" if s.identity is not None else ""
        lines.append(f"serial {s.port} @ {s.baudrate} device {device}{pinned}"
                     f" window {s.window_samples}: {chans}")
    for mb, interval in zip(config.modbus, intervals, strict=True):
        where = f"{mb.host}:{mb.port or 502}" if mb.transport == "tcp" else mb.serial_port
        lines.append(f"modbus {mb.transport} {where} unit {mb.device_id} profile {mb.profile}"
                     f" every {interval:g} s -> {mb.asset_id}/{mb.point}")
    print("\n".join(lines))
    return 0


def _run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from edge_agent._errors import EdgeError
    from ironwatch.errors import CliError

    config = _load(args.config)
    try:
        from edge_agent.agent import EdgeAgent

        agent = EdgeAgent(config)
    except ImportError as err:
        raise CliError(f"the gateway needs ironwatch[edge] installed: {err}") from err
    except EdgeError as err:
        raise CliError(f"{args.config}: {err}") from err

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        _log.info("%s received: flushing and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run(stop)
    _log.info("stopped")
    return 0
