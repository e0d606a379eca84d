"""`ironwatch cloud ...`: serve the cloud, run a standalone ingestion worker, migrate, ACLs, tokens.

Heavy imports (FastAPI, SQLAlchemy, paho) happen inside the handlers, so the top-level
`ironwatch` command stays fast and works on a gateway without the cloud extras.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloud.app import CloudServices
    from cloud.settings import CloudSettings

__all__ = ["load_cli_settings", "register"]

log = logging.getLogger(__name__)

# CLI flag → settings field; only flags the user actually gave override the config.
_OVERRIDES = {
    "host": "http_host",
    "port": "http_port",
    "data_dir": "data_dir",
    "mqtt_host": "mqtt_host",
    "mqtt_port": "mqtt_port",
    "fleet": "fleet_file",
    "client_id": "mqtt_client_id",
    "shared_group": "mqtt_shared_group",
    "metrics_port": "metrics_port",
    "ingest_workers": "ingest_workers",
}


def _cli_error(message: str) -> Exception:
    from ironwatch.errors import CliError

    return CliError(message)


def load_cli_settings(args: argparse.Namespace) -> CloudSettings:
    """Settings from --config / $IRONWATCH_CLOUD_CONFIG, env vars and the flags given."""
    from pydantic import ValidationError

    from cloud.settings import SettingsError, load_settings

    overrides = {
        field: getattr(args, flag)
        for flag, field in _OVERRIDES.items()
        if getattr(args, flag, None) is not None
    }
    try:
        return load_settings(getattr(args, "config", None), **overrides)
    except SettingsError as err:
        raise _cli_error(str(err)) from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise _cli_error(f"invalid cloud setting {where}: {message}") from err


def _quiet_libraries() -> None:
    # Alembic logs every plugin it loads at INFO; that hides the lines that matter.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML settings file (default: $IRONWATCH_CLOUD_CONFIG)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the SQLite database, telemetry and baselines live",
    )


def _add_broker(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mqtt-host", default=None, help="MQTT broker host")
    parser.add_argument("--mqtt-port", type=int, default=None, help="MQTT broker port")


# -- serve ---------------------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    settings = load_cli_settings(args)
    _quiet_libraries()
    import uvicorn

    from cloud.app import create_app

    if settings.fleet_file is not None and not Path(settings.fleet_file).is_file():
        raise _cli_error(f"fleet file {settings.fleet_file} does not exist")
    app = create_app(settings, scoring=not args.no_scoring)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level=logging.getLevelName(logging.getLogger().level).lower(),
        lifespan="on",
        timeout_graceful_shutdown=10,
        log_config=None,
    )
    server = uvicorn.Server(config)
    # uvicorn handles SIGINT/SIGTERM itself (graceful shutdown: the lifespan stops every
    # worker), then re-raises the signal to whatever handler was there before. A no-op
    # handler here turns a requested stop into a clean exit 0 instead of death by signal.
    received: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, _frame: received.append(signum))
        for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        server.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not server.started:
        raise _cli_error(
            f"the cloud did not start on {settings.http_host}:{settings.http_port} (see the log)"
        )
    if received:
        log.info("stopped on %s", signal.Signals(received[0]).name)
    return 0


# -- ingest --------------------------------------------------------------------------------
def _ingest(args: argparse.Namespace) -> int:
    with _worker_services(args) as (stop, settings, services):
        from cloud.app import ingest_config
        from cloud.ingest import IngestConfigError, IngestConnectError

        # A stable id: the broker keeps this worker's persistent session (and what it
        # queued while the worker was down) under it. Several workers on one host need
        # --client-id each.
        client_id = args.client_id or f"{settings.mqtt_client_id}-ingest-{socket.gethostname()}"
        try:
            worker = services.ingestion_worker(ingest_config(settings, client_id=client_id))
            worker.start(wait=False)
        except (IngestConfigError, IngestConnectError) as err:
            raise _cli_error(str(err)) from err
        log.info(
            "ingestion worker %s on %s:%d%s",
            client_id,
            settings.mqtt_host,
            settings.mqtt_port,
            f" (shared group {settings.mqtt_shared_group})" if settings.mqtt_shared_group else "",
        )
        try:
            while not stop.wait(30.0):
                log.info("ingest stats: %s", worker.stats.as_dict())
        finally:
            worker.stop()
    return 0


@contextmanager
def _worker_services(
    args: argparse.Namespace,
) -> Iterator[tuple[threading.Event, CloudSettings, CloudServices]]:
    """What a worker process (`cloud ingest`, `cloud score`) runs in: SIGINT/SIGTERM set
    the event (installed first, so a stop during start-up still ends cleanly), the
    settings, and the cloud's services with their metrics port; all undone on the way out.
    """
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _quiet_libraries()
        from cloud.app import CloudServices

        settings = load_cli_settings(args)
        services = CloudServices.open(settings)
        try:
            try:
                services.serve_metrics()
            except OSError as err:
                raise _cli_error(f"metrics port {settings.metrics_host}:"
                                 f"{settings.metrics_port}: {err.strerror or err}") from err
            yield stop, settings, services
        finally:
            services.close()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# -- score ---------------------------------------------------------------------------------
def _score(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise _cli_error("--workers must be at least 1")
    if args.workers > 1:
        return _score_supervisor(args)
    return _score_worker(args)


def _score_worker(args: argparse.Namespace) -> int:
    """One scoring worker: leases its share of the fleet (PostgreSQL) and scores it."""
    with _worker_services(args) as (stop, settings, services):
        pipeline = services.start_scoring()
        log.info("scoring worker %s every %.1f s (%s)", pipeline.leases.holder,
                 settings.scoring_interval_s,
                 "all assets" if pipeline.leases.all_mine
                 else f"leases of {settings.scoring_lease_s:.0f} s")
        while not stop.wait(30.0):
            report = pipeline.last_report
            if report is not None:
                log.info("scoring: %d assets held, last round %d rows, %d scored",
                         len(pipeline.leases.mine) if not pipeline.leases.all_mine
                         else len(report.scored_assets), report.rows_read, report.rows_scored)
    return 0


def _score_supervisor(args: argparse.Namespace) -> int:
    """N scoring worker processes on this machine; one that dies is started again."""
    import multiprocessing

    from sqlalchemy.engine import make_url

    settings = load_cli_settings(args)
    if make_url(settings.sqlalchemy_url).get_backend_name() != "postgresql":
        raise _cli_error(
            "several scoring workers share the fleet through PostgreSQL leases: set "
            "database_url to a PostgreSQL database (SQLite scores in one process)"
        )
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    context = multiprocessing.get_context("spawn")
    # Worker i serves its metrics on metrics_port + i: one port each.
    base = settings.metrics_port
    ones = [
        argparse.Namespace(**{**vars(args), "workers": 1, "func": None,
                              "metrics_port": None if base is None else base + i})
        for i in range(args.workers)
    ]
    procs: list[Any] = []
    try:
        for one in ones:
            proc = context.Process(target=_score_child, args=(one,), daemon=False)
            proc.start()
            procs.append(proc)
        log.info("%d scoring workers started: pids %s", len(procs),
                 ", ".join(str(p.pid) for p in procs))
        while not stop.wait(1.0):
            for i, proc in enumerate(procs):
                if not proc.is_alive():
                    log.error("scoring worker pid %s exited with %s; starting another",
                              proc.pid, proc.exitcode)
                    procs[i] = context.Process(target=_score_child, args=(ones[i],),
                                               daemon=False)
                    procs[i].start()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the worker gives its leases back
        for proc in procs:
            proc.join(15.0)
            if proc.is_alive():
                proc.kill()
                proc.join(5.0)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _score_child(args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    raise SystemExit(_score_worker(args))


# -- migrate -------------------------------------------------------------------------------
def _migrate(args: argparse.Namespace) -> int:
    _quiet_libraries()
    from cloud.db import make_engine, upgrade

    settings = load_cli_settings(args)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        upgrade(engine)
    except Exception as err:
        raise _cli_error(f"migration failed: {err}") from err
    finally:
        engine.dispose()
    print(f"database at head: {_redact(settings.sqlalchemy_url)}")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- acl -----------------------------------------------------------------------------------
def _acl(args: argparse.Namespace) -> int:
    _quiet_libraries()
    from sqlalchemy import select

    from cloud.acl import (
        BrokerAccount,
        BrokerAuthError,
        broker_conf_text,
        generate_password,
        write_broker_auth,
    )
    from cloud.db import Gateway, make_engine, make_session_factory, upgrade
    from cloud.domain.registry import seed_fleet

    settings = load_cli_settings(args)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        upgrade(engine)
        factory = make_session_factory(engine)
        with factory() as session:
            if settings.fleet_file is not None:
                seed_fleet(session, settings.fleet_file)
                session.commit()
            gateway_ids = list(session.scalars(select(Gateway.id).order_by(Gateway.id)))
    finally:
        engine.dispose()
    if not gateway_ids:
        raise _cli_error("no gateways registered: pass --fleet FILE or register gateways first")
    out = Path(args.out)
    gateways = {gw: generate_password() for gw in gateway_ids}
    cloud_user = settings.mqtt_username or "ironwatch-cloud"
    cloud_password = (
        settings.mqtt_password.get_secret_value() if settings.mqtt_password else generate_password()
    )
    try:
        files = write_broker_auth(out, gateways, [BrokerAccount(cloud_user, cloud_password)])
    except BrokerAuthError as err:
        raise _cli_error(str(err)) from err
    # The plain passwords go to gateways' configs once; keep them readable by the owner only.
    creds = out / "credentials.toml"
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# Broker passwords: copy each into its gateway's config, then delete.\n")
        fh.write(f'[cloud]\nusername = "{cloud_user}"\npassword = "{cloud_password}"\n')
        for gw, pw in gateways.items():
            fh.write(f'\n[gateways."{gw}"]\nusername = "{gw}"\npassword = "{pw}"\n')
    conf = out / "mosquitto.conf"
    conf.write_text(broker_conf_text(files, gateway_listener=args.gateway_listener,
                                     cloud_listener=args.cloud_listener))
    print(f"password_file {files.password_file}")
    print(f"acl_file {files.acl_file}")
    print(f"mosquitto.conf {conf} (gateways on {_addr(args.gateway_listener)}, "
          f"the cloud on {_addr(args.cloud_listener)})")
    print(f"credentials {creds} ({len(gateways)} gateways, cloud user {cloud_user})")
    return 0


def _listener(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _addr(listener: tuple[str, int]) -> str:
    return f"{listener[0]}:{listener[1]}"


# -- token ---------------------------------------------------------------------------------
def _token_create(args: argparse.Namespace) -> int:
    _quiet_libraries()
    from cloud.db import make_engine, make_session_factory, upgrade
    from cloud.domain.clock import utc_now
    from cloud.domain.errors import DomainError
    from cloud.domain.tokens import create_token

    settings = load_cli_settings(args)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            try:
                row, text = create_token(
                    session,
                    name=args.name or f"{args.role} token",
                    role=args.role,
                    actor="cli",
                    now=utc_now(),
                    gateway_id=args.gateway,
                )
            except DomainError as err:
                raise _cli_error(str(err)) from err
            session.commit()
            token_id = row.id
    finally:
        engine.dispose()
    print(text)
    print(f"token {token_id} ({args.role}) created; it is shown only once", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    """Add `cloud` and its subcommands to the top-level `ironwatch` parser."""
    cloud = subparsers.add_parser(
        "cloud",
        help="the cloud service: API, ingestion, scoring, work orders",
        description="Run and administer the Ironwatch cloud service. Settings come from "
        "IRONWATCH_CLOUD_* environment variables, an optional TOML file (--config) and flags.",
    )
    sub = cloud.add_subparsers(dest="cloud_command", metavar="SUBCOMMAND")
    cloud.set_defaults(func=lambda _a: (cloud.print_help(), 2)[1])

    serve = sub.add_parser("serve", help="run the API, scoring and workers; ingestion in processes")
    _add_common(serve)
    serve.add_argument("--host", default=None, help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default 8080)")
    _add_broker(serve)
    serve.add_argument(
        "--fleet",
        type=Path,
        default=None,
        metavar="FILE",
        help="fleet TOML ([[gateways]], [[assets]]) seeded at start-up",
    )
    serve.add_argument(
        "--ingest-workers",
        type=int,
        default=None,
        metavar="N",
        help="ingestion processes (default 1; more share the stream through an MQTT 5 shared "
        "subscription; 0 runs ingestion in the service's own process)",
    )
    serve.add_argument(
        "--no-scoring",
        action="store_true",
        help="no scoring in this process: `ironwatch cloud score` workers score the fleet "
        "(PostgreSQL)",
    )
    serve.set_defaults(func=_serve)

    ingest = sub.add_parser("ingest", help="a standalone ingestion worker (scale-out)")
    _add_common(ingest)
    _add_broker(ingest)
    ingest.add_argument(
        "--client-id",
        default=None,
        help="MQTT client id, unique and stable per worker: the broker keeps "
        "its session under it (default: <client_id>-ingest-<hostname>)",
    )
    ingest.add_argument(
        "--shared-group", default=None, help="MQTT 5 shared-subscription group, e.g. 'ironwatch'"
    )
    ingest.add_argument(
        "--metrics-port", type=int, default=None, metavar="PORT",
        help="serve Prometheus metrics on this port (metrics_host, default 127.0.0.1)",
    )
    ingest.set_defaults(func=_ingest)

    score = sub.add_parser(
        "score",
        help="scoring workers without API or ingestion (scale-out)",
        description="Score the fleet in separate processes. On PostgreSQL every worker "
        "leases a share of the assets and takes over those of a worker that stopped "
        "renewing them; on SQLite one worker scores everything.",
    )
    _add_common(score)
    _add_broker(score)
    score.add_argument(
        "--workers", type=int, default=1,
        help="scoring processes on this machine (more than 1 needs PostgreSQL)",
    )
    score.add_argument(
        "--metrics-port", type=int, default=None, metavar="PORT",
        help="serve Prometheus metrics on this port, worker i on PORT + i "
        "(metrics_host, default 127.0.0.1)",
    )
    score.set_defaults(func=_score)

    migrate = sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    _add_common(migrate)
    migrate.set_defaults(func=_migrate)

    acl = sub.add_parser("acl", help="generate Mosquitto password and ACL files for the fleet")
    _add_common(acl)
    acl.add_argument("--out", required=True, metavar="DIR",
                     help="directory for passwd, acl and mosquitto.conf")
    acl.add_argument("--gateway-listener", type=_listener, default=("0.0.0.0", 1883),
                     metavar="HOST:PORT", help="where gateways connect (default 0.0.0.0:1883)")
    acl.add_argument("--cloud-listener", type=_listener, default=("127.0.0.1", 1884),
                     metavar="HOST:PORT",
                     help="where the cloud connects; only its accounts (default 127.0.0.1:1884)")
    acl.add_argument(
        "--fleet", type=Path, default=None, metavar="FILE", help="fleet TOML to register first"
    )
    acl.set_defaults(func=_acl)

    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION")
    token.set_defaults(func=lambda _a: (token.print_help(), 2)[1])
    create = token_sub.add_parser("create", help="create an API token and print it once")
    _add_common(create)
    create.add_argument(
        "--role", required=True, choices=["admin", "engineer", "service_desk", "gateway"]
    )
    create.add_argument("--name", default=None, help="what the token is for")
    create.add_argument("--gateway", default=None, help="gateway id (role gateway only)")
    create.set_defaults(func=_token_create)
