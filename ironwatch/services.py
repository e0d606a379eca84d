"""Real local servers for the demo and the tests: Mosquitto, socat pty pairs, and helpers.

Each server runs as a child process on 127.0.0.1 with its own config and data directory,
on a free port, and is stopped by PID. Nothing here touches system services.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Mosquitto",
    "MosquittoUser",
    "PtyPair",
    "ServiceError",
    "free_port",
    "stop_process",
    "wait_for_port",
]


class ServiceError(RuntimeError):
    """A local server could not be started or stopped."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    """A broker account; `acl` lines follow mosquitto.conf(5) `topic` syntax."""

    username: str
    password: str
    acl: Sequence[str] = ()


@dataclass
class Mosquitto:
    """A Mosquitto 2.0 broker on 127.0.0.1.

    Queue limits are set deliberately: the default per-client queue of 1,000 messages
    silently drops messages for a slow or offline persistent subscriber.
    With `users`, anonymous access is off and each user gets its ACL lines; with
    `acl_file`/`password_file`, those generated files are used as they are.
    """

    port: int = 0
    workdir: Path | None = None
    users: Sequence[MosquittoUser] = ()
    password_file: Path | None = None
    acl_file: Path | None = None
    max_queued_messages: int = 1_000_000
    persistence: bool = True
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
            f"listener {self.port} 127.0.0.1",
            # Run as whoever started us: as root, mosquitto would otherwise switch to the
            # `mosquitto` user, which cannot read a private temporary directory.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {wd / 'data'}/",
            "autosave_interval 1",
            f"max_queued_messages {self.max_queued_messages}",
            "max_queued_bytes 0",
            "max_inflight_messages 100",
            "max_packet_size 16777216",
            "persistent_client_expiration 7d",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        password_file = self.password_file
        acl_file = self.acl_file
        if self.users:
            password_file = wd / "passwd"
            password_file.write_text("".join(f"{u.username}:{u.password}\n" for u in self.users))
            password_file.chmod(0o600)
            mosquitto_passwd = _require("mosquitto_passwd", "mosquitto")
            subprocess.run([mosquitto_passwd, "-U", str(password_file)], check=True)
            acl_file = wd / "acl"
            acl_file.write_text(
                "".join(
                    f"user {u.username}\n" + "".join(f"{line}\n" for line in u.acl) + "\n"
                    for u in self.users
                )
            )
        if password_file is not None:
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if acl_file is not None:
            lines.append(f"acl_file {acl_file}")
        conf = wd / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

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
        except ServiceError as err:
            self.stop()
            raise ServiceError(f"mosquitto did not start: {self.log_tail()}") from err
        return self

    def stop(self) -> None:
        stop_process(self.proc)
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
