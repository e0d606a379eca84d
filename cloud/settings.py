"""Typed settings of the cloud service: env vars `IRONWATCH_CLOUD_*`, then an optional TOML file.

Precedence, highest first: keyword overrides, environment, the TOML file, defaults.
Known default or weak secrets are refused at load time rather than discovered in production.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ironwatch.credentials import is_weak_secret
from ironwatch.mqtt import BrokerSettings, TlsSettings

__all__ = ["CONFIG_FILE_ENV", "CloudSettings", "SettingsError", "load_settings"]

CONFIG_FILE_ENV = "IRONWATCH_CLOUD_CONFIG"
MIN_SECRET_LENGTH = 16
# The TOML file chosen for one load_settings() call; a context variable keeps
# concurrent loads (tests, several apps in one process) from seeing each other's file.
_toml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "ironwatch_cloud_toml", default=None
)


class SettingsError(ValueError):
    """The settings cannot be used as they are (missing file, weak secret, bad combination)."""


def _check_secret(name: str, value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    raw = value.get_secret_value()
    if is_weak_secret(raw) or len(set(raw)) <= 2:
        raise ValueError(f"{name} is a well-known default or trivial value; generate a random one")
    if len(raw) < MIN_SECRET_LENGTH:
        raise ValueError(f"{name} must be at least {MIN_SECRET_LENGTH} characters")
    return value


class CloudSettings(BaseSettings):
    """Everything the cloud service needs: storage, broker, HTTP, scoring and work-order policy."""

    model_config = SettingsConfigDict(
        env_prefix="IRONWATCH_CLOUD_",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Path("ironwatch-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file ironwatch.db in data_dir"
    )

    telemetry_backend: Literal["embedded", "influxdb"] = "embedded"
    influx_url: str | None = None
    influx_token: SecretStr | None = None
    influx_org: str | None = None
    influx_bucket: str | None = None
    influx_database: str | None = None

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls_ca: Path | None = None
    mqtt_tls_cert: Path | None = None
    mqtt_tls_key: Path | None = None
    mqtt_tls_insecure: bool = False
    mqtt_client_id: str = "ironwatch-cloud"
    mqtt_shared_group: str | None = Field(
        default=None, description="MQTT 5 shared-subscription group for N ingestion workers"
    )
    # Ingestion limits (docs/ingestion.md, "Limits").
    ingest_max_payload_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="larger telemetry/status is dead-lettered"
    )
    ingest_ts_past_days: float = Field(
        default=3652.5, gt=0, description="records older than this (cloud clock) are refused"
    )
    ingest_ts_future_h: float = Field(
        default=24.0, gt=0, description="records further ahead than this are refused"
    )
    ingest_max_features_per_asset: int = Field(default=300, ge=1, le=100_000)
    ingest_workers: int = Field(
        default=1, ge=0, le=64,
        description="ingestion processes `cloud serve` runs (MQTT 5 shared subscription when"
        " more than one); 0: a thread of the service's own process",
    )
    dead_letter_max_rows: int = Field(
        default=100_000, ge=100, description="dead letters kept; the oldest are dropped"
    )

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    dashboard_local_read_only: bool = Field(
        default=True,
        description="browsers on 127.0.0.1/::1 may read the dashboard without signing in; "
        "turn off behind a reverse proxy on the same host",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="bootstrap admin API token; at least 16 random characters"
    )

    scoring_interval_s: float = Field(default=2.0, gt=0)
    scoring_lease_s: float = Field(
        default=30.0, gt=0,
        description="how long a scoring worker holds its assets without renewing (PostgreSQL);"
        " a dead worker's assets are taken over after this long",
    )
    scoring_fit_budget_s: float | None = Field(
        default=None, gt=0,
        description="seconds a scoring round may spend fitting commissioned points (a new"
        " fleet, a takeover, a restart); the rest wait for later rounds, oldest first."
        " Default: a quarter of the fleet's record interval, at least half of"
        " scoring_interval_s",
    )
    commissioning_records: int = Field(
        default=30, ge=1, description="records per asset/point used as the healthy baseline"
    )
    running_hours_max_gap_s: float = Field(
        default=600.0, gt=0, le=86400.0,
        description="longest capture-time gap between two running records that still "
        "counts as running hours; a longer silence earns nothing",
    )
    fleet_file: Path | None = Field(
        default=None, description="TOML with [[gateways]] and [[assets]] seeded at start-up"
    )
    temperature_limit_c: float = Field(
        default=85.0, gt=-50.0, le=500.0,
        description="bearing temperature at which any asset raises an overheating alarm",
    )
    temperature_limits_c: dict[str, float] = Field(
        default_factory=dict,
        description="per-asset temperature limits (asset id -> °C) overriding the default",
    )

    # Prometheus metrics (docs/metrics.md).
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token for GET /metrics; without one only loopback clients read it",
    )
    metrics_host: str = Field(default="127.0.0.1", description="the exporter port's address")
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535,
        description="an exporter port of its own (workers without HTTP); None: off",
    )
    metrics_gateway_series: bool = Field(
        default=True, description="re-export every registered gateway's status counters",
    )

    webhook_url: str | None = Field(
        default=None, description="kept as the legacy subscription to every event"
    )
    webhook_secret: SecretStr | None = None
    webhook_refuse_private_addresses: bool = Field(
        default=False,
        description="refuse webhook URLs that resolve to private, loopback or link-local "
        "addresses (SSRF protection for multi-tenant deployments)",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8080",
        description="the dashboard's address as people reach it; e-mails link to it",
    )
    smtp_host: str | None = Field(default=None, description="no e-mail is sent without it")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "ironwatch@localhost"
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the SMTP server; default: the system's"
    )
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=300)
    sla_policy_file: Path | None = None
    failure_mode_catalogue_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _toml_file.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @field_validator("admin_token")
    @classmethod
    def _admin_token_strong(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret("admin_token", value)

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_strong(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret("metrics_token", value)

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_strong(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret("webhook_secret", value)

    @model_validator(mode="after")
    def _defaults_and_combinations(self) -> CloudSettings:
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'ironwatch.db'}"
        if self.telemetry_backend == "influxdb" and not self.influx_url:
            raise ValueError("telemetry_backend 'influxdb' needs influx_url")
        if self.webhook_url is not None and self.webhook_secret is None:
            # An unsigned webhook lets anyone who finds the receiver forge work orders.
            raise ValueError("webhook_url needs webhook_secret to sign deliveries")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password go together")
        try:
            self.broker  # noqa: B018 -- checked at load time, not at first connect
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            msg = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"mqtt settings: {where + ': ' if where else ''}{msg}") from err
        return self

    @property
    def broker(self) -> BrokerSettings:
        """The broker connection as the contract's settings model (used by every MQTT client)."""
        tls = None
        if (self.mqtt_tls_ca or self.mqtt_tls_cert or self.mqtt_tls_key
                or self.mqtt_tls_insecure):
            tls = TlsSettings(ca_file=self.mqtt_tls_ca, cert_file=self.mqtt_tls_cert,
                              key_file=self.mqtt_tls_key, insecure=self.mqtt_tls_insecure)
        return BrokerSettings(host=self.mqtt_host, port=self.mqtt_port,
                              username=self.mqtt_username, password=self.mqtt_password, tls=tls)

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, never None after validation."""
        assert self.database_url is not None
        return self.database_url


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> CloudSettings:
    """Load settings from overrides, `IRONWATCH_CLOUD_*` env vars and an optional TOML file.

    The file is `config_file`, else the path in `$IRONWATCH_CLOUD_CONFIG`, else none.
    """
    path_text = config_file if config_file is not None else os.environ.get(CONFIG_FILE_ENV)
    path = Path(path_text) if path_text else None
    if path is not None and not path.is_file():
        raise SettingsError(f"cloud config file {path} does not exist")
    token = _toml_file.set(path)
    try:
        return CloudSettings(**overrides)
    finally:
        _toml_file.reset(token)
