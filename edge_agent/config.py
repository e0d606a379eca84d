"""The gateway config: a TOML file validated with pydantic, secrets overridable from the env.

Environment variables with the prefix `IRONWATCH_EDGE_` override the file, nested fields
joined by `__` (e.g. `IRONWATCH_EDGE_MQTT__PASSWORD`), so a password need not sit in the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge_agent._errors import ConfigError
from ironwatch.errors import describe_validation_error
from ironwatch.ids import Id
from ironwatch.mqtt import BrokerSettings, MqttVersion, TlsSettings
from ironwatch.physics import AssetPhysics
from ironwatch.wire import check_feature_name

__all__ = [
    "AssetConfig",
    "ChannelMap",
    "EdgeConfig",
    "MetricsConfig",
    "ModbusSourceConfig",
    "MqttConfig",
    "OutboxConfig",
    "SensorIdentity",
    "SerialSourceConfig",
    "TlsConfig",
    "load_config",
]

ENV_PREFIX = "IRONWATCH_EDGE_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TlsConfig = TlsSettings
"""TLS to the broker (the contract's `ironwatch.mqtt.TlsSettings`)."""


class MqttConfig(BrokerSettings):
    """Broker connection (the contract's `BrokerSettings`), batching and in-flight limits."""

    client_id: str | None = Field(default=None, description="default: the gateway id")
    protocol: MqttVersion = "3.1.1"
    max_records_per_message: int = Field(default=500, ge=1, le=5000)
    max_message_bytes: int = Field(default=65_536, ge=4096, le=16_000_000)
    max_inflight_batches: int = Field(default=8, ge=1, le=1000)
    stored_ack_timeout_s: float = Field(
        default=60.0, ge=0.5, le=86_400,
        description="send records again when the cloud has not said they are stored by then",
    )
    max_unstored_records: int = Field(
        default=100_000, ge=1, description="records out with the broker, not yet stored",
    )
    status_interval_s: float = Field(default=15.0, ge=1, le=3600)


class OutboxConfig(_Section):
    """The durable outbox: where it lives, how big it may grow and what happens when full."""

    path: Path = Path("outbox.sqlite3")
    max_records: int = Field(default=1_000_000, ge=10)
    policy: Literal["drop_oldest"] = "drop_oldest"
    synchronous: Literal["full", "normal"] = "full"


class MetricsConfig(_Section):
    """Prometheus metrics over HTTP: off unless a port is given (docs/metrics.md)."""

    port: int | None = Field(default=None, ge=1, le=65535, description="None: no exporter")
    host: str = Field(default="127.0.0.1", min_length=1,
                      description="bind address; 0.0.0.0 lets another host scrape")


class AssetConfig(AssetPhysics):
    """A machine: its id and its physics (`ironwatch.physics.AssetPhysics`), written flat.

    `points` are its measurement points (e.g. 'de_radial'), each with the bearing under it.
    The gateway reports the physics in its birth message, so the cloud learns it from here.
    """

    asset_id: Id

    @model_validator(mode="after")
    def _complete(self) -> AssetConfig:
        # The gateway computes shaft-order features, so it must know the nominal speed.
        if self.speed_rpm is None:
            raise ValueError("speed_rpm: a gateway asset needs its nominal shaft speed")
        if not self.points:
            raise ValueError("an asset needs at least one measurement point")
        return self

    @property
    def nominal_speed_rpm(self) -> float:
        """The nominal shaft speed (always set on a gateway)."""
        assert self.speed_rpm is not None
        return self.speed_rpm

    @property
    def physics(self) -> AssetPhysics:
        """The physics alone, as the birth message carries it."""
        return AssetPhysics.model_validate(self.model_dump(exclude={"asset_id"}))


class ChannelMap(_Section):
    """Which asset/point a serial device channel measures."""

    channel: int = Field(ge=0, le=255)
    asset_id: Id
    point: Id


class SensorIdentity(_Section):
    """What a sensor's Hello must say for its data to count as the configured asset's."""

    model: str | None = Field(default=None, min_length=1, max_length=255)
    serial_number: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _something(self) -> SensorIdentity:
        if self.model is None and self.serial_number is None:
            raise ValueError("pin at least one of model, serial_number")
        return self

    def describe(self) -> str:
        return f"model {self.model or '*'}, serial {self.serial_number or '*'}"


class SerialSourceConfig(_Section):
    """A sensor speaking the firmware protocol on a serial port.

    With `identity`, data is taken only from a device whose Hello names that model and
    serial number: another device on the port (a swapped or misplaced sensor) is reported,
    and its data is not ingested as the asset.
    """

    port: str = Field(min_length=1)
    baudrate: int = Field(default=921_600, gt=0)
    device_id: int | None = Field(default=None, ge=0, le=0xFFFF, description="None: any")
    identity: SensorIdentity | None = None
    window_samples: int = Field(default=4096, ge=64, le=1_048_576)
    channels: list[ChannelMap] = Field(min_length=1)

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, value: list[ChannelMap]) -> list[ChannelMap]:
        if len({c.channel for c in value}) != len(value):
            raise ValueError("each channel may be mapped once")
        return value


class ModbusSourceConfig(_Section):
    """A Modbus device read through a firmware_bridge device profile."""

    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535, description="TCP port")
    serial_port: str | None = Field(default=None, description="RTU: the serial device")
    baudrate: int = Field(default=19_200, gt=0)
    device_id: int = Field(default=1, ge=0, le=247)
    profile: str = Field(min_length=1)
    asset_id: Id
    point: Id
    poll_interval_s: float | None = Field(default=None, gt=0, le=3600,
                                          description="default: the profile's")
    features: dict[str, str] = Field(
        default_factory=dict,
        description="register key -> feature name; unmapped keys keep their own name",
    )

    @field_validator("features")
    @classmethod
    def _feature_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value.values():
            check_feature_name(name)
        return value

    @model_validator(mode="after")
    def _endpoint(self) -> ModbusSourceConfig:
        if self.transport == "tcp" and not self.host:
            raise ValueError("transport 'tcp' needs host (and port, default 502)")
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("transport 'rtu' needs serial_port")
        return self


class EdgeConfig(BaseSettings):
    """Everything a gateway needs; load it with `load_config(path)`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    gateway_id: Id
    reporting_interval_s: float = Field(default=10.0, ge=0.1, le=86_400)
    max_stale_s: float = Field(
        default=300.0, gt=0, description="after this, a silent point reports nulls"
    )
    mqtt: MqttConfig = MqttConfig()
    outbox: OutboxConfig = OutboxConfig()
    metrics: MetricsConfig = MetricsConfig()
    assets: list[AssetConfig] = Field(default_factory=list)
    serial: list[SerialSourceConfig] = Field(default_factory=list)
    modbus: list[ModbusSourceConfig] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file comes in as init kwargs; the environment must win over it.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _references(self) -> EdgeConfig:
        points: dict[str, set[str]] = {}
        for asset in self.assets:
            if asset.asset_id in points:
                raise ValueError(f"asset {asset.asset_id!r} is defined twice")
            points[asset.asset_id] = set(asset.point_ids)

        def check(where: str, asset_id: str, point: str) -> None:
            if asset_id not in points:
                raise ValueError(f"{where}: unknown asset_id {asset_id!r}")
            if point not in points[asset_id]:
                raise ValueError(f"{where}: asset {asset_id!r} has no point {point!r}")

        for i, src in enumerate(self.serial):
            for ch in src.channels:
                check(f"serial[{i}] channel {ch.channel}", ch.asset_id, ch.point)
        for i, mb in enumerate(self.modbus):
            check(f"modbus[{i}]", mb.asset_id, mb.point)
        if not self.serial and not self.modbus:
            raise ValueError("no sources: add at least one [[serial]] or [[modbus]] table")
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or self.gateway_id

    def asset(self, asset_id: str) -> AssetConfig:
        return next(a for a in self.assets if a.asset_id == asset_id)


def parse_config(data: dict[str, Any], source: str = "<config>") -> EdgeConfig:
    """Validate an already-parsed config mapping; ConfigError names the source and field."""
    try:
        return EdgeConfig(**data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {describe_validation_error(err)}") from err


def load_config(path: str | Path) -> EdgeConfig:
    """Read and validate a gateway TOML file (env overrides applied); ConfigError if bad."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such file") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    config = parse_config(data, str(path))
    if not config.outbox.path.is_absolute():
        # A relative outbox path is relative to the config file, not to the working directory.
        outbox = config.outbox.model_copy(update={"path": path.parent / config.outbox.path})
        config = config.model_copy(update={"outbox": outbox})
    return config
