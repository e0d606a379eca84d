"""`ironwatch edge check-config` and the start-up errors of `ironwatch edge run`."""

from __future__ import annotations

from pathlib import Path

import pytest

from ironwatch_app.cli import main

from .test_config import BASE, EXAMPLE


def test_check_config_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "gateway gw-hall-a" in out
    assert "ch1->pump-01/nde_radial" in out
    assert "profile generic_vibration_transmitter every 1 s -> motor-03/de" in out


def test_check_config_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(BASE.replace("1480", "0"))
    assert main(["edge", "check-config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert str(path) in err and "speed_rpm" in err


def test_unknown_modbus_profile_is_reported(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(BASE + '\n[[modbus]]\nhost = "127.0.0.1"\nprofile = "no_such_profile"\n'
                    'asset_id = "pump-01"\npoint = "de"\n')
    assert main(["edge", "check-config", str(path)]) == 2
    assert "no_such_profile" in capsys.readouterr().err
    assert main(["edge", "run", "--config", str(path)]) == 2
    assert "no_such_profile" in capsys.readouterr().err


def test_run_refuses_an_unusable_outbox(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gw.toml"
    blocker = tmp_path / "file"
    blocker.write_text("")
    path.write_text(BASE + f'\n[outbox]\npath = "{blocker}/outbox.db"\n')
    assert main(["edge", "run", "--config", str(path)]) == 2
    assert "cannot open outbox" in capsys.readouterr().err
