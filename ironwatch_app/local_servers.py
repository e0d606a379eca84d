"""Real local servers for the demo, tests and benchmarks: Mosquitto, socat pty pairs,
InfluxDB 1.x, VictoriaMetrics, PostgreSQL 15, and helpers.

Each server runs as a child process on 127.0.0.1 with its own config and data directory,
on a free port, and is stopped by PID. Nothing here touches system services.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "InfluxD",
    "Mosquitto",
    "MosquittoUser",
    "Postgres",
    "Prometheus",
    "PtyPair",
    "ServiceError",
    "VictoriaMetrics",
    "free_port",
    "free_ports",
    "stop_process",
    "wait_for_port",
]


class ServiceError(RuntimeError):
    """A local server could not be started or stopped."""


def _listen_port_range() -> range:
    """Ports outside the kernel's ephemeral range, where no client gets its source port.

    A client that keeps reconnecting to a stopped server on an ephemeral-range port can be
    given that very port as its own source port (a TCP self-connect) and then hold it, so
    the server cannot bind it again when it restarts. Servers here listen below the range
    (or above it, where it leaves no room below).
    """
    try:
        low, high = (int(v) for v in
                     Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(10_000, low) if low - 10_000 >= 1_000 else range(high + 1, 65_536)


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports on 127.0.0.1, outside the ephemeral range, free right now."""
    candidates = _listen_port_range()
    rng = random.SystemRandom()
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(100 * n):
            if len(ports) == n:
                break
            port = rng.choice(candidates)
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            ports.append(port)
        if len(ports) < n:
            raise ServiceError(f"no {n} free ports in {candidates.start}-{candidates.stop - 1}")
        return ports


def free_port() -> int:
    """A TCP port on 127.0.0.1, outside the ephemeral range, that is free right now."""
    return free_ports(1)[0]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout_s: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServiceError(f"nothing listening on {host}:{port} after {timeout_s:.0f} s")


def stop_process(
    proc: subprocess.Popen[bytes] | None, timeout_s: float = 5.0, *, group: bool = False
) -> None:
    """SIGTERM, then SIGKILL after timeout_s; reaps the child so no zombie is left.

    With group=True the signal goes to the child's whole process group (a child started
    with start_new_session=True), so nothing it started outlives it.
    """
    if proc is None:
        return

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(proc.pid, sig)
            elif proc.poll() is None:
                proc.send_signal(sig)

    if proc.poll() is None:
        send(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            proc.wait(timeout=timeout_s)
    if group:
        # The leader is gone; anything left in its group gets no second chance.
        send(signal.SIGKILL)


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if path is None:
        raise ServiceError(
            f"{binary} not found: install Debian's {package} package (scripts/setup.sh does)"
        )
    return path


@dataclass(frozen=True)
class MosquittoUser:
    """A broker account; `acl` lines follow mosquitto.conf(5) `topic` syntax.

    A `cloud` account may also log in on the cloud listener, under client ids of its own
    choosing; every account's client id on the gateway listener is its username.
    """

    username: str
    password: str
    acl: Sequence[str] = ()
    cloud: bool = False


@dataclass
class Mosquitto:
    """A Mosquitto 2.0 broker on 127.0.0.1.

    Queue limits are set deliberately: the default per-client queue of 1,000 messages
    silently drops messages for a slow or offline persistent subscriber.
    With `users`, anonymous access is off and each user gets its ACL lines; with
    `acl_file`/`password_file`, those generated files are used as they are. With
    authentication the broker listens twice (see `cloud.acl.listener_lines`): on `port`
    for gateways, where a client's id is its username, and on `cloud_port` for the cloud's
    accounts only (`cloud` users, or `cloud_password_file`/`cloud_acl_file`). Without a
    cloud listener, `cloud_port` is `port`.
    """

    port: int = 0
    workdir: Path | None = None
    users: Sequence[MosquittoUser] = ()
    password_file: Path | None = None
    acl_file: Path | None = None
    cloud_password_file: Path | None = None
    cloud_acl_file: Path | None = None
    cloud_port: int = 0
    max_queued_messages: int = 1_000_000
    persistence: bool = True
    autosave_interval_s: int = 1
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _own_workdir: bool = field(default=False, init=False, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def _write_config(self) -> Path:
        assert self.workdir is not None
        wd = self.workdir
        (wd / "data").mkdir(parents=True, exist_ok=True)
        lines = [
            # Run as whoever started us: as root, mosquitto would otherwise switch to the
            # `mosquitto` user, which cannot read a private temporary directory.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {wd / 'data'}/",
            f"autosave_interval {self.autosave_interval_s}",
            f"max_queued_messages {self.max_queued_messages}",
            "max_queued_bytes 0",
            "max_inflight_messages 100",
            "max_packet_size 16777216",
            "persistent_client_expiration 7d",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        password_file, acl_file = self.password_file, self.acl_file
        cloud_password_file, cloud_acl_file = self.cloud_password_file, self.cloud_acl_file
        if self.users:
            password_file, acl_file = self._write_auth(wd, "", self.users)
            cloud_users = [u for u in self.users if u.cloud]
            if cloud_users:
                cloud_password_file, cloud_acl_file = self._write_auth(wd, "cloud-", cloud_users)
        if password_file is None:
            self.cloud_port = self.port
            lines += [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
            if acl_file is not None:
                lines.append(f"acl_file {acl_file}")
        else:
            from cloud.acl import BrokerAuthFiles, listener_lines

            if acl_file is None:
                acl_file = wd / "acl-all"
                acl_file.write_text("pattern readwrite #\n")
            if cloud_password_file is None:
                self.cloud_port = self.port
            elif not self.cloud_port:
                self.cloud_port = next(p for p in free_ports(2) if p != self.port)
            files = BrokerAuthFiles(password_file, acl_file, cloud_password_file,
                                    cloud_acl_file)
            lines += listener_lines(files, gateway_listener=("127.0.0.1", self.port),
                                    cloud_listener=("127.0.0.1", self.cloud_port))
        conf = wd / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    @staticmethod
    def _write_auth(wd: Path, prefix: str, users: Sequence[MosquittoUser]) -> tuple[Path, Path]:
        password_file = wd / f"{prefix}passwd"
        password_file.write_text("".join(f"{u.username}:{u.password}\n" for u in users))
        password_file.chmod(0o600)
        mosquitto_passwd = _require("mosquitto_passwd", "mosquitto")
        subprocess.run([mosquitto_passwd, "-U", str(password_file)], check=True)
        acl_file = wd / f"{prefix}acl"
        acl_file.write_text(
            "".join(
                f"user {u.username}\n" + "".join(f"{line}\n" for line in u.acl) + "\n"
                for u in users
            )
        )
        return password_file, acl_file

    def start(self) -> Mosquitto:
        binary = _require("mosquitto", "mosquitto")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="ironwatch-mosquitto-"))
            self._own_workdir = True
        if not self.port:
            self.port = free_port()
        conf = self._write_config()
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - lives as long as the broker
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        try:
            wait_for_port(self.port)
            wait_for_port(self.cloud_port)
        except ServiceError as err:
            self.stop()
            raise ServiceError(f"mosquitto did not start: {self.log_tail()}") from err
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would: nothing is saved since the last autosave."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down for down_s seconds, start again on the same port and data."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n: int = 20) -> str:
        if self.workdir is None or not (self.workdir / "mosquitto.log").exists():
            return ""
        text = (self.workdir / "mosquitto.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-n:])

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class PtyPair:
    """Two linked pseudo-terminals made by socat: what is written to one is read on the other.

    `a` and `b` are stable symlinks inside `workdir`, so a device can "disappear" (stop)
    and "come back" (start again) at the same path.
    """

    workdir: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def a(self) -> str:
        assert self.workdir is not None
        return str(self.workdir / "pty-a")

    @property
    def b(self) -> str:
        assert self.workdir is not None
        return str(self.workdir / "pty-b")

    def start(self, timeout_s: float = 5.0) -> PtyPair:
        socat = _require("socat", "socat")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="ironwatch-pty-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / "socat.log"
        # socat's diagnostics go to a file, not a pipe: a pipe nobody reads would block or
        # SIGPIPE it later.
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    socat,
                    "-d",
                    "-d",
                    f"pty,raw,echo=0,link={self.a}",
                    f"pty,raw,echo=0,link={self.b}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout_s
        # socat announces the ptys before it creates the symlinks to them: wait for both.
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if os.path.exists(self.a) and os.path.exists(self.b):
                return self
            time.sleep(0.01)
        text = log_path.read_text(errors="replace")
        self.stop()
        raise ServiceError(f"socat did not create a pty pair: {text}")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def __enter__(self) -> PtyPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(
    proc_args: Sequence[str], *, env: dict[str, str] | None = None, log_path: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a child process for the duration of a with-block, then stop it by PID."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(list(proc_args), env=env, stdout=log, stderr=log)
    try:
        yield proc
    finally:
        stop_process(proc)
        if log_path and not isinstance(log, int):
            log.close()


def _binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServiceError(f"{name} not found: install Debian's {package} package")
    return path


def _wait_http(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as err:
            if err.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServiceError(f"{url} did not answer in {timeout_s:.0f} s")
        time.sleep(0.1)


@dataclass
class _Server:
    workdir: Path | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _own_workdir: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _prepare(self, prefix: str) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=prefix))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        return self.workdir

    def _spawn(self, args: list[str]) -> None:
        assert self.workdir is not None
        with open(self.workdir / "server.log", "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)

    def log_tail(self, n: int = 20) -> str:
        if self.workdir is None or not (self.workdir / "server.log").exists():
            return ""
        lines = (self.workdir / "server.log").read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class InfluxD(_Server):
    """InfluxDB 1.x (`influxd`, Debian's influxdb package) with one database created."""

    database: str = "ironwatch"
    rpc_port: int = 0

    def start(self) -> InfluxD:
        wd = self._prepare("ironwatch-influxd-")
        if not self.rpc_port:
            self.rpc_port = free_port()
        conf = wd / "influxdb.conf"
        conf.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{wd / 'meta'}"
  logging-enabled = false
[data]
  dir = "{wd / 'data'}"
  wal-dir = "{wd / 'wal'}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""
        )
        self._spawn([_binary("influxd", "influxdb"), "run", "-config", str(conf)])
        try:
            wait_for_port(self.port, timeout_s=20)
            _wait_http(f"{self.url}/ping")
            self.query(f'CREATE DATABASE "{self.database}"')
        except (ServiceError, OSError) as err:
            self.stop()
            raise ServiceError(f"influxd did not start: {err}\n{self.log_tail()}") from err
        return self

    def query(self, q: str) -> dict[str, object]:
        """Run one InfluxQL statement (POST, so it may modify) and return the JSON answer."""
        data = urllib.parse.urlencode({"q": q, "db": self.database}).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=10) as resp:
            result: dict[str, object] = json.load(resp)
            return result

    def __enter__(self) -> InfluxD:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class VictoriaMetrics(_Server):
    """VictoriaMetrics single node; dedup on (series, timestamp) makes re-writes idempotent."""

    retention: str = "100y"

    def start(self) -> VictoriaMetrics:
        wd = self._prepare("ironwatch-victoria-")
        self._spawn([
            _binary("victoria-metrics", "victoria-metrics"),
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={wd / 'data'}",
            f"-retentionPeriod={self.retention}",
            # Keep one sample per series and millisecond: a re-sent record is not doubled.
            "-dedup.minScrapeInterval=1ms",
            "-loggerLevel=ERROR",
            "-search.disableCache",
        ])
        try:
            wait_for_port(self.port, timeout_s=20)
            _wait_http(f"{self.url}/health")
        except ServiceError as err:
            self.stop()
            raise ServiceError(f"victoria-metrics did not start: {err}\n{self.log_tail()}") from err
        return self

    def __enter__(self) -> VictoriaMetrics:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Prometheus(_Server):
    """Prometheus 2.x (Debian's prometheus package) scraping `targets` every `scrape_interval_s`.

    `targets` maps a job name to its `host:port` targets; `bearer_tokens` gives a job the
    token its targets want (`Authorization: Bearer`). `query()` asks the HTTP API.
    """

    targets: dict[str, list[str]] = field(default_factory=dict)
    bearer_tokens: dict[str, str] = field(default_factory=dict)
    scrape_interval_s: float = 1.0

    def start(self) -> Prometheus:
        wd = self._prepare("ironwatch-prometheus-")
        interval = f"{max(1, round(self.scrape_interval_s * 1000))}ms"
        jobs: list[dict[str, object]] = []
        for job, targets in self.targets.items():
            scrape: dict[str, object] = {"job_name": job, "static_configs": [{"targets": targets}]}
            if job in self.bearer_tokens:
                secret = wd / f"{job}.token"
                secret.write_text(self.bearer_tokens[job])
                secret.chmod(0o600)
                scrape["authorization"] = {"type": "Bearer", "credentials_file": str(secret)}
            jobs.append(scrape)
        conf = wd / "prometheus.yml"
        # JSON is YAML: no YAML writer needed.
        conf.write_text(json.dumps({
            "global": {"scrape_interval": interval, "scrape_timeout": interval,
                       "evaluation_interval": interval},
            "scrape_configs": jobs,
        }, indent=1))
        self._spawn([
            _binary("prometheus", "prometheus"),
            f"--config.file={conf}",
            f"--storage.tsdb.path={wd / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ])
        try:
            wait_for_port(self.port, timeout_s=30)
            _wait_http(f"{self.url}/-/ready", timeout_s=30)
        except ServiceError as err:
            self.stop()
            raise ServiceError(f"prometheus did not start: {err}\n{self.log_tail()}") from err
        return self

    def query(self, promql: str) -> list[dict[str, object]]:
        """An instant query's result vector; ServiceError with Prometheus's message if refused."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as err:
            body = json.load(err)
        if body.get("status") != "success":
            raise ServiceError(f"query {promql!r}: {body.get('error', body)}")
        result: list[dict[str, object]] = body["data"]["result"]
        return result

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Postgres:
    """A throwaway PostgreSQL 15 cluster in a temp dir on a free port, stopped by PID.

    `url` is the server's `postgres` database; `create_database()` makes a fresh one.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="ironwatch-pg-"))
        self.proc: subprocess.Popen[bytes] | None = None
        # initdb and postgres refuse to run as root: drop to the `postgres` account then.
        self.user = "postgres" if os.geteuid() == 0 else None

    @staticmethod
    def available() -> bool:
        return (PG_BIN / "postgres").exists() and (PG_BIN / "initdb").exists()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://ironwatch@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def start(self) -> Postgres:
        if not self.available():
            raise ServiceError(f"PostgreSQL binaries not found in {PG_BIN} (install postgresql)")
        data = self.workdir / "data"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "ironwatch",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )
        log = (self.workdir / "postgres.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.workdir}",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            user=self.user,
        )
        log.close()  # the child has its own copy of the descriptor
        wait_for_port(self.port, timeout_s=30)
        return self

    def create_database(self, name: str) -> str:
        """Create database `name` (over psql, so no driver is needed here); returns its URL."""
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "ironwatch",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
            capture_output=True,
        )
        return self.database_url(name)

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown (SIGTERM waits for clients to leave);
        # stop_process then makes sure it is gone, by PID.
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        stop_process(self.proc, timeout_s=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
