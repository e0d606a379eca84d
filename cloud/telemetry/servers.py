"""Local InfluxDB 1.x and VictoriaMetrics servers for tests, benchmarks and the demo.

Each runs as a child process on 127.0.0.1 with its own generated config and a data
directory in a temporary folder, on free ports, and is stopped by PID.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ironwatch.services import ServiceError, free_port, stop_process, wait_for_port

__all__ = ["InfluxD", "VictoriaMetrics"]


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
