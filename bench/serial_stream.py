"""Sustained firmware stream over a real pty: 3 channels x 25.6 kHz int16, simulator to gateway.

Usage: python bench/serial_stream.py [--seconds 60] [--sample-rate 25600] [--channels 3]

The simulated device (simulators.serial_device) writes on one end of a socat pty pair, paced
by the wall clock; a gateway-side reader in its own process reads the other end through
firmware_bridge.serial_transport (pyserial + FrameDecoder), as the edge agent does.
Baseline, same run: the same reader process reading raw bytes without decoding while a
writer pushes pre-encoded frames as fast as the pty takes them (the pty's raw capacity and
the CPU cost of reading alone). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import threading
import time
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from ironwatch_app.local_servers import PtyPair, ServiceError


def _start_pty() -> PtyPair:
    for attempt in range(5):
        try:
            return PtyPair().start()
        except ServiceError:
            if attempt == 4:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def _reader(path: str, mode: str, ready: MpEvent, done: MpEvent, out: Any) -> None:
    """Gateway side: read until the writer is done and the line has been quiet for 0.5 s."""
    from firmware_bridge import FrameDecoder, SampleBlock
    from firmware_bridge.serial_transport import SerialTransport

    decoder = FrameDecoder()
    transport = SerialTransport(path, decoder=decoder)
    frames = samples = nbytes = 0
    last_index: int | None = None
    sample_gaps = 0
    raw = None
    if mode == "raw":
        import serial

        raw = serial.Serial(path, timeout=0.1)
    else:
        transport.read_frames(0.0)  # opens the port before the writer starts
    ready.set()
    cpu0, wall0 = time.process_time(), time.monotonic()
    quiet_since = time.monotonic()
    first_t: float | None = None
    last_t = wall0
    while True:
        if raw is not None:
            data = raw.read(65536)
            got = len(data)
            nbytes += got
        else:
            batch = transport.read_frames(0.1)
            got = len(batch)
            for f in batch:
                frames += 1
                if isinstance(f, SampleBlock):
                    samples += f.n_samples * f.channels
                    if last_index is not None and f.first_sample_index != last_index:
                        sample_gaps += 1
                    last_index = f.first_sample_index + f.n_samples
        now = time.monotonic()
        if got:
            quiet_since = now
            last_t = now
            first_t = first_t if first_t is not None else now
        elif done.is_set() and now - quiet_since > 0.5:
            break
    cpu = time.process_time() - cpu0
    if raw is None:
        nbytes = decoder.stats.bytes_in
    active = max(last_t - (first_t or wall0), 1e-9)
    stats = decoder.stats
    out.put({
        "frames": frames,
        "samples": samples,
        "bytes": nbytes,
        "cpu_s": cpu,
        "active_s": active,
        "crc_errors": stats.crc_errors,
        "malformed": stats.malformed,
        "decoder_lost_frames": stats.lost_frames,
        "sample_gaps": sample_gaps,
    })
    transport.close()
    if raw is not None:
        raw.close()


def _blast(path: str, seconds: float, frame_bytes: bytes) -> None:
    """Write pre-encoded frames as fast as the pty accepts them (blocking writes)."""
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    chunk = frame_bytes * max(1, 65536 // len(frame_bytes))
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            os.write(fd, chunk)
    finally:
        os.close(fd)


def _run_phase(mode: str, seconds: float, writer: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    pair = _start_pty()
    ready, done, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_reader, args=(pair.b, mode, ready, done, out))
    proc.start()
    try:
        if not ready.wait(60.0):
            raise RuntimeError("reader did not start")
        result = writer(pair.a, seconds)
        done.set()
        reader = out.get(timeout=60.0)
        proc.join(10.0)
    finally:
        if proc.is_alive():
            proc.terminate()
        pair.stop()
    return {"writer": result, "reader": reader}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sample-rate", type=float, default=25_600.0)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--baseline-seconds", type=float, default=None,
                        help="raw-capacity phase length (default: seconds/6, at least 3)")
    args = parser.parse_args()

    from firmware_bridge import encode
    from simulators import FaultMode, Machine, MachineSpec
    from simulators.serial_device import SerialDevice

    spec = MachineSpec(fault=FaultMode.OUTER_RACE, onset_h=0.0, failure_h=1.0, time_scale=60.0,
                       seed=1)

    def stream(path: str, seconds: float) -> dict[str, Any]:
        machine = Machine(spec, sample_rate_hz=args.sample_rate, channels=args.channels)
        device = SerialDevice(machine, path)
        t = threading.Thread(target=device.run, kwargs={"duration_s": seconds})
        t0 = time.process_time()
        t.start()
        t.join()
        return {**device.stats.to_dict(), "writer_cpu_s": time.process_time() - t0}

    print(f"streaming {args.channels} ch x {args.sample_rate:.0f} Hz for {args.seconds:.0f} s ...",
          flush=True)
    main_phase = _run_phase("decode", args.seconds, stream)

    # Baseline: one real SampleBlock frame, repeated as fast as the pty takes it.
    import numpy as np

    from firmware_bridge import SampleBlock
    from simulators.serial_device import DEFAULT_SCALE

    x = Machine(spec, sample_rate_hz=args.sample_rate, channels=args.channels).render(1024)
    counts = np.rint(x / DEFAULT_SCALE).astype("<i2")
    frame = encode(SampleBlock(device_id=1, seq=0, first_sample_index=0,
                               sample_rate_hz=args.sample_rate, channels=args.channels,
                               scale=DEFAULT_SCALE, samples=counts.T.tobytes()))
    base_s = args.baseline_seconds or max(3.0, args.seconds / 6.0)
    print(f"baseline: raw pty capacity for {base_s:.0f} s ...", flush=True)
    base = _run_phase("raw", base_s, lambda p, s: _blast(p, s, frame))

    w, r = main_phase["writer"], main_phase["reader"]
    lost = w["frames_dropped"] + r["decoder_lost_frames"] + (w["frames_sent"] - r["frames"])
    stream_bps = r["bytes"] / r["active_s"]
    raw_bps = base["reader"]["bytes"] / base["reader"]["active_s"]
    cpu_share = r["cpu_s"] / r["active_s"]
    raw_cpu_per_mb = base["reader"]["cpu_s"] / (base["reader"]["bytes"] / 1e6)
    decode_cpu_per_mb = r["cpu_s"] / (r["bytes"] / 1e6)
    result = {
        "seconds": args.seconds,
        "channels": args.channels,
        "sample_rate_hz": args.sample_rate,
        "frames": r["frames"],
        "frames_sent": w["frames_sent"],
        "lost_frames": lost,
        "crc_errors": r["crc_errors"],
        "malformed": r["malformed"],
        "sample_gaps": r["sample_gaps"],
        "samples_per_s": r["samples"] / r["active_s"],
        "expected_samples_per_s": args.sample_rate * args.channels,
        "stream_bytes_per_s": stream_bps,
        "gateway_cpu_share": cpu_share,
        "simulator_cpu_share": w["writer_cpu_s"] / args.seconds,
        "baseline_raw_pty_bytes_per_s": raw_bps,
        "stream_over_raw_capacity": stream_bps / raw_bps,
        "baseline_raw_read_cpu_s_per_mb": raw_cpu_per_mb,
        "decode_cpu_s_per_mb": decode_cpu_per_mb,
        "decode_over_raw_read_cpu": decode_cpu_per_mb / raw_cpu_per_mb,
    }
    print(f"frames {result['frames']}, lost {lost}, crc errors {result['crc_errors']}, "
          f"samples/s {result['samples_per_s']:.0f}, gateway CPU {100 * cpu_share:.1f} %, "
          f"stream uses {100 * result['stream_over_raw_capacity']:.1f} % of raw pty capacity")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
