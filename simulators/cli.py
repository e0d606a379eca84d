"""`ironwatch sim ...`: simulated machines over serial, Modbus or MQTT, and their physics.

Heavy modules (numpy, pymodbus, paho-mqtt) are imported inside the handlers so that
`ironwatch --help` stays fast and works on installs without the sim extra.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulators.machine import Machine
    from simulators.spec import MachineSpec

__all__ = ["register"]

# simulators.baseline.MACHINE_KINDS, named here so the CLI starts without numpy.
MACHINE_KINDS = ("motor", "pump", "fan", "spindle", "gearbox")
FAULTS = ("none", "outer_race", "inner_race", "ball", "imbalance", "misalignment", "looseness")

EXAMPLES = """\
examples:
  ironwatch sim describe --fault outer_race --onset-h 100 --failure-h 400 --time-scale 4800
  ironwatch sim serial --port /tmp/pty-a --fault inner_race --onset-h 50 --failure-h 300 \\
      --time-scale 3600 --seed 7
  ironwatch sim modbus --tcp-port 5020 --profile generic_vibration_transmitter --fault none
  ironwatch sim modbus --rtu /tmp/pty-a --profile motor_drive
  ironwatch sim fleet --mqtt-port 1883 --gateways 4 --machines-per-gateway 25 --duration 60
"""


def _add_machine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("machine (flags override --spec)")
    g.add_argument("--spec", help="machine spec file (.toml or .json), see docs/simulator.md")
    g.add_argument("--machine-id", help="asset id (default machine-1)")
    g.add_argument("--fault", choices=FAULTS, help="fault the machine develops (default none)")
    g.add_argument("--onset-h", type=float, help="machine age at fault onset, hours")
    g.add_argument("--failure-h", type=float, help="machine age at failure, hours")
    g.add_argument("--start-age-h", type=float, help="machine age when the simulator starts")
    g.add_argument("--time-scale", type=float,
                   help="machine seconds per wall second (3600: one hour per second)")
    g.add_argument("--seed", type=int, help="random seed (reproducible physics and noise)")
    g.add_argument("--speed-rpm", type=float, help="shaft speed, rpm (default 1480)")
    g.add_argument("--load-pct", type=float, help="load, %% of rated (default 75)")
    g.add_argument("--bearing", help="bearing name: 6205, 6206, 6309, 6312, NU216, 7310B, 22220")
    g.add_argument("--iso-group", type=int, choices=(1, 2), help="ISO 10816-3 machine group")
    g.add_argument("--foundation", choices=("rigid", "flexible"))
    g.add_argument("--rated-power-kw", type=float, help="rated power, kW (default 15)")
    g.add_argument("--ambient-c", type=float, help="ambient temperature, °C (default 25)")
    g.add_argument("--kind", choices=MACHINE_KINDS,
                   help="machine kind: its ISO group (from the rated power), healthy vibration "
                        "and temperature rise follow from kind, power and speed, with a "
                        "seeded spread (simulators.baseline)")
    r = p.add_argument_group("realism (each off unless the spec or a flag turns it on)")
    r.add_argument("--slip", action="store_true", default=None,
                   help="defect lines off kinematic by a factor drawn in 0.96-1.0 from the seed")
    r.add_argument("--defect-factor", type=float,
                   help="defect frequencies = factor x kinematic (e.g. 0.975)")
    r.add_argument("--band-limited", action="store_true", default=None,
                   help="a real sensor front end: anti-alias roll-off, resonances above it unseen")
    r.add_argument("--burst-period", type=float, dest="burst_period_s",
                   help="burst sensor: capture every S seconds, silent in between")
    r.add_argument("--burst-samples", type=int, help="samples per burst (default 16384)")


_OVERRIDES = {
    "machine_id": "machine_id", "fault": "fault", "onset_h": "onset_h",
    "failure_h": "failure_h", "start_age_h": "start_age_h", "time_scale": "time_scale",
    "seed": "seed", "speed_rpm": "speed_rpm", "load_pct": "load_pct",
    "iso_group": "iso_group", "foundation": "foundation",
    "rated_power_kw": "rated_power_kw", "ambient_c": "ambient_c",
    "slip": "slip", "defect_factor": "defect_factor", "band_limited": "band_limited",
    "burst_period_s": "burst_period_s", "burst_samples": "burst_samples",
}


def spec_from_args(args: argparse.Namespace) -> MachineSpec:
    """The machine spec: the --spec file (or defaults) with any flags given applied on top."""
    from ironwatch.errors import CliError
    from simulators.baseline import with_baseline
    from simulators.spec import BEARINGS, MachineSpec, SpecError, load_spec

    try:
        spec = load_spec(args.spec) if args.spec else MachineSpec()
        changes: dict[str, Any] = {
            field: getattr(args, attr)
            for attr, field in _OVERRIDES.items()
            if getattr(args, attr, None) is not None
        }
        if args.bearing is not None:
            if args.bearing not in BEARINGS:
                raise SpecError(f"unknown bearing {args.bearing!r}; known: {sorted(BEARINGS)}")
            changes["bearing"] = BEARINGS[args.bearing]
        # A fault asked for on the command line with no timeline gets one that fits the spec.
        if "failure_h" not in changes and changes.get("onset_h", 0) >= spec.failure_h:
            changes["failure_h"] = changes["onset_h"] + 300.0
        spec = spec.with_(**changes) if changes else spec
        if getattr(args, "kind", None) is not None:
            spec = with_baseline(spec, args.kind)
        return spec
    except (SpecError, ValueError) as err:
        raise CliError(str(err)) from err


def _machine(args: argparse.Namespace, *, channels: int | None) -> Machine:
    from ironwatch.errors import CliError
    from simulators.machine import Machine

    try:
        return Machine(spec_from_args(args), sample_rate_hz=args.sample_rate, channels=channels)
    except ValueError as err:
        raise CliError(str(err)) from err


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so every command stops cleanly and exits 0."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        del signum, frame
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _print_json(obj: object) -> None:
    print(json.dumps(obj, default=str), flush=True)


def _cmd_describe(args: argparse.Namespace) -> int:
    machine = _machine(args, channels=None)
    print(json.dumps(machine.describe(), indent=2 if args.pretty else None, default=str))
    return 0


def _signalled(
    command: Callable[[argparse.Namespace, threading.Event], int],
) -> Callable[[argparse.Namespace], int]:
    """Install the stop handlers before any slow import or set-up, then run the command."""

    def run(args: argparse.Namespace) -> int:
        with _stop_on_signals() as stop:
            return command(args, stop)

    return run


def _cmd_serial(args: argparse.Namespace, stop: threading.Event) -> int:
    from simulators.serial_device import SerialDevice

    machine = _machine(args, channels=args.channels)
    device = SerialDevice(
        machine, args.port, device_id=args.device_id, block_size=args.block_size,
        hello_period_s=args.hello_every or None,
    )
    print(json.dumps({"event": "started", "port": args.port, **machine.describe()["ground_truth"]},
                     default=str), file=sys.stderr, flush=True)
    stats = device.run(stop, duration_s=args.duration)
    _print_json({"event": "stopped", **stats.to_dict(), **machine.ground_truth().to_dict()})
    return 0


def _cmd_modbus(args: argparse.Namespace, stop: threading.Event) -> int:
    from firmware_bridge.modbus_profile import DeviceProfile, ProfileError
    from ironwatch.errors import CliError
    from simulators.modbus_device import ModbusDevice

    try:
        profile = DeviceProfile.load(args.profile)
    except ProfileError as err:
        raise CliError(str(err)) from err
    machine = _machine(args, channels=1)
    device = ModbusDevice(
        machine, profile,
        transport="tcp" if args.tcp_port is not None else "rtu",
        host=args.host, port=args.tcp_port or 502, serial_port=args.rtu,
        baudrate=args.baudrate, unit_id=args.unit_id,
    )
    try:
        stats = device.run(stop)
    except (OSError, RuntimeError, TimeoutError) as err:
        raise CliError(f"modbus server: {err}") from err
    _print_json({"event": "stopped", "updates": stats.updates, **machine.ground_truth().to_dict()})
    return 0


def _cmd_fleet(args: argparse.Namespace, stop: threading.Event) -> int:
    from ironwatch.errors import CliError
    from simulators.fleet import FleetPublisher, make_fleet

    try:
        fleet = make_fleet(
            args.gateways * args.machines_per_gateway, seed=args.seed,
            time_scale=args.time_scale, healthy_fraction=args.healthy_fraction,
            realism=args.realistic,
        )
        publisher = FleetPublisher(
            fleet, host=args.mqtt_host, port=args.mqtt_port, gateways=args.gateways,
            rate_hz=args.rate, batch_records=args.batch, username=args.mqtt_username,
            password=args.mqtt_password, gateway_prefix=args.gateway_prefix,
        )
        stats = publisher.run(stop, duration_s=args.duration)
    except (ValueError, OSError) as err:
        raise CliError(f"fleet: {err}") from err
    _print_json({"event": "stopped", **stats.to_dict()})
    return 0


def register(subparsers: Any) -> None:
    """Add `sim` and its subcommands to the top-level `ironwatch` parser."""
    sim = subparsers.add_parser(
        "sim", help="simulated machines over serial, Modbus or MQTT",
        description="Physics-based simulated machines with injected faults and ground truth.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    sim.set_defaults(func=lambda _a: (sim.print_help(), 2)[1])

    d = sub.add_parser("describe", help="print a machine's physics and ground-truth timeline")
    _add_machine_args(d)
    d.add_argument("--sample-rate", type=float, default=None, help=argparse.SUPPRESS)
    d.add_argument("--pretty", action="store_true", help="indent the JSON")
    d.set_defaults(func=_cmd_describe)

    s = sub.add_parser("serial", help="a sensor speaking the firmware protocol on a serial path")
    s.add_argument("--port", required=True, help="serial device or pty path to write to")
    _add_machine_args(s)
    s.add_argument("--sample-rate", type=float, default=None,
                   help="Hz, 5000-51200 (default: the spec's, else 25600)")
    s.add_argument("--channels", type=int, default=None,
                   help="channels sent (default: 3 axes, or one per point of the spec)")
    s.add_argument("--device-id", type=int, default=1)
    s.add_argument("--block-size", type=int, default=1024, help="samples per block")
    s.add_argument("--hello-every", type=float, default=30.0,
                   help="repeat Hello every S seconds (0: only at start)")
    s.add_argument("--duration", type=float, help="stop after S seconds (default: until signal)")
    s.set_defaults(func=_signalled(_cmd_serial))

    m = sub.add_parser("modbus", help="a Modbus TCP/RTU transmitter or drive")
    where = m.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp-port", type=int, help="serve Modbus TCP on this port")
    where.add_argument("--rtu", help="serve Modbus RTU on this serial/pty path")
    m.add_argument("--host", default="127.0.0.1", help="TCP bind address")
    m.add_argument("--baudrate", type=int, default=19_200)
    m.add_argument("--profile", default="generic_vibration_transmitter",
                   help="firmware_bridge profile name or TOML path")
    m.add_argument("--unit-id", type=int, default=1, help="Modbus unit (slave) id")
    _add_machine_args(m)
    m.add_argument("--sample-rate", type=float, default=None,
                   help="transmitter ADC rate, Hz (default 25600)")
    m.set_defaults(func=_signalled(_cmd_modbus))

    f = sub.add_parser("fleet", help="publish feature records of many machines over MQTT")
    f.add_argument("--mqtt-host", default="127.0.0.1")
    f.add_argument("--mqtt-port", type=int, default=1883)
    f.add_argument("--mqtt-username")
    f.add_argument("--mqtt-password")
    f.add_argument("--gateways", type=int, default=2)
    f.add_argument("--gateway-prefix", default="simgw")
    f.add_argument("--machines-per-gateway", type=int, default=10)
    f.add_argument("--duration", type=float, help="seconds (default: until signal)")
    f.add_argument("--rate", type=float, default=1.0, help="records per machine per second")
    f.add_argument("--batch", type=int, default=100, help="max records per message")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--time-scale", type=float, default=3600.0)
    f.add_argument("--healthy-fraction", type=float, default=0.5)
    f.add_argument("--realistic", action="store_true",
                   help="slip, band-limited 12/20/25.6 kHz sensors, load steps, 4-point shafts")
    f.set_defaults(func=_signalled(_cmd_fleet))
