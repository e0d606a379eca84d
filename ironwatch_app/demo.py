"""`ironwatch demo`: the whole chain on one machine, every part real.

A Mosquitto broker, simulated machines (over socat pseudo-terminals speaking the sensor
firmware protocol, and as a Modbus TCP transmitter), an edge agent per gateway and the
cloud service, each its own process on 127.0.0.1. One machine develops a bearing fault
in accelerated time; the demo reports what each machine produced and raised, and stops
every process it started when it ends or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from ironwatch.physics import AssetPhysics, BearingSpec, Foundation, IsoGroup, MeasurementPoint
from ironwatch_app.demo_service import seed_service
from ironwatch_app.local_servers import (
    Mosquitto,
    PtyPair,
    ServiceError,
    free_port,
    stop_process,
    wait_for_port,
)

__all__ = [
    "DEMO_CUSTOMERS",
    "DEMO_SITES",
    "PORTAL_CUSTOMER",
    "DemoMachine",
    "DemoRun",
    "default_machines",
    "register",
]

SAMPLE_RATE_HZ = 25600
COMMISSIONING_RECORDS = 30
# Machine age (hours) at fault onset and failure; at 3600x, an hour passes every second.
FAULT_ONSET_H = 60.0
FAILURE_H = 260.0
REPORT_EVERY_S = 5.0
POINT = "de_radial"

# Two customers of different tiers, with plants in different time zones: the degrading
# pump belongs to the strategic one, so its work order gets the 1 h response of that tier.
DEMO_CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "id": "jiangnan-steel",
        "name": "Jiangnan Steel",
        "tier": "strategic",
        "contacts": [
            {"name": "Li Wei", "email": "li.wei@jiangnan-steel.example", "role": "plant_manager",
             "phone": "+86 21 5555 0101"},
            {"name": "Zhang Min", "email": "zhang.min@jiangnan-steel.example",
             "role": "maintenance"},
        ],
    },
    {
        "id": "rheinland-foods",
        "name": "Rheinland Foods",
        "tier": "standard",
        "contacts": [
            {"name": "Anna Becker", "email": "a.becker@rheinland-foods.example",
             "role": "maintenance", "phone": "+49 221 5555 0199"},
        ],
    },
)
DEMO_SITES: tuple[dict[str, Any], ...] = (
    {"id": "js-shanghai", "customer_id": "jiangnan-steel", "name": "Shanghai rolling mill",
     "region": "cn-east", "timezone": "Asia/Shanghai", "address": "Baoshan District, Shanghai"},
    {"id": "rf-cologne", "customer_id": "rheinland-foods", "name": "Cologne bottling plant",
     "region": "de-west", "timezone": "Europe/Berlin"},
)
# The customer whose portal token the demo prints.
PORTAL_CUSTOMER = "jiangnan-steel"


@dataclass(frozen=True)
class DemoMachine:
    """One simulated machine and how the gateway reaches it."""

    machine_id: str
    kind: str
    gateway_id: str
    link: str  # "serial" or "modbus"
    fault: str  # "none" or a fault mode the simulator knows
    speed_rpm: float
    seed: int
    bearing: str = "6205"  # a bearing the simulator's catalogue knows
    iso_group: IsoGroup = 2
    foundation: Foundation = "rigid"
    site_id: str | None = None  # the customer's site; the tier comes from the customer
    customer_tier: str = "key"  # only for a machine without a site
    location: str = "Hall A"
    # With kind and speed, sets the healthy vibration and temperature (simulators.baseline)
    # and the ISO group: 15-300 kW is group 2, above 300 kW group 1.
    rated_power_kw: float = 55.0

    def __post_init__(self) -> None:
        from simulators.baseline import iso_group_for_power

        if iso_group_for_power(self.rated_power_kw) != self.iso_group:
            raise ValueError(
                f"{self.machine_id}: {self.rated_power_kw} kW is ISO 10816-3 group "
                f"{iso_group_for_power(self.rated_power_kw)}, not {self.iso_group}"
            )

    @property
    def degrading(self) -> bool:
        return self.fault != "none"

    def physics(self) -> AssetPhysics:
        """The machine's physics, written once: the gateway is configured with it."""
        from simulators.spec import BEARINGS

        b = BEARINGS[self.bearing]
        bearing = BearingSpec(
            n_balls=b.n_balls,
            ball_diameter_mm=b.ball_diameter_mm,
            pitch_diameter_mm=b.pitch_diameter_mm,
            contact_angle_deg=b.contact_angle_deg,
            designation=self.bearing,
        )
        return AssetPhysics(
            speed_rpm=self.speed_rpm,
            iso_group=self.iso_group,
            foundation=self.foundation,
            points=(MeasurementPoint(id=POINT, bearing=bearing),),
        )

    def gateway_asset(self) -> dict[str, Any]:
        """The machine as an `[[assets]]` table of its gateway's config."""
        return {"asset_id": self.machine_id, **self.physics().model_dump(exclude_none=True)}

    def fleet_asset(self) -> dict[str, Any]:
        """The machine as an `[[assets]]` table of the fleet file: no physics, the cloud
        learns it from the gateway's birth message."""
        owner: dict[str, Any] = (
            {"site_id": self.site_id}
            if self.site_id is not None
            else {"customer_tier": self.customer_tier}
        )
        return {
            "id": self.machine_id,
            "gateway_id": self.gateway_id,
            "name": self.machine_id,
            "kind": self.kind,
            "location": self.location,
            **owner,
        }


def default_machines() -> list[DemoMachine]:
    """Three machines on two gateways; the pump's outer race starts to fail."""
    return [
        DemoMachine(
            "pump-01",
            "pump",
            "gw-hall-a",
            "serial",
            "outer_race",
            1480.0,
            seed=11,
            site_id="js-shanghai",
            rated_power_kw=55.0,
        ),
        DemoMachine(
            "fan-02",
            "fan",
            "gw-hall-a",
            "serial",
            "none",
            990.0,
            seed=12,
            bearing="6206",
            site_id="js-shanghai",
            rated_power_kw=22.0,
        ),
        DemoMachine(
            "motor-03",
            "motor",
            "gw-hall-b",
            "modbus",
            "none",
            2975.0,
            seed=13,
            location="Hall B",
            site_id="rf-cologne",
            rated_power_kw=160.0,
        ),
    ]


# At most this many alerts and work orders per machine in the progress line (newest kept).
PROGRESS_ITEMS = 3


def _hhmm(iso: str | None) -> str:
    return iso[11:16] if iso and len(iso) >= 16 else "?"


def progress_line(machines: dict[str, Any]) -> str:
    """One line of what the cloud says now: per machine its records, and each alert and work
    order with its current state, newest last (older ones counted)."""
    parts = []
    for mid, m in machines.items():
        items: list[str] = []
        alerts = sorted(m.get("alerts", []), key=lambda a: a["id"])
        orders = sorted(m.get("work_orders", []), key=lambda w: w["id"])
        for a in alerts[-PROGRESS_ITEMS:]:
            items.append(f"alert #{a['id']} {a['failure_mode']} {a['severity']} {a['state']}")
        if len(alerts) > PROGRESS_ITEMS:
            items.insert(0, f"{len(alerts) - PROGRESS_ITEMS} earlier alerts")
        shown_orders = []
        for w in orders[-PROGRESS_ITEMS:]:
            text = f"WO #{w['id']} {w['priority']} {w['state']}"
            if w["state"] == "open":
                text += f" respond by {_hhmm(w.get('respond_by'))} UTC"
            shown_orders.append(text)
        if len(orders) > PROGRESS_ITEMS:
            shown_orders.insert(0, f"{len(orders) - PROGRESS_ITEMS} earlier work orders")
        items += shown_orders
        parts.append(f"{mid}: {m['records']} records{', ' + ', '.join(items) if items else ''}")
    return " | ".join(parts)


class DemoError(RuntimeError):
    """The demo could not start or run one of its parts."""


class DemoRun:
    """Starts, watches and stops every process of the demo."""

    def __init__(
        self,
        machines: Sequence[DemoMachine],
        *,
        workdir: Path,
        time_scale: float,
        http_port: int,
        out: Any = sys.stderr,
    ) -> None:
        self.machines = list(machines)
        self.workdir = workdir
        self.time_scale = time_scale
        self.http_port = http_port
        self.out = out
        self.admin_token = secrets.token_urlsafe(24)
        self.broker: Mosquitto | None = None
        self.ptys: list[PtyPair] = []
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.started_at = time.monotonic()
        self._last_report = 0.0
        # Each serial sensor gets its own firmware device id.
        self._device_ids = {m.machine_id: i + 1 for i, m in enumerate(self.machines)}
        self.ports: dict[str, int] = {}
        # The customer whose portal the banner names, and its token (once made).
        self.portal: dict[str, str] = {}

    # -- process management -------------------------------------------------------------
    def _spawn(self, name: str, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed after Popen dup
        import os

        full_env = {**os.environ, **(env or {})}
        proc = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
        log.close()
        self.procs.append((name, proc))

    def _check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-1500:]
                raise DemoError(f"{name} exited with code {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        # Sources first, then gateways (they flush), then the cloud, then the broker.
        for _name, proc in reversed(self.procs):
            stop_process(proc, timeout_s=10.0, group=True)
        self.procs.clear()
        for pty in self.ptys:
            pty.stop()
        self.ptys.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    # -- start-up ----------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started_at
        print(f"[{elapsed:6.1f}s] {text}", file=self.out, flush=True)

    def _ironwatch(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ironwatch_app.cli", "--log-level", "INFO", *args]

    def fleet_document(self) -> dict[str, Any]:
        gateways = sorted({m.gateway_id for m in self.machines})
        sites = [s for s in DEMO_SITES if any(m.site_id == s["id"] for m in self.machines)]
        owners = {s["customer_id"] for s in sites}
        return {
            "customers": [c for c in DEMO_CUSTOMERS if c["id"] in owners],
            "sites": sites,
            "gateways": [{"id": g, "name": g} for g in gateways],
            "assets": [m.fleet_asset() for m in self.machines],
        }

    def portal_token(self, customer_id: str) -> str:
        """A customer token for the portal, made through the API with the admin token."""
        body = json.dumps(
            {"name": f"demo portal {customer_id}", "role": "customer", "customer_id": customer_id}
        ).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/api/v1/tokens",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.admin_token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(json.loads(resp.read())["token"])

    def gateway_document(
        self,
        gateway_id: str,
        password: str,
        serial_paths: dict[str, str],
        modbus_ports: dict[str, int],
    ) -> dict[str, Any]:
        mine = [m for m in self.machines if m.gateway_id == gateway_id]
        assert self.broker is not None
        doc: dict[str, Any] = {
            "gateway_id": gateway_id,
            "reporting_interval_s": 1.0,
            "mqtt": {
                "host": "127.0.0.1",
                "port": self.broker.port,
                "username": gateway_id,
                "password": password,
                "status_interval_s": 5.0,
            },
            "outbox": {"path": str(self.workdir / f"{gateway_id}-outbox.sqlite3")},
            "assets": [m.gateway_asset() for m in mine],
        }
        serial = [
            {
                "port": serial_paths[m.machine_id],
                "baudrate": 921600,
                "device_id": self._device_ids[m.machine_id],
                "window_samples": SAMPLE_RATE_HZ,
                "channels": [{"channel": 0, "asset_id": m.machine_id, "point": POINT}],
            }
            for m in mine
            if m.link == "serial"
        ]
        modbus = [
            {
                "transport": "tcp",
                "host": "127.0.0.1",
                "port": modbus_ports[m.machine_id],
                "device_id": 1,
                "profile": "generic_vibration_transmitter",
                "asset_id": m.machine_id,
                "point": POINT,
            }
            for m in mine
            if m.link == "modbus"
        ]
        if serial:
            doc["serial"] = serial
        if modbus:
            doc["modbus"] = modbus
        return doc

    def _sim_args(self, m: DemoMachine) -> list[str]:
        args = [
            "--machine-id",
            m.machine_id,
            "--fault",
            m.fault,
            "--time-scale",
            str(self.time_scale),
            "--seed",
            str(m.seed),
            "--speed-rpm",
            str(m.speed_rpm),
            "--iso-group",
            str(m.iso_group),
            "--foundation",
            m.foundation,
            "--bearing",
            m.bearing,
            "--kind",
            m.kind,
            "--rated-power-kw",
            str(m.rated_power_kw),
        ]
        if m.degrading:
            args += ["--onset-h", str(FAULT_ONSET_H), "--failure-h", str(FAILURE_H)]
        return args

    def start(self) -> None:
        from cloud.acl import cloud_acl_lines, gateway_acl_lines, generate_password
        from ironwatch_app.local_servers import MosquittoUser

        gateways = sorted({m.gateway_id for m in self.machines})
        passwords = {g: generate_password() for g in gateways}
        cloud_password = generate_password()
        users = [MosquittoUser(g, passwords[g], tuple(gateway_acl_lines(g))) for g in gateways]
        users.append(MosquittoUser("ironwatch-cloud", cloud_password, tuple(cloud_acl_lines()),
                                   cloud=True))
        self.broker = Mosquitto(workdir=self.workdir / "mosquitto", users=users)
        self.broker.start()
        self._say(
            f"broker: Mosquitto on 127.0.0.1:{self.broker.port} for gateways, "
            f":{self.broker.cloud_port} for the cloud (per-gateway accounts and ACL)"
        )

        fleet_path = self.workdir / "fleet.toml"
        fleet_path.write_text(tomli_w.dumps(self.fleet_document()))
        self._spawn(
            "cloud",
            self._ironwatch(
                "cloud",
                "serve",
                "--data-dir",
                str(self.workdir / "cloud-data"),
                "--port",
                str(self.http_port),
                "--mqtt-host",
                "127.0.0.1",
                "--mqtt-port",
                str(self.broker.cloud_port),
                "--fleet",
                str(fleet_path),
            ),
            env={
                "IRONWATCH_CLOUD_ADMIN_TOKEN": self.admin_token,
                "IRONWATCH_CLOUD_MQTT_USERNAME": "ironwatch-cloud",
                "IRONWATCH_CLOUD_MQTT_PASSWORD": cloud_password,
                "IRONWATCH_CLOUD_COMMISSIONING_RECORDS": str(COMMISSIONING_RECORDS),
            },
        )

        serial_paths: dict[str, str] = {}
        modbus_ports: dict[str, int] = {}
        for m in self.machines:
            if m.link == "serial":
                pty = PtyPair(workdir=self.workdir / f"pty-{m.machine_id}")
                pty.workdir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
                pty.start()
                self.ptys.append(pty)
                serial_paths[m.machine_id] = pty.b
                self._spawn(
                    f"sim-{m.machine_id}",
                    self._ironwatch(
                        "sim",
                        "serial",
                        "--port",
                        pty.a,
                        "--sample-rate",
                        str(SAMPLE_RATE_HZ),
                        "--channels",
                        "1",
                        "--device-id",
                        str(self._device_ids[m.machine_id]),
                        *self._sim_args(m),
                    ),
                )
                self._say(
                    f"machine {m.machine_id}: firmware protocol on pty {pty.a} <-> {pty.b}"
                    f"{' (develops an ' + m.fault + ' fault)' if m.degrading else ''}"
                )
            else:
                port = free_port()
                modbus_ports[m.machine_id] = port
                self._spawn(
                    f"sim-{m.machine_id}",
                    self._ironwatch(
                        "sim",
                        "modbus",
                        "--tcp-port",
                        str(port),
                        "--host",
                        "127.0.0.1",
                        "--profile",
                        "generic_vibration_transmitter",
                        *self._sim_args(m),
                    ),
                )
                self._say(
                    f"machine {m.machine_id}: Modbus TCP transmitter on 127.0.0.1:{port}"
                    f"{' (develops an ' + m.fault + ' fault)' if m.degrading else ''}"
                )
        for port in modbus_ports.values():
            wait_for_port(port, timeout_s=30)

        wait_for_port(self.http_port, timeout_s=60)
        seeded = seed_service(self._send)
        self._say(
            f"service desk: {seeded['technicians']} technicians, {seeded['parts']} spare parts "
            f"in {seeded['warehouses']} warehouses"
        )
        for g in gateways:
            path = self.workdir / f"{g}.toml"
            path.write_text(
                tomli_w.dumps(self.gateway_document(g, passwords[g], serial_paths, modbus_ports))
            )
            self._spawn(f"edge-{g}", self._ironwatch("edge", "run", "--config", str(path)))
            self._say(f"gateway {g}: edge agent with config {path}")
        self._check_alive()
        self.ports = {
            "broker": self.broker.port,
            "broker-cloud": self.broker.cloud_port,
            "http": self.http_port,
            **{f"modbus-{k}": v for k, v in modbus_ports.items()},
        }
        self._say(
            f"dashboard: http://127.0.0.1:{self.http_port}/   "
            f"API docs: http://127.0.0.1:{self.http_port}/docs (admin token in "
            f"{self.workdir / 'admin-token'})"
        )
        (self.workdir / "admin-token").write_text(self.admin_token + "\n")
        self._announce_portal()

    def _announce_portal(self) -> None:
        customer = next(
            (c for c in self.fleet_document()["customers"] if c["id"] == PORTAL_CUSTOMER), None
        )
        if customer is None:
            return
        try:
            token = self._portal_token_when_ready(customer["id"])
        except DemoError as err:
            # The portal is a view on the demo, not a part of it: say so and run on.
            self._say(f"customer portal unavailable: {err}")
            return
        self.portal = {"customer_id": customer["id"], "token": token}
        (self.workdir / "customer-token").write_text(token + "\n")
        self._say(
            f"customer portal: http://127.0.0.1:{self.http_port}/login?next=/portal  sign in "
            f"as {customer['name']} ({customer['tier']}) with {token} (also in "
            f"{self.workdir / 'customer-token'})"
        )

    def _portal_token_when_ready(self, customer_id: str) -> str:
        # The port answers before the service has seeded the fleet file: retry briefly.
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.portal_token(customer_id)
            except (urllib.error.URLError, OSError) as err:
                if time.monotonic() > deadline:
                    raise DemoError(f"cannot create the customer token: {err}") from err
                time.sleep(0.5)

    # -- observation -------------------------------------------------------------------------
    def api(self, path: str) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def _send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/api/v1{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Bearer {self.admin_token}",
                "Content-Type": "application/json",
            },
        )
        # The service may still be migrating its database right after the port opens.
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as err:
                if err.code < 500 or time.monotonic() > deadline:
                    raise DemoError(f"{method} {path}: {err.code} {err.read()[:300]!r}") from err
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def _records(self, asset_id: str) -> int:
        return int(self.api(f"/api/v1/telemetry/count?asset_id={asset_id}")["count"])

    def state(self) -> dict[str, Any]:
        alerts = self.api("/api/v1/alerts?limit=500")["items"]
        orders = self.api("/api/v1/work-orders?limit=500")["items"]
        machines: dict[str, Any] = {}
        for m in self.machines:
            machines[m.machine_id] = {
                "degrading": m.degrading,
                "records": self._records(m.machine_id),
                "alerts": [
                    {
                        k: a[k]
                        for k in (
                            "id",
                            "failure_mode",
                            "severity",
                            "state",
                            "opened_at",
                            "iso_zone",
                            "rul_low_h",
                            "rul_median_h",
                            "rul_high_h",
                        )
                    }
                    for a in alerts
                    if a["asset_id"] == m.machine_id
                ],
                "work_orders": [
                    {
                        k: w[k]
                        for k in (
                            "id",
                            "priority",
                            "state",
                            "failure_mode",
                            "respond_by",
                            "resolve_by",
                            "planned_for",
                            "created_at",
                        )
                    }
                    for w in orders
                    if w["asset_id"] == m.machine_id
                ],
            }
        return machines

    def tick(self) -> None:
        self._check_alive()
        now = time.monotonic()
        if now - self._last_report < REPORT_EVERY_S:
            return
        self._last_report = now
        try:
            machines = self.state()
        except (urllib.error.URLError, OSError, KeyError, ValueError) as err:
            self._say(f"cloud not answering yet ({err})")
            return
        self._say(progress_line(machines))

    def portal_view(self) -> dict[str, Any]:
        """The portal customer's id, link, and the machines its token sees over the API."""
        if not self.portal:
            return {}
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/api/v1/assets?limit=500",
            headers={"Authorization": f"Bearer {self.portal['token']}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assets = json.loads(resp.read())["items"]
        return {
            "customer_id": self.portal["customer_id"],
            "url": f"http://127.0.0.1:{self.http_port}/portal",
            "assets": sorted(a["id"] for a in assets),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "machines": self.state(),
            "api": f"http://127.0.0.1:{self.http_port}",
            "ports": dict(self.ports),
            "portal": self.portal_view(),
        }


def _run(args: argparse.Namespace) -> int:
    from ironwatch.errors import CliError

    machines = default_machines()
    own_workdir = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ironwatch-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    out = sys.stderr if args.json else sys.stdout
    run = DemoRun(
        machines,
        workdir=workdir,
        time_scale=args.time_scale,
        http_port=args.http_port or free_port(),
        out=out,
    )

    stop_requested = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    summary: dict[str, Any] | None = None
    try:
        run.start()
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop_requested and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.5)
            run.tick()
        summary = run.summary()
    except (DemoError, ServiceError) as err:
        raise CliError(f"{err}\n(logs in {workdir})") from err
    finally:
        run.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if own_workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole chain on this machine: simulated machines to work orders",
        description=(
            "Start a Mosquitto broker, simulated machines (serial over socat ptys, Modbus TCP),"
            " an edge agent per gateway and the cloud service, all on 127.0.0.1. One machine"
            " develops a bearing fault in accelerated time. Ctrl-C stops everything."
        ),
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON summary as the last line of standard output",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=3600.0,
        help="simulated seconds per wall-clock second (default: 3600)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=0,
        help="port of the cloud's API and dashboard (default: a free one)",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="keep configs, data and logs here (default: a temporary directory)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory with its logs after the demo",
    )
    parser.set_defaults(func=_run)
