"""The cloud process: database, telemetry store, ingestion, scoring, webhooks, escalations, API.

`create_app(settings)` returns a FastAPI app whose lifespan migrates the database,
seeds the fleet file, opens the telemetry store and starts every background worker;
on shutdown it stops them in reverse order, so no thread or socket outlives the app.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fastapi import FastAPI
from sqlalchemy import Engine

from cloud.db import SessionFactory, make_engine, make_session_factory, upgrade
from cloud.domain.catalogue import FailureModeCatalogue, load_catalogue
from cloud.domain.clock import utc_now
from cloud.domain.policy import ServiceLevelPolicy, load_policy
from cloud.domain.registry import DbAssetRegistry
from cloud.settings import CloudSettings
from cloud.telemetry import TelemetryStore

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    # Imported where they are started: each pulls its own libraries (paho, scikit-learn).
    from cloud.api import ApiContext
    from cloud.domain.deadletters import DbDeadLetterStore
    from cloud.ingest import IngestConfig, IngestionWorker, IngestStats
    from cloud.ingest_processes import IngestProcesses
    from cloud.mail import EmailDispatcher
    from cloud.metrics import MetricsExporter
    from cloud.pipeline import GatewayCommands, ScoringPipeline
    from cloud.webhooks import WebhookDispatcher
    from ironwatch.wire import GatewayStatus, WaveformSnapshot

__all__ = [
    "CloudServices",
    "PeriodicTask",
    "create_app",
    "ingest_config",
    "open_store",
    "run_ingest_process",
]

log = logging.getLogger(__name__)

ESCALATION_INTERVAL_S = 15.0
# The case library and the monthly reports: cheap when nothing is due, so a short interval.
INSIGHT_INTERVAL_S = 300.0


class _Stoppable(Protocol):
    def stop(self) -> None: ...


class PeriodicTask:
    """Call `fn` every `interval_s` on a daemon thread; an exception is logged, not fatal."""

    def __init__(self, name: str, interval_s: float, fn: Callable[[], None]) -> None:
        self.name = name
        self.interval_s = interval_s
        self.fn = fn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.fn()
            except Exception:
                log.exception("%s failed; retrying in %.0f s", self.name, self.interval_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None


def _seed(factory: SessionFactory, fleet_file: Path, attempts: int = 3) -> None:
    """Upsert the fleet file; several processes starting together may race on new rows."""
    from sqlalchemy.exc import IntegrityError

    from cloud.domain.registry import seed_fleet

    for attempt in range(attempts):
        with factory() as session:
            try:
                seed_fleet(session, fleet_file)
                session.commit()
                return
            except IntegrityError:
                # Another process inserted the same gateway or asset first: read it back.
                session.rollback()
                if attempt == attempts - 1:
                    raise


def _sync_legacy_webhook(factory: SessionFactory, settings: CloudSettings, now: datetime) -> None:
    """The settings file's webhook_url as the legacy subscription (see docs/api.md)."""
    from sqlalchemy.exc import IntegrityError

    from cloud.domain.subscriptions import sync_legacy_subscription

    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    for attempt in range(3):
        with factory() as session:
            try:
                sync_legacy_subscription(session, url=settings.webhook_url, secret=secret, now=now)
                session.commit()
                return
            except IntegrityError:
                # Another process starting at the same time created it first: read it back.
                session.rollback()
                if attempt == 2:
                    raise


def open_store(settings: CloudSettings) -> TelemetryStore:
    """The telemetry store the settings ask for: embedded SQLite under data_dir, or InfluxDB."""
    if settings.telemetry_backend == "influxdb":
        from cloud.telemetry import InfluxStore

        assert settings.influx_url is not None  # the settings validator guarantees it
        token = settings.influx_token.get_secret_value() if settings.influx_token else None
        # An org means InfluxDB 2.x's write API; otherwise the 1.x /write endpoint, which
        # InfluxDB 1.x and 3.x both accept.
        return InfluxStore(
            settings.influx_url,
            database=settings.influx_database or settings.influx_bucket or "ironwatch",
            snapshot_dir=settings.data_dir / "snapshots",
            write_api="v2" if settings.influx_org else "v1",
            token=token,
            org=settings.influx_org or "-",
            bucket=settings.influx_bucket,
        )
    from cloud.telemetry import SqliteTelemetryStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteTelemetryStore(settings.data_dir / "telemetry.db")


def ingest_config(settings: CloudSettings, *, client_id: str | None = None) -> IngestConfig:
    """Map cloud settings to the ingestion worker's broker config."""
    from cloud.ingest import IngestConfig

    broker = settings.broker.model_copy(update={"reconnect_min_s": 0.2, "reconnect_max_s": 5.0})
    return IngestConfig(
        broker=broker,
        client_id=client_id or settings.mqtt_client_id,
        shared_group=settings.mqtt_shared_group,
        max_payload_bytes=settings.ingest_max_payload_bytes,
        ts_past_s=settings.ingest_ts_past_days * 86_400,
        ts_future_s=settings.ingest_ts_future_h * 3_600,
        max_features_per_asset=settings.ingest_max_features_per_asset,
    )


@dataclass
class CloudServices:
    """Everything the cloud process runs besides HTTP, built and stopped together."""

    settings: CloudSettings
    engine: Engine
    session_factory: SessionFactory
    store: TelemetryStore
    policy: ServiceLevelPolicy
    catalogue: FailureModeCatalogue
    registry: DbAssetRegistry
    dead_letters: DbDeadLetterStore
    clock: Callable[[], datetime] = utc_now
    ingest: IngestionWorker | IngestProcesses | None = None
    pipeline: ScoringPipeline | None = None
    webhooks: WebhookDispatcher | None = None
    mail: EmailDispatcher | None = None
    escalations: PeriodicTask | None = None
    commands: GatewayCommands | None = None
    metrics_exporter: MetricsExporter | None = None
    _started: list[_Stoppable] = field(default_factory=list)

    @classmethod
    def open(
        cls, settings: CloudSettings, *, clock: Callable[[], datetime] = utc_now,
        prepare: bool = True,
    ) -> CloudServices:
        """Migrate the database, seed the fleet file and open the telemetry store.

        `prepare=False` (an ingestion process of a service that did both) skips the first two.
        """
        from cloud.domain.deadletters import DbDeadLetterStore

        engine = make_engine(settings.sqlalchemy_url)
        try:
            factory = make_session_factory(engine)
            if prepare:
                upgrade(engine)
                if settings.fleet_file is not None:
                    _seed(factory, settings.fleet_file)
                _sync_legacy_webhook(factory, settings, clock())
            store = open_store(settings)
        except BaseException:
            engine.dispose()
            raise
        return cls(
            settings=settings,
            engine=engine,
            session_factory=factory,
            store=store,
            policy=load_policy(settings.sla_policy_file),
            catalogue=load_catalogue(settings.failure_mode_catalogue_file),
            registry=DbAssetRegistry(factory),
            dead_letters=DbDeadLetterStore(factory, max_rows=settings.dead_letter_max_rows),
            clock=clock,
        )

    def ingestion_worker(self, config: IngestConfig) -> IngestionWorker:
        """An ingestion worker wired to this cloud: registry, dead letters, status, epochs."""
        from cloud.ingest import IngestionWorker
        from cloud.metrics import SOURCES, ingest_source

        worker = IngestionWorker(
            config,
            self.store,
            self.registry,
            on_status=self.on_status,
            on_snapshot=self.on_snapshot,
            dead_letters=self.dead_letters,
            on_epoch=self.on_epoch,
        )
        self._started.append(SOURCES.attach(f"ingest:{config.client_id}", ingest_source(worker)))
        return worker

    def serve_metrics(self) -> None:
        """Start the metrics exporter port when `metrics_port` is set (stops with close)."""
        from cloud.metrics import MetricsExporter

        if self.settings.metrics_port is not None and self.metrics_exporter is None:
            self.metrics_exporter = MetricsExporter(self.settings.metrics_host,
                                                    self.settings.metrics_port)
            self._started.append(self.metrics_exporter)

    def export_fleet_metrics(self) -> None:
        """Alerts, work orders and gateways from the database in this process's metrics
        (the service does it; workers do not, so each series has one source)."""
        from cloud.metrics import SOURCES, database_source

        source = database_source(self.session_factory,
                                 per_gateway=self.settings.metrics_gateway_series)
        self._started.append(SOURCES.attach("database", source))

    def ingest_stats(self) -> tuple[IngestStats, int] | None:
        """The running worker's counters and the dead letters dropped, or None."""
        if self.ingest is None:
            return None
        from cloud.ingest_processes import IngestProcesses

        if isinstance(self.ingest, IngestProcesses):
            return self.ingest.stats, self.ingest.dead_letters_dropped
        return self.ingest.stats, self.dead_letters.dropped

    # -- callbacks from ingestion ----------------------------------------------------------
    def on_status(self, status: GatewayStatus) -> None:
        """A gateway's status message: state, last sequence, counters, last seen."""
        from cloud.domain.errors import NotFoundError
        from cloud.domain.gateways import record_status
        from cloud.domain.physics import record_reported_physics

        with self.session_factory() as session:
            try:
                record_status(
                    session,
                    gateway_id=status.gateway_id,
                    state=status.state,
                    now=self.clock(),
                    seq=status.seq,
                    software_version=status.software_version or None,
                    counters=dict(status.counters),
                    extra={
                        "assets": list(status.assets),
                        "reporting_interval_s": status.reporting_interval_s,
                        "clock_offset_s": status.clock_offset_s,
                        "sent_at": status.sent_at.isoformat(),
                    },
                )
            except NotFoundError:
                log.warning("status from unregistered gateway %s ignored", status.gateway_id)
                return
            if status.state == "online" and status.physics:
                record_reported_physics(session, gateway_id=status.gateway_id,
                                        physics=status.physics, now=self.clock())
            session.commit()

    def on_epoch(self, gateway_id: str, epoch: str, first_seq: int) -> None:
        """Records of an outbox epoch the worker had not seen: a new one becomes an event."""
        from cloud.domain.errors import NotFoundError
        from cloud.domain.gateways import note_epoch

        with self.session_factory() as session:
            try:
                event = note_epoch(session, gateway_id=gateway_id, epoch=epoch,
                                   first_seq=first_seq, now=self.clock())
            except NotFoundError:
                return
            session.commit()
        if event is not None:
            log.warning("%s", event.message)

    def on_snapshot(self, snapshot: WaveformSnapshot) -> None:
        # The worker already stored it; diagnosis picks it up in the next scoring round.
        log.info("waveform snapshot from %s/%s (%s)", snapshot.asset_id, snapshot.point,
                 snapshot.ts.isoformat())

    def request_snapshot(self, asset_id: str, point: str | None, actor: str) -> str:
        """Ask an asset's gateway for a raw waveform; returns the command id."""
        if self.commands is None:
            raise RuntimeError("no broker connection for commands")
        return self.commands.request_snapshot(asset_id, point, actor)

    def check_deadlines(self) -> None:
        """Climb the escalation ladder and open running-hours reminders; wake the senders."""
        from cloud.domain.escalation import check_escalations
        from cloud.domain.reminders import check_maintenance_plans

        now = self.clock()
        with self.session_factory() as session:
            raised = check_escalations(
                session, now, policy=self.policy, dashboard_url=self.settings.public_url
            )
            reminders = check_maintenance_plans(
                session, now, policy=self.policy, catalogue=self.catalogue
            )
            session.commit()
        if raised or reminders:
            self.wake_senders()

    def wake_senders(self) -> None:
        """Tell the webhook and e-mail workers that new deliveries are committed."""
        if self.webhooks is not None:
            self.webhooks.wake()
        if self.mail is not None:
            self.mail.wake()

    def file_insight(self) -> None:
        """Cases for newly closed work orders, and last month's operating reports once."""
        from cloud.dashboard import file_reports
        from cloud.domain.cases import sync_cases

        now = self.clock()
        with self.session_factory() as session:
            if sync_cases(session, now=now):
                session.commit()
        filed = file_reports(self.session_factory, self.store, now)
        if filed:
            log.info("filed %d monthly operating reports", filed)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, *, ingest: bool = True, scoring: bool = True) -> None:
        """Start the background workers; ingestion keeps retrying if the broker is down.

        Ingestion runs in `settings.ingest_workers` processes of its own (0: a thread here).
        """
        from cloud.metrics import SOURCES, ingest_source
        from cloud.pipeline import GatewayCommands

        try:
            self.serve_metrics()
            from cloud.mail import EmailDispatcher, smtp_config
            from cloud.webhooks import make_dispatcher

            webhooks = make_dispatcher(self.settings, self.session_factory, clock=self.clock)
            self.webhooks = webhooks
            webhooks.start()
            self._started.append(webhooks)
            smtp = smtp_config(self.settings)
            if smtp is not None:
                mail = EmailDispatcher(self.session_factory, smtp, clock=self.clock)
                self.mail = mail
                mail.start()
                self._started.append(mail)
            self.escalations = PeriodicTask(
                "ironwatch-escalations", ESCALATION_INTERVAL_S, self.check_deadlines
            )
            self.escalations.start()
            self._started.append(self.escalations)
            insight = PeriodicTask("ironwatch-insight", INSIGHT_INTERVAL_S, self.file_insight)
            insight.start()
            self._started.append(insight)
            commands = GatewayCommands(self.settings, self.session_factory, clock=self.clock)
            self.commands = commands
            commands.start()
            self._started.append(commands)
            if scoring:
                self._start_pipeline(commands)
            if ingest and self.settings.ingest_workers > 0:
                # Processes of their own: validation and storage off scoring's GIL.
                from cloud.ingest_processes import IngestProcesses

                processes = IngestProcesses(self.settings, self.settings.ingest_workers,
                                            run_ingest_process)
                self.ingest = processes
                processes.start()
                self._started.append(processes)
                self._started.append(SOURCES.attach("ingest", ingest_source(processes)))
            elif ingest:
                worker = self.ingestion_worker(ingest_config(self.settings))
                self.ingest = worker
                worker.start(wait=False)
                self._started.append(worker)
        except BaseException:
            self.close()
            raise

    def start_scoring(self) -> ScoringPipeline:
        """Only scoring (and the command channel it asks gateways for waveforms on): a
        scoring worker process (`ironwatch cloud score`), which leases its assets."""
        from cloud.pipeline import GatewayCommands

        try:
            commands = GatewayCommands(self.settings, self.session_factory, clock=self.clock)
            self.commands = commands
            commands.start()
            self._started.append(commands)
            return self._start_pipeline(commands)
        except BaseException:
            self.close()
            raise

    def _start_pipeline(self, commands: GatewayCommands) -> ScoringPipeline:
        from cloud.metrics import SOURCES, scoring_source
        from cloud.pipeline import ModelSuite, ScoringPipeline

        pipeline = ScoringPipeline(
            self.store,
            self.session_factory,
            self.settings,
            clock=self.clock,
            models=ModelSuite(snapshots=self.store.latest_snapshot),
            policy=self.policy,
            catalogue=self.catalogue,
            request_snapshot=commands.request_snapshot,
        )
        self.pipeline = pipeline
        pipeline.start()
        self._started.append(pipeline)
        self._started.append(SOURCES.attach("scoring", scoring_source(pipeline.health)))
        return pipeline

    def close(self) -> None:
        """Stop workers newest first (ingestion before scoring), then close storage."""
        while self._started:
            worker = self._started.pop()
            try:
                worker.stop()
            except Exception:
                log.exception("stopping %s failed", type(worker).__name__)
        self.store.close()
        self.engine.dispose()


def run_ingest_process(
    settings: CloudSettings, client_id: str, conn: Connection[object, object], log_level: int
) -> None:
    """One ingestion process of `cloud serve` (see cloud.ingest_processes): open the
    database and the store, run a worker, answer the parent's questions until it says stop."""
    from cloud.ingest_processes import serve_worker, worker_signals
    from cloud.metrics._series import ingest_counts

    stop = worker_signals()
    logging.basicConfig(level=log_level,
                        format=f"%(asctime)s %(levelname)s [{client_id}] %(name)s: %(message)s")
    services = CloudServices.open(settings, prepare=False)
    worker = services.ingestion_worker(ingest_config(settings, client_id=client_id))
    try:
        worker.start(wait=False)
        serve_worker(conn, lambda: (worker.stats, services.dead_letters.dropped,
                                    ingest_counts()), stop)
    finally:
        worker.stop()
        services.close()
        with contextlib.suppress(OSError):
            conn.send((worker.stats, services.dead_letters.dropped, ingest_counts()))
        conn.close()


def _mount(app: FastAPI, settings: CloudSettings) -> None:
    """Mount the REST API at /api/v1, the dashboard at / and /metrics; the first two read the
    published context. Every response gets the security headers, every dashboard form the
    CSRF check, every request its latency in the metrics."""
    from cloud.api import api_router, install_error_handlers
    from cloud.api.security import install_security_headers
    from cloud.metrics import install_request_metrics, metrics_router

    install_error_handlers(app)
    install_security_headers(app)
    app.include_router(api_router())
    app.include_router(metrics_router(settings))
    try:
        from cloud.dashboard import dashboard_router, install_csrf_protection
    except ImportError:  # a build without the dashboard still serves the API
        pass
    else:
        install_csrf_protection(app)
        app.include_router(dashboard_router())
    install_request_metrics(app)  # added last: the outermost, so every answer is timed


def create_app(
    settings: CloudSettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    ingest: bool = True,
    scoring: bool = True,
) -> FastAPI:
    """The cloud service as an ASGI app; background work runs for the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from cloud.api.deps import publish_context, withdraw_context

        services = CloudServices.open(settings, clock=clock)
        try:
            context = _api_context(services)
            publish_context(app, context)
            services.start(ingest=ingest, scoring=scoring)
            services.export_fleet_metrics()
            if services.pipeline is not None:
                context.scoring = services.pipeline.health
            app.state.ironwatch_services = services
            log.info("ironwatch cloud up: data in %s, broker %s:%d", settings.data_dir,
                     settings.mqtt_host, settings.mqtt_port)
            yield
        finally:
            withdraw_context(app)
            services.close()
            log.info("ironwatch cloud stopped")

    app = FastAPI(
        title="Ironwatch",
        version=_version(),
        lifespan=lifespan,
        # /api/v1/openapi.json is an API route behind a token (cloud.api.routes.openapi).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    _mount(app, settings)
    return app


def _api_context(services: CloudServices) -> ApiContext:
    """What the API and the dashboard serve from (sessions, telemetry, policy, commands)."""
    from cloud.api import make_context

    return make_context(
        services.settings,
        services.session_factory,
        telemetry_store=services.store,
        policy=services.policy,
        catalogue=services.catalogue,
        notifier=_LazyNotifier(services),
        registry=services.registry,
        clock=services.clock,
        request_snapshot=services.request_snapshot,
        ingest_stats=services.ingest_stats,
    )


@dataclass
class _LazyNotifier:
    """Wakes the webhook and e-mail workers if they run (they start after the context is
    published)."""

    services: CloudServices

    def wake(self) -> None:
        self.services.wake_senders()


def _version() -> str:
    from ironwatch import __version__

    return __version__
