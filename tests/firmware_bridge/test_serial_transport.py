"""SerialTransport: in-process fake port for backoff logic, real socat ptys for the rest."""

from __future__ import annotations

import struct
import threading
import time
from pathlib import Path

import pytest
import serial

from firmware_bridge.loopback import LoopbackLine
from firmware_bridge.protocol import (
    Frame,
    Heartbeat,
    Hello,
    Quantity,
    SampleBlock,
    ScalarReading,
    encode,
)
from firmware_bridge.serial_transport import SerialPort, SerialTransport, SerialTransportError
from ironwatch_app.local_servers import PtyPair


class FakePort:
    """An in-process serial port: `incoming` is what the device sends, `sent` what we wrote."""

    def __init__(self) -> None:
        self.timeout: float | None = 0
        self.incoming = bytearray()
        self.sent = bytearray()
        self.fail_reads = False

    @property
    def in_waiting(self) -> int:
        return len(self.incoming)

    def read(self, size: int = 1) -> bytes:
        if self.fail_reads:
            raise serial.SerialException("read failed: [Errno 5] Input/output error")
        if not self.incoming:
            time.sleep(min(self.timeout or 0, 0.01))
        data = bytes(self.incoming[:size])
        del self.incoming[:size]
        return data

    def write(self, data: bytes, /) -> int:
        self.sent += data
        return len(data)

    def close(self) -> None:
        pass


class FlakyOpener:
    """Fails the first `failures` opens, then hands out fresh FakePorts; records when."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[float] = []
        self.ports: list[FakePort] = []

    def __call__(self, port: str, baudrate: int) -> SerialPort:
        self.attempts.append(time.monotonic())
        if len(self.attempts) <= self.failures:
            raise serial.SerialException(2, f"could not open port {port}: No such file")
        fake = FakePort()
        self.ports.append(fake)
        return fake


def _drain(transport: SerialTransport, count: int, timeout_s: float) -> list[Frame]:
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout_s
    while len(frames) < count and time.monotonic() < deadline:
        frames += transport.read_frames(0.2)
    return frames


@pytest.fixture
def fake_tty(tmp_path: Path) -> str:
    """A path that exists, as a device node would; the transport checks it while idle."""
    path = tmp_path / "ttyFAKE0"
    path.touch()
    return str(path)


def test_backoff_grows_then_opens(fake_tty: str) -> None:
    opener = FlakyOpener(failures=4)
    transport = SerialTransport(fake_tty, reopen_backoff=(0.02, 0.08), opener=opener)
    transport.read_frames(0.5)
    assert transport.is_open
    gaps = [b - a for a, b in zip(opener.attempts, opener.attempts[1:], strict=False)]
    assert gaps[0] == pytest.approx(0.02, abs=0.015)
    assert gaps[1] == pytest.approx(0.04, abs=0.015)
    assert gaps[2] == pytest.approx(0.08, abs=0.015)
    assert gaps[3] == pytest.approx(0.08, abs=0.015)  # capped at the max
    assert transport.stats.open_failures == 4
    assert transport.stats.reconnects == 0  # first open is not a reconnect


def test_read_error_closes_and_reopens_with_a_clean_buffer(fake_tty: str) -> None:
    opener = FlakyOpener(failures=0)
    transport = SerialTransport(fake_tty, reopen_backoff=(0.01, 0.05), opener=opener)
    transport.read_frames(0.0)
    first = opener.ports[0]
    first.incoming += encode(Heartbeat(1, 0, 0)) + encode(Heartbeat(1, 1, 0))[:6]
    assert transport.read_frames(0.1) == [Heartbeat(1, 0, 0)]
    first.fail_reads = True
    assert transport.read_frames(0.2) == []
    assert transport.stats.disconnects == 1
    assert transport.reconnects == 1
    second = opener.ports[1]
    second.incoming += encode(Heartbeat(1, 5, 0))
    assert transport.read_frames(0.5) == [Heartbeat(1, 5, 0)]
    stats = transport.decoder.stats
    assert stats.crc_errors + stats.malformed == 0  # the half frame was dropped, not glued on
    assert (stats.seq_gaps, stats.lost_frames) == (1, 4)  # frames 1-4 lost while away
    transport.write(Heartbeat(0, 0, 1))
    assert bytes(second.sent) == encode(Heartbeat(0, 0, 1))


def test_write_while_disconnected_raises() -> None:
    transport = SerialTransport(
        "/nonexistent/tty", reopen_backoff=(0.01, 0.01), opener=FlakyOpener(10**6)
    )
    with pytest.raises(SerialTransportError):
        transport.write(Heartbeat(0, 0, 0))
    assert transport.read_frames(0.05) == []


def test_rejects_bad_backoff() -> None:
    with pytest.raises(ValueError):
        SerialTransport("/dev/null", reopen_backoff=(1.0, 0.5))


def _frames() -> list[Frame]:
    samples = struct.pack("<3072h", *(((i * 37) % 65536) - 32768 for i in range(3072)))
    out: list[Frame] = [Hello(5, 0, "1.0.0", "IW-VIB3", "SN9", 3, 25600.0)]
    out += [SampleBlock(5, i, (i - 1) * 1024, 25600.0, 3, 0.0048, samples) for i in range(1, 51)]
    out.append(ScalarReading(5, 51, 2000, Quantity.TEMPERATURE_C, 55.5))
    return out


@pytest.mark.integration
def test_frames_cross_a_real_pty(pty_pair: PtyPair) -> None:
    """Two seconds of 3 x 25.6 kHz samples, written at one end, decoded intact at the other."""
    with (
        SerialTransport(pty_pair.b) as reader,
        SerialTransport(pty_pair.a) as device,
    ):
        reader.read_frames(0.0)  # open before the device talks: opening flushes input
        sent = _frames()

        def send_all() -> None:
            for frame in sent:
                device.write(frame)

        writer = threading.Thread(target=send_all)
        writer.start()
        got = _drain(reader, len(sent), 10.0)
        writer.join()
        assert got == sent
        stats = reader.decoder.stats
        assert (stats.frames_ok, stats.crc_errors, stats.malformed, stats.seq_gaps) == (
            len(sent),
            0,
            0,
            0,
        )


@pytest.mark.integration
def test_reopens_after_the_device_goes_away(pty_pair: PtyPair) -> None:
    reader = SerialTransport(pty_pair.b, reopen_backoff=(0.05, 0.2))
    try:
        device = serial.Serial(pty_pair.a, 921_600)
        reader.read_frames(0.0)
        device.write(encode(Heartbeat(5, 0, 10)))
        assert _drain(reader, 1, 3.0) == [Heartbeat(5, 0, 10)]

        device.close()
        pty_pair.stop()  # the device is unplugged: the pty and its link disappear
        assert reader.read_frames(0.5) == []
        assert not reader.is_open
        assert reader.stats.disconnects == 1
        with pytest.raises(SerialTransportError):
            reader.write(Heartbeat(0, 0, 0))

        pty_pair.start()  # plugged back in at the same path
        device = serial.Serial(pty_pair.a, 921_600)
        deadline = time.monotonic() + 5.0
        while not reader.is_open and time.monotonic() < deadline:
            reader.read_frames(0.05)
        assert reader.reconnects == 1
        device.write(encode(Heartbeat(5, 1, 20)) + encode(Heartbeat(5, 2, 30)))
        assert _drain(reader, 2, 3.0) == [Heartbeat(5, 1, 20), Heartbeat(5, 2, 30)]
        device.close()
    finally:
        reader.close()


@pytest.mark.integration
def test_close_wakes_a_blocked_reader(pty_pair: PtyPair) -> None:
    reader = SerialTransport(pty_pair.b)
    reader.read_frames(0.0)
    result: list[list[Frame]] = []
    thread = threading.Thread(target=lambda: result.append(reader.read_frames(30.0)))
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    reader.close()
    thread.join(5.0)
    assert not thread.is_alive()
    assert result == [[]]
    assert time.monotonic() - started < 2.0


def test_loopback_line_carries_frames_and_unplugs() -> None:
    line = LoopbackLine()
    device = line.port("a")
    reader = SerialTransport("loopback", reopen_backoff=(0.01, 0.05), opener=line.opener("b"))
    reader.read_frames(0.0)
    device.write(encode(Heartbeat(2, 0, 1)))
    assert reader.read_frames(1.0) == [Heartbeat(2, 0, 1)]

    line.unplug()
    assert reader.read_frames(0.1) == []
    assert reader.stats.disconnects == 1
    with pytest.raises(serial.SerialException):
        device.write(b"x")  # the old end is dead too

    line.plug()
    device = line.port("a")
    assert reader.read_frames(0.2) == []  # reopens during the wait
    assert reader.reconnects == 1
    device.write(encode(Heartbeat(2, 1, 2)))
    assert reader.read_frames(1.0) == [Heartbeat(2, 1, 2)]
    reader.close()


def test_loopback_close_wakes_blocked_reader() -> None:
    line = LoopbackLine()
    reader = SerialTransport("loopback", opener=line.opener("b"))
    reader.read_frames(0.0)
    thread = threading.Thread(target=reader.read_frames, args=(30.0,))
    thread.start()
    time.sleep(0.1)
    reader.close()
    thread.join(2.0)
    assert not thread.is_alive()
