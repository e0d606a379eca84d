"""The one MQTT client builder against a real Mosquitto: login, last will, TLS."""

from __future__ import annotations

import gc
import queue
import ssl
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from pydantic import ValidationError

from ironwatch.mqtt import BrokerSettings, MqttSetupError, TlsSettings, Will, build_client
from ironwatch_app.local_servers import Mosquitto, MosquittoUser

USER = MosquittoUser("gw-1", "gw-1-0123456789abcdef", acl=("topic readwrite #",))
# A second account: the broker binds a gateway's client id to its username, so two
# clients at once need two accounts.
OTHER = MosquittoUser("gw-2", "gw-2-0123456789abcdef", acl=("topic readwrite #",))


# -- settings (pure) ----------------------------------------------------------------------

def test_the_contract_package_does_not_pull_paho() -> None:
    code = ("import sys, ironwatch.mqtt, ironwatch.wire, ironwatch.ids, ironwatch.units\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert "'paho'" not in out
    assert "'pydantic'" in out


def test_weak_password_is_refused_at_the_password_field() -> None:
    with pytest.raises(ValidationError) as err:
        BrokerSettings(username="gw-1", password="ChangeMe")
    assert err.value.errors()[0]["loc"] == ("password",)
    assert "well-known default password" in str(err.value)


def test_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        TlsSettings(cert_file=cert)


def test_unreadable_ca_file_is_a_setup_error(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    broker = BrokerSettings(tls=TlsSettings(ca_file=ca))
    with pytest.raises(MqttSetupError, match="cannot load the TLS certificates"):
        build_client(broker, client_id="x")


def test_backoff_bounds_are_checked() -> None:
    with pytest.raises(ValidationError, match="reconnect_min_s must not exceed"):
        BrokerSettings(reconnect_min_s=10, reconnect_max_s=2)


# -- against a real broker ----------------------------------------------------------------

def _connect(client: mqtt.Client, timeout_s: float = 10.0) -> Any:
    """Start the client's loop; return the broker's CONNACK reason code (or None on timeout)."""
    result: queue.SimpleQueue[Any] = queue.SimpleQueue()
    client.on_connect = lambda _c, _u, _f, reason, _p: result.put(reason)
    client.loop_start()
    try:
        return result.get(timeout=timeout_s)
    except queue.Empty:
        return None


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()
    sock = client.socket()
    if sock is not None:
        sock.close()
    client._reset_sockets()  # paho closes these only in __del__


@pytest.fixture
def secured() -> Iterator[Mosquitto]:
    broker = Mosquitto(users=[USER, OTHER]).start()
    yield broker
    broker.close()


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_login_is_refused_with_a_wrong_password_and_accepted_with_the_right_one(
    secured: Mosquitto, protocol: str
) -> None:
    base = {"host": secured.host, "port": secured.port, "protocol": protocol,
            "username": USER.username}
    wrong = build_client(BrokerSettings(**base, password="not-the-password-1"),
                         client_id="gw-1-wrong")
    wrong.reconnect_delay_set(5, 5)
    reason = _connect(wrong)
    _close(wrong)
    assert reason is not None and reason.is_failure
    right = build_client(BrokerSettings(**base, password=USER.password), client_id="gw-1")
    reason = _connect(right)
    try:
        assert reason is not None and not reason.is_failure
        assert right.publish("ironwatch/v1/gw-1/telemetry", b"{}", qos=1).rc == 0
    finally:
        _close(right)


@pytest.mark.integration
def test_last_will_is_delivered_when_the_client_vanishes(secured: Mosquitto) -> None:
    broker = BrokerSettings(host=secured.host, port=secured.port, username=USER.username,
                            password=USER.password)
    other = BrokerSettings(host=secured.host, port=secured.port, username=OTHER.username,
                           password=OTHER.password)
    got: queue.SimpleQueue[mqtt.MQTTMessage] = queue.SimpleQueue()
    watcher = build_client(other, client_id="gw-2")
    watcher.on_message = lambda _c, _u, msg: got.put(msg)
    subscribed = threading.Event()
    watcher.on_subscribe = lambda *_a: subscribed.set()
    assert not _connect(watcher).is_failure
    watcher.subscribe("ironwatch/v1/gw-1/status", qos=1)
    assert subscribed.wait(5)
    will = Will("ironwatch/v1/gw-1/status", b'{"state":"offline"}', qos=1, retain=False)
    dying = build_client(broker, client_id="gw-1", will=will)
    try:
        assert not _connect(dying).is_failure
        # Vanish without DISCONNECT, as a gateway that loses power does.
        dying.loop_stop()
        sock = dying.socket()
        assert sock is not None
        sock.close()
        msg = got.get(timeout=10)
        assert msg.topic == "ironwatch/v1/gw-1/status"
        assert msg.payload == b'{"state":"offline"}'
    finally:
        _close(dying)
        _close(watcher)


@pytest.mark.integration
def test_persistent_session_keeps_messages_while_the_client_is_away(secured: Mosquitto) -> None:
    broker = BrokerSettings(host=secured.host, port=secured.port, username=USER.username,
                            password=USER.password)
    got: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    def session() -> mqtt.Client:
        c = build_client(broker, client_id="gw-1", clean_start=False, session_expiry_s=60)
        c.on_message = lambda _c, _u, msg: got.put(bytes(msg.payload))
        return c

    first = session()
    subscribed = threading.Event()
    first.on_subscribe = lambda *_a: subscribed.set()
    assert not _connect(first).is_failure
    first.subscribe("q/#", qos=1)
    assert subscribed.wait(5)
    _close(first)
    other = BrokerSettings(host=secured.host, port=secured.port, username=OTHER.username,
                           password=OTHER.password)
    sender = build_client(other, client_id="gw-2")
    assert not _connect(sender).is_failure
    sender.publish("q/1", b"kept", qos=1).wait_for_publish(5)
    _close(sender)
    second = session()
    try:
        reason = _connect(second)
        assert reason is not None and not reason.is_failure
        assert got.get(timeout=10) == b"kept"
    finally:
        _close(second)


# -- TLS ------------------------------------------------------------------------------------

def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA and a server certificate for 127.0.0.1 signed by it."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=ironwatch test CA", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName = IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
             cwd=d)
    # A second CA that signed nothing: trusting it must not let the broker in.
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "other.key", "-out", "other.pem", "-days", "2",
             "-subj", "/CN=another CA", cwd=d)
    return d


class _TlsMosquitto(Mosquitto):
    """The launcher's broker with its one listener switched to TLS."""

    def __init__(self, pki: Path, **kw: Any) -> None:
        super().__init__(**kw)
        self.pki = pki

    def _write_config(self) -> Path:
        conf = super()._write_config()
        with conf.open("a") as fh:
            fh.write(f"cafile {self.pki / 'ca.pem'}\ncertfile {self.pki / 'server.pem'}\n"
                     f"keyfile {self.pki / 'server.key'}\n")
        return conf


@pytest.fixture
def tls_broker(certificates: Path) -> Iterator[Mosquitto]:
    broker = _TlsMosquitto(certificates, users=[USER]).start()
    yield broker
    broker.close()


def _handshake_refused(client: mqtt.Client) -> bool:
    """Connect in this thread; True if the TLS handshake fails on the broker's certificate."""
    refused = False
    # paho leaves the failed SSL socket to the garbage collector; collect it here, where
    # its ResourceWarning is expected, rather than in whichever test runs next.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client.reconnect()
        except ssl.SSLCertVerificationError:
            refused = True
        gc.collect()
    _close(client)
    return refused


@pytest.mark.integration
def test_tls_connects_only_to_a_broker_the_ca_vouches_for(
    tls_broker: Mosquitto, certificates: Path
) -> None:
    def settings(tls: TlsSettings) -> BrokerSettings:
        return BrokerSettings(host=tls_broker.host, port=tls_broker.port, tls=tls,
                              username=USER.username, password=USER.password)

    good = build_client(settings(TlsSettings(ca_file=certificates / "ca.pem")), client_id="gw-1")
    reason = _connect(good)
    try:
        assert reason is not None and not reason.is_failure
        info = good.publish("t/1", b"x", qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
    finally:
        _close(good)

    wrong_ca = build_client(settings(TlsSettings(ca_file=certificates / "other.pem")),
                            client_id="gw-1-b")
    assert _handshake_refused(wrong_ca)

    insecure = build_client(
        settings(TlsSettings(ca_file=certificates / "other.pem", insecure=True)),
        client_id="gw-1-c",
    )
    reason = _connect(insecure)
    _close(insecure)
    assert reason is not None and not reason.is_failure


@pytest.mark.integration
def test_ingestion_worker_speaks_tls_from_the_cloud_settings(
    tls_broker: Mosquitto, certificates: Path, tmp_path: Path
) -> None:
    from cloud.ingest import IngestConfig, IngestionWorker, MemoryAssetRegistry
    from cloud.settings import load_settings
    from cloud.telemetry import SqliteTelemetryStore

    settings = load_settings(
        data_dir=tmp_path, mqtt_host=tls_broker.host, mqtt_port=tls_broker.port,
        mqtt_username=USER.username, mqtt_password=USER.password,
        mqtt_tls_ca=certificates / "ca.pem",
    )
    assert settings.broker.tls is not None
    store = SqliteTelemetryStore(tmp_path / "t.db")
    worker = IngestionWorker(IngestConfig(broker=settings.broker, client_id="cloud-tls"),
                             store, MemoryAssetRegistry())
    try:
        worker.start(timeout_s=10)  # raises unless connected and subscribed over TLS
        assert worker.connected
    finally:
        worker.stop()
        store.close()
