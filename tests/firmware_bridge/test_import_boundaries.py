"""firmware_bridge stays light: no numpy anywhere, no pyserial/pymodbus just for the codec."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "firmware_bridge.protocol",
    "firmware_bridge.serial_transport",
    "firmware_bridge.loopback",
    "firmware_bridge.modbus_profile",
    "firmware_bridge.modbus_poller",
    "firmware_bridge.modbus_sim",
]


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {name.split(".")[0] for name in out.split()}


def test_codec_import_pulls_no_io_libraries() -> None:
    loaded = _loaded_after("import firmware_bridge, firmware_bridge.protocol")
    assert not loaded & {"serial", "pymodbus", "numpy"}


def test_no_module_imports_numpy() -> None:
    loaded = _loaded_after("\n".join(f"import {m}" for m in MODULES))
    assert not loaded & {"numpy", "scipy"}
