"""How every role reaches the broker: one settings model and one paho client builder.

The gateway, the ingestion workers, the cloud's command channel and the simulator fleet
all build their MQTT client here, so TLS, login, the last will, the MQTT version and the
session (clean start, session expiry) are handled one way. paho is imported inside
`build_client` only: this package is the leaf every role imports, and the cloud's API
process must not need paho to read a settings file.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)

from ironwatch.credentials import is_weak_secret

if TYPE_CHECKING:
    import paho.mqtt.client as paho_client

__all__ = [
    "BrokerSettings",
    "MqttSetupError",
    "MqttVersion",
    "TlsSettings",
    "Will",
    "build_client",
]

MqttVersion = Literal["3.1.1", "5"]


class MqttSetupError(ValueError):
    """A client cannot be built from these settings (certificates unreadable, bad values)."""


class TlsSettings(BaseModel):
    """TLS to the broker. `insecure` skips certificate and hostname checks (test rigs only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: FilePath | None = Field(default=None, description="default: the system's CAs")
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate)")
        return self


class BrokerSettings(BaseModel):
    """Where the broker is and how to log in; `tls` set means TLS is used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsSettings | None = None
    protocol: MqttVersion = "5"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("password")
    @classmethod
    def _no_default_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and is_weak_secret(value.get_secret_value()):
            raise ValueError("refusing a well-known default password; set a real one")
        return value

    @model_validator(mode="after")
    def _backoff(self) -> BrokerSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for a client that vanishes without disconnecting."""

    topic: str
    payload: bytes
    qos: Literal[0, 1, 2] = 1
    retain: bool = True


def build_client(
    broker: BrokerSettings,
    *,
    client_id: str,
    clean_start: bool = True,
    session_expiry_s: int | None = None,
    receive_maximum: int | None = None,
    will: Will | None = None,
    manual_ack: bool = False,
    max_inflight_messages: int | None = None,
) -> paho_client.Client:
    """A paho client set up for `broker`, ready for `loop_start()` (or `reconnect()`).

    `clean_start=False` keeps the broker session across reconnects: with MQTT 5 it lasts
    `session_expiry_s` after a disconnect (None: it ends with the connection; 0xFFFFFFFF:
    never), with MQTT 3.1.1 it never expires. `receive_maximum` (MQTT 5) bounds how many
    unacknowledged QoS 1/2 messages the broker sends at once, `max_inflight_messages` how
    many this client sends (paho refuses to change it after `connect_async`). Raises
    MqttSetupError if the TLS files cannot be loaded or a value is out of range.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if not client_id:
        raise MqttSetupError("client_id is required")
    v5 = broker.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else clean_start,
        manual_ack=manual_ack,
    )
    if broker.username is not None:
        password = broker.password.get_secret_value() if broker.password is not None else None
        client.username_pw_set(broker.username, password)
    if broker.tls is not None:
        tls = broker.tls
        try:
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_NONE if tls.insecure else ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ssl.SSLError, ValueError) as err:
            raise MqttSetupError(f"cannot load the TLS certificates: {err}") from err
        client.tls_insecure_set(tls.insecure)
    if max_inflight_messages is not None:
        client.max_inflight_messages_set(max_inflight_messages)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    # paho takes whole seconds.
    client.reconnect_delay_set(
        min_delay=max(1, round(broker.reconnect_min_s)),
        max_delay=max(1, round(broker.reconnect_max_s)),
    )
    properties = None
    if v5 and (session_expiry_s is not None or receive_maximum is not None):
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if session_expiry_s is not None:
            properties.SessionExpiryInterval = session_expiry_s
        if receive_maximum is not None:
            properties.ReceiveMaximum = min(receive_maximum, 65535)
    try:
        # Stores where and how to connect; the socket opens in loop_start()/reconnect().
        if v5:
            client.connect_async(broker.host, broker.port, broker.keepalive_s,
                                 clean_start=clean_start, properties=properties)
        else:
            client.connect_async(broker.host, broker.port, broker.keepalive_s)
    except ValueError as err:
        raise MqttSetupError(f"broker {broker.address}: {err}") from err
    return client
