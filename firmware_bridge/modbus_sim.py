"""Serve profile values as a real pymodbus server (TCP or RTU), for simulators and tests.

The register contents come from `DeviceProfile.encode`, so a device simulated here reads
back through `ModbusPoller` exactly as the profile says. Addresses the profile does not
map answer ILLEGAL DATA ADDRESS, as a real device does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any, Literal

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from firmware_bridge.modbus_profile import DeviceProfile, Table

__all__ = ["ProfileServer", "sim_device"]

# Function codes whose datastore block is the table; used to write values from outside.
_WRITE_FC = {Table.COIL: 15, Table.DISCRETE: 2, Table.HOLDING: 16, Table.INPUT: 4}


def _runs(words: Mapping[int, int | bool]) -> list[tuple[int, list[Any]]]:
    """Contiguous (start, values) runs of an address -> word mapping."""
    runs: list[tuple[int, list[Any]]] = []
    for address in sorted(words):
        if runs and runs[-1][0] + len(runs[-1][1]) == address:
            runs[-1][1].append(words[address])
        else:
            runs.append((address, [words[address]]))
    return runs


def sim_device(
    profile: DeviceProfile, device_id: int = 1, values: Mapping[str, float] | None = None
) -> SimDevice:
    """A pymodbus SimDevice with the profile's registers, holding `values` (raw 0 if omitted)."""
    contents: dict[Table, dict[int, int | bool]] = {t: {} for t in Table}
    for spec in profile.registers:
        for i in range(spec.count):
            contents[spec.table][spec.address + i] = False if spec.table.is_bits else 0
    for table, words in profile.encode(values or {}).items():
        contents[table].update(words)
    blocks: list[list[SimData]] = []
    for table in (Table.COIL, Table.DISCRETE, Table.HOLDING, Table.INPUT):
        runs = _runs(contents[table])
        if table.is_bits:
            # pymodbus needs a bit block per table; an unused one sits out of reach at the top.
            block = [
                SimData(a, values=[bool(v) for v in vs], datatype=DataType.BITS) for a, vs in runs
            ]
            blocks.append(block or [SimData(65520, values=[False] * 16, datatype=DataType.BITS)])
        else:
            block = [
                SimData(a, values=[int(v) for v in vs], datatype=DataType.REGISTERS)
                for a, vs in runs
            ]
            blocks.append(block or [SimData(0, datatype=DataType.INVALID)])
    return SimDevice(device_id, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]))


class ProfileServer:
    """A pymodbus server on its own thread and event loop, serving one profile per device id."""

    def __init__(
        self,
        devices: Mapping[int, DeviceProfile],
        *,
        transport: Literal["tcp", "rtu"],
        host: str = "127.0.0.1",
        port: int = 502,
        serial_port: str | None = None,
        baudrate: int = 19_200,
        values: Mapping[int, Mapping[str, float]] | None = None,
    ) -> None:
        if transport == "rtu" and not serial_port:
            raise ValueError("transport='rtu' needs serial_port=")
        self.devices = dict(devices)
        self.transport = transport
        self.host, self.port = host, port
        self.serial_port, self.baudrate = serial_port, baudrate
        self._initial = {k: dict(v) for k, v in (values or {}).items()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout_s: float = 5.0) -> ProfileServer:
        """Start serving; returns once the server listens (or raises why it could not)."""
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="modbus-profile-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("Modbus server did not start")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError(f"Modbus server did not start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Stop serving and join the thread; the port (or tty) is released."""
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or thread is None:
            return
        if server is not None:
            shutdown: Any = server.shutdown  # untyped in pymodbus
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5.0)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5.0)
        self._loop = self._server = self._thread = None

    def set_values(self, device_id: int, values: Mapping[str, float]) -> None:
        """Change what the device reports, through the profile's encoding."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            self._initial.setdefault(device_id, {}).update(values)
            return
        for table, words in self.devices[device_id].encode(values).items():
            for address, run in _runs(words):
                coro = server.async_setValues(device_id, _WRITE_FC[table], address, run)
                asyncio.run_coroutine_threadsafe(coro, loop).result(5.0)

    def __enter__(self) -> ProfileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._listen())
            if self._error is None:
                loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ready.set()

    async def _listen(self) -> None:
        devices = [
            sim_device(profile, device_id, self._initial.get(device_id))
            for device_id, profile in self.devices.items()
        ]
        try:
            if self.transport == "tcp":
                self._server = ModbusTcpServer(devices, address=(self.host, self.port))
            else:
                self._server = ModbusSerialServer(
                    devices,
                    framer=FramerType.RTU,
                    port=self.serial_port or "",
                    baudrate=self.baudrate,
                )
            await self._server.serve_forever(background=True)
        except (OSError, RuntimeError) as err:
            self._error = err
            self._server = None
        self._ready.set()
