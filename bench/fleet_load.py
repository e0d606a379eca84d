"""Fleet load: N simulated assets through a real Mosquitto into `ironwatch cloud serve`.

Each asset sends one record of 20 features every T seconds; gateways (100 assets each)
batch their assets' records into one message per interval, spread over the interval. The
cloud runs as an operator runs it (`ironwatch cloud serve --ingest-workers K`, its own
processes), on the embedded SQLite database or on PostgreSQL (`Postgres` launcher); the
telemetry store is the embedded one. Mosquitto's queue limits are set deliberately (1M
messages per client, no byte limit: nothing is dropped silently).

First every asset's commissioning windows (`commissioning_records`, 30) are sent,
backdated, as fast as the broker takes them; then the live stream runs for `--duration`
seconds. `--faults` assets get a step fault (bearing features x4-x8) after `--fault-after`
seconds of live stream. Measured once a second:

- ingest lag: the age of the oldest published record not yet in the store;
- scoring round duration: each round's wall time, from the scoring processes' Prometheus
  series (`ironwatch_scoring_round_duration_seconds` sum and count, read every second):
  the service's `/metrics` when it scores, each `cloud score` worker's metrics port
  otherwise; a round still running at the end counts as long as it has run;
- commissioning: from the first backfilled record to the first reading at which the
  scoring processes together have fitted a point per asset and none waits for a fit
  (`ironwatch_scoring_points_fitted`, `ironwatch_scoring_fit_waiting_points`). Steady
  rounds start after that (or `--steady-after` seconds into the live stream, if given);
  "kept up" asks every steady round to be shorter than T;
- sample-to-alert latency: the first poll (1 s apart) that shows an alert for an asset
  minus the capture time of its first faulty window (p50, p99 over the faulty assets);
- RSS and CPU of each process: the service, its ingestion workers, the scoring workers,
  Mosquitto, publisher.

`--scoring-workers 1,2` (PostgreSQL only) runs `cloud serve --no-scoring` and, against the
same database, telemetry store and broker, `ironwatch cloud score --workers N`; SQLite
configurations keep the service's embedded scorer.

    python bench/fleet_load.py                       # quick: 1,000 assets, T = 10 s, SQLite
    python bench/fleet_load.py --assets 10000,50000 --interval 10,1 --db sqlite,postgres \\
        --ingest-workers 1,2 --duration 300
    python bench/fleet_load.py --assets 10000 --db sqlite,postgres --scoring-workers 1,2

Prints one line per configuration, a table, and where one node stops keeping up and why.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

SELF = Path(__file__).resolve()
IRONWATCH = [sys.executable, "-m", "ironwatch_app.cli"]
PER_GATEWAY = 100
SCORING_INTERVAL_S = 2.0  # the default scoring_interval_s the benchmark runs with
COMMISSIONING = 30
EPOCH = "00000000000f1ee7"
HEALTHY = {
    "accel_rms_ms2": 2.0, "accel_peak_ms2": 7.0, "crest_factor": 3.5, "kurtosis": 3.0,
    "skewness": 0.1, "velocity_rms_mms": 1.2, "env_bpfo_ms2": 0.05, "env_bpfi_ms2": 0.05,
    "env_bsf_ms2": 0.04, "env_ftf_ms2": 0.03, "order_1x_ms2": 0.8, "order_2x_ms2": 0.3,
    "order_3x_ms2": 0.2, "band_0_1k_ms2": 1.1, "band_1k_3k_ms2": 0.9, "band_3k_6k_ms2": 0.6,
    "band_6k_10k_ms2": 0.4, "temperature_c": 45.0, "speed_rpm": 1480.0, "order_4x_ms2": 0.1,
}
FAULT = {"env_bpfo_ms2": 8.0, "velocity_rms_mms": 4.0, "kurtosis": 4.0, "accel_rms_ms2": 4.0,
         "accel_peak_ms2": 6.0}


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _gateways(n_assets: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in range(n_assets):
        out.setdefault(f"gw-{i // PER_GATEWAY:04d}", []).append(f"a-{i:06d}")
    return out


def fleet_toml(n_assets: int) -> str:
    parts = []
    for gw, assets in _gateways(n_assets).items():
        parts.append(f'[[gateways]]\nid = "{gw}"\n')
        for a in assets:
            parts.append(
                f'[[assets]]\nid = "{a}"\ngateway_id = "{gw}"\nkind = "pump"\n'
                '[assets.physics]\nspeed_rpm = 1480.0\niso_group = 2\nfoundation = "rigid"\n'
                '[[assets.physics.points]]\nid = "de_radial"\n'
                "bearing = { n_balls = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04 }\n")
    return "\n".join(parts)


# -- the publisher process ------------------------------------------------------------------
def role_publish(port: int, n_assets: int, interval_s: float, duration_s: float,
                 faults: int, fault_after_s: float, seed: int) -> None:
    """Every gateway's messages: commissioning backfill, then one record per asset every T."""
    import msgspec
    import numpy as np
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    from ironwatch.wire import telemetry_topic

    rng = np.random.default_rng(seed)
    gateways = _gateways(n_assets)
    names = list(HEALTHY)
    base = np.array([HEALTHY[n] for n in names])
    faulty = {f"a-{i:06d}" for i in rng.choice(n_assets, size=min(faults, n_assets),
                                                  replace=False)}
    fault_gain = np.array([FAULT.get(n, 1.0) for n in names])
    seqs = dict.fromkeys(gateways, 0)
    encoder = msgspec.json.Encoder()
    published = 0

    def message(gw: str, windows: list[tuple[str, datetime, bool]]) -> bytes:
        noise = np.exp(rng.normal(0.0, 0.05, size=(len(windows), len(names))))
        records = []
        for (asset, ts, fault), row in zip(windows, noise, strict=True):
            values = base * row * (fault_gain if fault else 1.0)
            records.append({"seq": seqs[gw], "asset_id": asset, "point": "de_radial",
                            "ts": ts.isoformat().replace("+00:00", "Z"),
                            "window_s": 1.0, "features": dict(zip(names, values.tolist(),
                                                                  strict=True))})
            seqs[gw] += 1
        return encoder.encode({"v": 1, "type": "telemetry", "gateway_id": gw, "epoch": EPOCH,
                               "seq": records[0]["seq"],
                               "sent_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                               "records": records})

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-load-publisher",
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()

    def send(gw: str, payload: bytes, n: int) -> None:
        nonlocal published
        client.publish(telemetry_topic(gw), payload, qos=1)
        published += n

    # Commissioning: 30 windows per asset, backdated, as fast as the broker takes them.
    now = datetime.now(UTC)
    start = now - timedelta(seconds=interval_s * COMMISSIONING)
    t0 = time.monotonic()
    for gw, assets in gateways.items():
        for k0 in range(0, COMMISSIONING, 10):
            windows = [(a, start + timedelta(seconds=interval_s * k), False)
                       for k in range(k0, min(k0 + 10, COMMISSIONING)) for a in assets]
            send(gw, message(gw, windows), len(windows))
    _emit({"backfill": published, "seconds": time.monotonic() - t0, "at": time.time()})

    # Live: gateway g sends at offset g/G of each interval, one record per asset.
    live_start = time.time()
    fault_at: dict[str, float] = {}
    offsets = {gw: i / len(gateways) * interval_s for i, gw in enumerate(gateways)}
    ticks = itertools.count()
    last_report = 0.0
    while True:
        tick = next(ticks)
        tick_start = live_start + tick * interval_s
        if tick_start - live_start >= duration_s:
            break
        for gw, assets in gateways.items():
            due = tick_start + offsets[gw]
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            ts_epoch = time.time()
            ts = datetime.fromtimestamp(ts_epoch, UTC)
            in_fault = ts_epoch - live_start >= fault_after_s
            windows = []
            for a in assets:
                fault = in_fault and a in faulty
                if fault and a not in fault_at:
                    fault_at[a] = ts_epoch
                windows.append((a, ts, fault))
            send(gw, message(gw, windows), len(windows))
            if time.time() - last_report >= 0.5:
                last_report = time.time()
                _emit({"published": published, "at": last_report})
    _emit({"published": published, "at": time.time(), "fault_at": fault_at, "done": True})
    client.disconnect()
    client.loop_stop()


# -- measuring ------------------------------------------------------------------------------
@dataclass
class Config:
    assets: int
    interval_s: float
    db: str
    ingest_workers: int
    scoring_workers: int | None = None  # None: the service's embedded scorer

    def name(self) -> str:
        scoring = ("" if self.scoring_workers is None
                   else f", {self.scoring_workers} scoring worker"
                        f"{'s' if self.scoring_workers > 1 else ''}")
        return (f"{self.assets:,} assets, T={self.interval_s:g} s, {self.db}, "
                f"{self.ingest_workers} ingest{scoring}")


@dataclass
class Samples:
    lag_s: list[float] = field(default_factory=list)
    round_s: list[float] = field(default_factory=list)
    round_at: list[float] = field(default_factory=list)  # wall time each round was seen
    cpu: dict[str, list[float]] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stored(db: Path) -> int:
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def _processes(cloud: subprocess.Popen[bytes], broker_pid: int,
               publisher: subprocess.Popen[str],
               scorer: subprocess.Popen[bytes] | None) -> dict[str, Any]:
    import psutil

    procs: dict[str, Any] = {"service": psutil.Process(cloud.pid),
                             "mosquitto": psutil.Process(broker_pid),
                             "publisher": psutil.Process(publisher.pid)}
    workers = [c for c in procs["service"].children() if "spawn_main" in " ".join(c.cmdline())]
    for i, child in enumerate(workers):
        procs[f"ingest-{i}"] = child
    if scorer is not None:
        parent = psutil.Process(scorer.pid)
        children = [c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]
        if children:  # `--workers N > 1`: a supervisor and N worker processes
            procs["score-supervisor"] = parent
            for i, child in enumerate(children):
                procs[f"score-{i}"] = child
        else:
            procs["score-0"] = parent
    return procs


@dataclass
class RoundMeter:
    """Scoring rounds of one process, from its Prometheus histogram's sum and count."""

    url: str
    count: float = 0.0
    total_s: float = 0.0
    last_change: float | None = None  # wall time the count last grew (or the first read)
    seen: bool = False
    fitted: float = 0.0  # points the process's detector fitted so far
    waiting: float | None = None  # points waiting for a fit at the last read

    def read(self, http: httpx.Client, now: float) -> list[float]:
        """Durations of the rounds completed since the last read (their mean if several)."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            text = http.get(self.url).text
        except httpx.HTTPError:
            return []
        count = total = None
        for family in text_string_to_metric_families(text):
            if family.name == "ironwatch_scoring_points_fitted":
                self.fitted = sum(s.value for s in family.samples if s.name.endswith("_total"))
            elif family.name == "ironwatch_scoring_fit_waiting_points":
                self.waiting = sum(s.value for s in family.samples)
            if family.name != "ironwatch_scoring_round_duration_seconds":
                continue
            for sample in family.samples:
                if sample.name.endswith("_count"):
                    count = sample.value
                elif sample.name.endswith("_sum"):
                    total = sample.value
        if count is None or total is None:
            return []
        out: list[float] = []
        if not self.seen:
            self.seen, self.last_change = True, now
        elif count > self.count:
            n = int(count - self.count)
            out = [(total - self.total_s) / n] * n
            self.last_change = now
        self.count, self.total_s = count, total
        return out


def run(config: Config, args: argparse.Namespace, pg: Any) -> dict[str, Any]:
    """Start broker and cloud, publish, measure; return the figures of one configuration."""
    from ironwatch_app.local_servers import Mosquitto, free_port, stop_process, wait_for_port

    token = secrets.token_urlsafe(24)
    with Mosquitto() as broker, tempfile.TemporaryDirectory(prefix="fleet-load-") as tmp:
        work = Path(tmp)
        (work / "fleet.toml").write_text(fleet_toml(config.assets))
        port = free_port()
        env = dict(os.environ, IRONWATCH_CLOUD_ADMIN_TOKEN=token, PYTHONUNBUFFERED="1")
        if config.db == "postgres":
            env["IRONWATCH_CLOUD_DATABASE_URL"] = pg.create_database(
                f"fleet{secrets.token_hex(4)}")
        log = (work / "cloud.log").open("wb")
        workers = config.scoring_workers
        cloud = subprocess.Popen(
            [*IRONWATCH, "--log-level", "WARNING", "cloud", "serve", "--port", str(port),
             "--data-dir", str(work / "data"), "--mqtt-port", str(broker.port),
             "--fleet", str(work / "fleet.toml"),
             "--ingest-workers", str(config.ingest_workers),
             *(["--no-scoring"] if workers is not None else [])],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        scorer: subprocess.Popen[bytes] | None = None
        score_log = (work / "score.log").open("wb")
        metrics_urls = [f"http://127.0.0.1:{port}/metrics"]
        publisher: subprocess.Popen[str] | None = None
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
        try:
            wait_for_port(port, timeout_s=300)
            deadline = time.monotonic() + 120
            while not api.get("/api/v1/ingest/stats").json().get("stats", {}).get("connected"):
                if time.monotonic() > deadline:
                    raise RuntimeError("ingestion never connected")
                time.sleep(0.2)
            if workers is not None:
                # Started once the service has migrated and seeded the fleet; worker i
                # serves its metrics on metrics_port + i.
                metrics_port = _consecutive_free_ports(workers)
                scorer = subprocess.Popen(
                    [*IRONWATCH, "--log-level", "WARNING", "cloud", "score",
                     "--workers", str(workers), "--data-dir", str(work / "data"),
                     "--mqtt-port", str(broker.port), "--metrics-port", str(metrics_port)],
                    env=env, stdout=score_log, stderr=subprocess.STDOUT,
                    start_new_session=True)
                metrics_urls = [f"http://127.0.0.1:{metrics_port + i}/metrics"
                                for i in range(workers)]
                for i in range(workers):
                    wait_for_port(metrics_port + i, timeout_s=120)
            publisher = subprocess.Popen(
                [sys.executable, str(SELF), "--role", "publish", "--port", str(broker.port),
                 "--assets", str(config.assets), "--interval", str(config.interval_s),
                 "--duration", str(args.duration), "--faults", str(args.faults),
                 "--fault-after", str(args.fault_after), "--seed", "7"],
                stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
            assert broker.proc is not None
            result = _measure(config, args, api, cloud, broker.proc.pid, publisher,
                              work / "data" / "telemetry.db", scorer, metrics_urls)
            if result["service_exit_code"] is not None or result["api_errors"]:
                log.flush()
                tail = (work / "cloud.log").read_text(errors="replace").splitlines()[-15:]
                result["service_log_tail"] = tail
                print("\n".join(["the service's last log lines:", *tail]), flush=True)
            if result["scoring_exit_code"] is not None:
                score_log.flush()
                tail = (work / "score.log").read_text(errors="replace").splitlines()[-15:]
                result["scoring_log_tail"] = tail
                print("\n".join(["the scoring workers' last log lines:", *tail]), flush=True)
            return result
        finally:
            if publisher is not None:
                stop_process(publisher)  # type: ignore[arg-type]
            api.close()
            for proc in (scorer, cloud):
                if proc is None:
                    continue
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    stop_process(proc, group=True)
            log.close()
            score_log.close()


def _consecutive_free_ports(n: int) -> int:
    """The first of n consecutive free ports on 127.0.0.1 (`cloud score` uses base + i)."""
    import contextlib
    import socket

    from ironwatch_app.local_servers import free_port

    for _ in range(50):
        base = free_port()
        with contextlib.ExitStack() as stack:
            try:
                for i in range(n):
                    s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    s.bind(("127.0.0.1", base + i))
            except OSError:
                continue
            return base
    raise RuntimeError(f"no {n} consecutive free ports")


def _measure(config: Config, args: argparse.Namespace, api: httpx.Client,
             cloud: subprocess.Popen[bytes], broker_pid: int,
             publisher: subprocess.Popen[str], telemetry_db: Path,
             scorer: subprocess.Popen[bytes] | None, metrics_urls: list[str]) -> dict[str, Any]:
    progress: list[tuple[float, int]] = []  # (wall time, records published by then)
    final: dict[str, Any] = {}
    backfill: dict[str, Any] = {}

    def read_publisher() -> None:
        assert publisher.stdout is not None
        for line in publisher.stdout:
            msg = json.loads(line)
            if "backfill" in msg:
                backfill.update(msg)
                progress.append((msg["at"], msg["backfill"]))
            else:
                progress.append((msg["at"], msg["published"]))
                if msg.get("done"):
                    final.update(msg)

    reader = threading.Thread(target=read_publisher, daemon=True)
    reader.start()
    samples = Samples()
    procs = _processes(cloud, broker_pid, publisher, scorer)
    expected_scorers = (config.scoring_workers or 0) + (1 if (config.scoring_workers or 0) > 1
                                                        else 0)
    for p in procs.values():
        p.cpu_percent(None)
    meters = [RoundMeter(url) for url in metrics_urls]
    scraper = httpx.Client(timeout=10)
    backfill_stored_at: float | None = None
    commissioned_at: float | None = None  # every asset's point fitted, nothing waiting
    alerted: dict[str, float] = {}  # asset -> when its first alert was seen (wall clock)
    api_errors = 0
    died: int | None = None
    scoring_died: int | None = None
    interval = SCORING_INTERVAL_S
    end = time.time() + args.duration + args.drain_s + 30
    while time.time() < end:
        time.sleep(1.0)
        now = time.time()
        stored = _stored(telemetry_db)
        if backfill and backfill_stored_at is None and stored >= backfill["backfill"]:
            backfill_stored_at = now
        # Ingest lag (live stream, once the commissioning burst is stored): how long ago the
        # oldest record not yet stored was published.
        if backfill_stored_at is not None:
            pending = [t for t, n in progress if n > stored]
            samples.lag_s.append(now - pending[0] if pending else 0.0)
        if cloud.poll() is not None:
            died = cloud.returncode
            break
        if scorer is not None and scorer.poll() is not None:
            scoring_died = scorer.returncode
            break
        for meter in meters:
            done = meter.read(scraper, now)
            samples.round_s.extend(done)
            samples.round_at.extend([now] * len(done))
        if (commissioned_at is None and backfill_stored_at is not None
                and sum(m.fitted for m in meters) >= config.assets
                and all(m.waiting == 0 for m in meters)):
            commissioned_at = now
        if sum(k.startswith("score") for k in procs) < expected_scorers:
            # `cloud score --workers N` spawns its workers after start-up: look again.
            for name, p in _processes(cloud, broker_pid, publisher, scorer).items():
                if name not in procs:
                    p.cpu_percent(None)
                    procs[name] = p
        for name, p in list(procs.items()):
            try:
                samples.cpu.setdefault(name, []).append(p.cpu_percent(None))
                samples.rss_mb[name] = max(samples.rss_mb.get(name, 0.0),
                                           p.memory_info().rss / 2**20)
            except Exception:
                procs.pop(name)
        if backfill_stored_at is not None:
            try:
                items = api.get("/api/v1/alerts", params={"limit": 500}).json().get("items", [])
            except httpx.HTTPError:
                api_errors += 1
                items = []
            for alert in items:
                alerted.setdefault(alert["asset_id"], now)
        if final and stored >= final["published"] and now - float(final["at"]) > 2 * interval:
            break
    scraper.close()
    # A round still running at the end counts as long as it has run (a process waits
    # `scoring_interval_s` after each round before the next).
    now = time.time()
    for meter in meters:
        if meter.last_change is not None and now - meter.last_change > interval:
            samples.round_s.append(now - meter.last_change - interval)
            samples.round_at.append(now)
    # Sample-to-alert: from the capture time of an asset's first faulty window to the first
    # poll (1 s apart) that saw an alert for it.
    fault_at = final.get("fault_at", {})
    latency = [alerted[a] - t for a, t in fault_at.items() if a in alerted]
    false_alerts = sorted(set(alerted) - set(fault_at))
    stored = _stored(telemetry_db)
    offered = config.assets / config.interval_s
    # Steady rounds: those that started once the fleet was commissioned (every point
    # fitted, none waiting), or `--steady-after` seconds into the live stream.
    live_at = float(backfill.get("at", now))
    steady_from = (live_at + args.steady_after if args.steady_after is not None
                   else commissioned_at if commissioned_at is not None else now)
    steady = [d for d, at in zip(samples.round_s, samples.round_at, strict=True)
              if at - d >= steady_from]
    return {
        "config": config.__dict__ | {"name": config.name()},
        "offered_records_per_s": round(offered),
        "backfill_records": backfill.get("backfill"),
        "backfill_stored_s": (None if backfill_stored_at is None or not backfill
                              else round(backfill_stored_at - backfill["at"]
                                         + backfill["seconds"], 1)),
        "commissioned_s": (None if commissioned_at is None or not backfill
                           else round(commissioned_at - live_at + backfill["seconds"], 1)),
        "published": final.get("published"), "stored": stored,
        "ingest_lag_s": {"p50": _pct(samples.lag_s, 0.5), "p99": _pct(samples.lag_s, 0.99),
                         "max": max(samples.lag_s, default=None),
                         "end": samples.lag_s[-1] if samples.lag_s else None},
        "round_s": {"p50": _pct(samples.round_s, 0.5), "max": max(samples.round_s, default=None),
                    "rounds": len(samples.round_s),
                    "steady_p50": _pct(steady, 0.5), "steady_max": max(steady, default=None),
                    "steady_rounds": len(steady)},
        "alert_latency_s": {"p50": _pct(latency, 0.5), "p99": _pct(latency, 0.99),
                            "alerted": len(latency), "faulty": len(fault_at),
                            "healthy_assets_alerted": len(false_alerts)},
        "api_errors": api_errors, "service_exit_code": died,
        "scoring_exit_code": scoring_died,
        "cpu_pct": {k: round(statistics.fmean(v), 1) for k, v in samples.cpu.items() if v},
        "rss_mb": {k: round(v) for k, v in samples.rss_mb.items()},
    }


def verdict(result: dict[str, Any]) -> tuple[bool, str]:
    """Whether one node kept up, and what limited it."""
    if result.get("service_exit_code") is not None:
        return False, f"the service died (exit code {result['service_exit_code']})"
    if result.get("scoring_exit_code") is not None:
        return False, f"the scoring workers died (exit code {result['scoring_exit_code']})"
    interval = result["config"]["interval_s"]
    lag = result["ingest_lag_s"]
    rounds = result["round_s"]
    ingest_ok = bool(lag["end"] is not None and lag["end"] <= max(2 * interval, 5.0))
    # Kept up: every steady round (after commissioning) shorter than T; commissioning's
    # longer rounds are reported beside it.
    steady_max = rounds.get("steady_max")
    scoring_ok = bool(steady_max is not None and steady_max < interval)
    cpu = result["cpu_pct"]
    ingest_cpu = sum(v for k, v in cpu.items() if k.startswith("ingest"))
    busiest = max(cpu, key=lambda k: cpu[k]) if cpu else "?"
    if ingest_ok and scoring_ok:
        return True, f"kept up (busiest: {busiest} {cpu.get(busiest, 0):.0f} % CPU)"
    why = []
    if not ingest_ok:
        load = (f"ingest workers {ingest_cpu:.0f} % CPU, broker {cpu.get('mosquitto', 0):.0f} %"
                f", service {cpu.get('service', 0):.0f} %")
        why.append(f"ingestion fell behind (lag {lag['end']:.1f} s at the end; {load})"
                   if lag["end"] is not None else
                   f"ingestion did not store the commissioning burst in the run "
                   f"({result['stored']:,} of {result['published']:,} records; {load})")
    if not scoring_ok:
        scorers = {k: v for k, v in cpu.items() if k.startswith("score-")
                   and k != "score-supervisor"} or {"service": cpu.get("service", 0.0)}
        load = ", ".join(f"{k} {v:.0f} %" for k, v in scorers.items())
        why.append(f"steady scoring rounds up to {steady_max:.1f} s > T ({load} CPU)"
                   if steady_max is not None
                   else f"no scoring round completed after commissioning ({load} CPU)")
    return False, "; ".join(why)


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.1f}{unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", default="1000", help="comma-separated fleet sizes")
    ap.add_argument("--interval", default="10", help="comma-separated T in seconds")
    ap.add_argument("--db", default="sqlite", help="sqlite, postgres or both: sqlite,postgres")
    ap.add_argument("--ingest-workers", default="1", help="comma-separated, e.g. 1,2")
    ap.add_argument("--scoring-workers", default="",
                    help="comma-separated; needs `ironwatch cloud score --workers`")
    ap.add_argument("--duration", type=float, default=60.0, help="live seconds per run")
    ap.add_argument("--drain-s", type=float, default=30.0,
                    help="longest wait after the stream ends for the store to catch up")
    ap.add_argument("--faults", type=int, default=5, help="assets given a step fault")
    ap.add_argument("--fault-after", type=float, default=20.0,
                    help="live seconds before the faults start")
    ap.add_argument("--steady-after", type=float, default=None,
                    help="live seconds after which rounds count as steady (default: once "
                         "the scoring processes report the fleet commissioned)")
    ap.add_argument("--role", choices=["publish"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.role == "publish":
        return role_publish(args.port, int(args.assets), float(args.interval), args.duration,
                            args.faults, args.fault_after, args.seed)

    scoring: list[int | None] = [None]
    if args.scoring_workers:
        counts = [int(s) for s in args.scoring_workers.split(",")]
        if any(s < 1 for s in counts):
            ap.error("--scoring-workers: each count must be at least 1")
        scoring = list(counts)
        if "postgres" not in args.db.split(","):
            print("--scoring-workers: scoring workers share the fleet through PostgreSQL "
                  "leases; SQLite runs keep the service's embedded scorer", flush=True)
        else:
            print(f"--scoring-workers {args.scoring_workers}: PostgreSQL runs use "
                  "`cloud serve --no-scoring` and `cloud score --workers N`; SQLite runs "
                  "keep the service's embedded scorer", flush=True)
    configs: list[Config] = []
    for n, t, db, k, s in itertools.product(
            args.assets.split(","), args.interval.split(","), args.db.split(","),
            args.ingest_workers.split(","), scoring):
        config = Config(int(n), float(t), db, int(k), s if db == "postgres" else None)
        if config not in configs:
            configs.append(config)
    pg = None
    if any(c.db == "postgres" for c in configs):
        from ironwatch_app.local_servers import Postgres

        pg = Postgres().start()
    results = []
    try:
        for config in configs:
            result = run(config, args, pg)
            ok, why = verdict(result)
            result["kept_up"], result["why"] = ok, why
            results.append(result)
            print(f"{config.name()}: stored {result['stored']:,} of {result['published']:,}; "
                  f"commissioned in {_fmt(result['commissioned_s'], ' s')}; {why}", flush=True)
    finally:
        if pg is not None:
            from ironwatch_app.local_servers import stop_process

            stop_process(pg.proc)
    print()
    print(f"{'configuration':58s} {'rec/s':>7s} {'lag p50/p99/end s':>19s} "
          f"{'round p50/max (steady max) s':>28s} {'alert p50/p99 s':>16s} "
          f"{'CPU % svc/ingest/score/broker':>30s} {'RSS MB svc/ingest/score':>24s}  kept up")
    for r in results:
        lag, rnd, lat, cpu, rss = (r["ingest_lag_s"], r["round_s"], r["alert_latency_s"],
                                   r["cpu_pct"], r["rss_mb"])

        def joined(values: dict[str, Any], prefix: str) -> str:
            return "+".join(f"{v:.0f}" for k, v in values.items()
                            if k.startswith(prefix) and k != "score-supervisor") or "-"

        print(f"{r['config']['name']:58s} {r['offered_records_per_s']:>7,} "
              f"{_fmt(lag['p50'])}/{_fmt(lag['p99'])}/{_fmt(lag['end']):>5s} "
              f"{_fmt(rnd['p50'])}/{_fmt(rnd['max']):>8s} ({_fmt(rnd.get('steady_max'))}) "
              f"{_fmt(lat['p50'])}/{_fmt(lat['p99'])} ({lat['alerted']}/{lat['faulty']}) "
              f"{cpu.get('service', 0):.0f}/{joined(cpu, 'ingest')}/{joined(cpu, 'score-')}/"
              f"{cpu.get('mosquitto', 0):.0f} "
              f"{rss.get('service', 0)}/{joined(rss, 'ingest')}/{joined(rss, 'score-')}  "
              f"{'yes' if r['kept_up'] else 'NO'}")
    behind = [r for r in results if not r["kept_up"]]
    if behind:
        first = min(behind, key=lambda r: r["offered_records_per_s"])
        print(f"\nOne node stops keeping up at {first['config']['name']} "
              f"({first['offered_records_per_s']:,} records/s): {first['why']}")
    else:
        print("\nOne node kept up with every configuration run.")
    _emit({"bench": "fleet_load", "results": results, "cpus": os.cpu_count()})


if __name__ == "__main__":
    main()
