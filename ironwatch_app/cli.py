"""The `ironwatch` command: one entry point, one subcommand per role.

The app shell (nothing imports it). Each role's package owns its subcommand in
`<package>/cli.py`, exposing `register(subparsers)`. Those modules import their heavy
dependencies inside the command handlers, so `ironwatch edge ...` runs on a gateway that
installed only `ironwatch[edge]`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from ironwatch import __version__
from ironwatch.errors import CliError

# (subcommand, module that registers it, what to install if it is missing)
_ROLES: tuple[tuple[str, str, str], ...] = (
    ("edge", "edge_agent.cli", "ironwatch[edge]"),
    ("cloud", "cloud.cli", "ironwatch[cloud]"),
    ("sim", "simulators.cli", "ironwatch[sim]"),
    ("demo", "ironwatch_app.demo", "ironwatch[edge,sim,cloud]"),
)

EXAMPLES = """\
examples:
  ironwatch demo                          run the whole chain on this machine (Ctrl-C stops it)
  ironwatch demo --duration 150 --json    run for 150 s, print a JSON summary as the last line
  ironwatch edge run --config gw.toml     run a gateway
  ironwatch edge check-config gw.toml     validate a gateway config file
  ironwatch cloud serve                   run the cloud service (API, ingestion, scoring)
  ironwatch sim --help                    simulated machines over serial, Modbus or MQTT
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ironwatch",
        description="Ironwatch: predictive maintenance for rotating machines.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ironwatch {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging verbosity (default: INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, extra in _ROLES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            missing = sub.add_parser(name, help=f"(not installed: pip install '{extra}')")
            missing.set_defaults(func=_missing(module_name, extra, err))
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _missing(module_name: str, extra: str, err: ImportError) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        raise CliError(f"{module_name} is not available ({err}); pip install '{extra}'")

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except CliError as err:
        print(f"ironwatch: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
