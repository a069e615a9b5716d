"""systemd/evse.service passes systemd-analyze verify and keeps the properties the issue asks."""

from __future__ import annotations

import configparser
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

RequireTool = Callable[[str, str], str]
ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "evse.service"


def unit_lines() -> dict[str, list[str]]:
    """Section → ``Key=value`` lines (keys may repeat, so no dict per key)."""
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            sections[current].append(line)
    return sections


def resolvable_unit(directory: Path) -> Path:
    """The unit with ExecStart (and ExecStopPost) pointing at an evse that exists here (the
    venv's)."""
    evse = Path(sys.executable).with_name("evse")
    assert evse.exists(), evse
    text = UNIT.read_text().replace("=/usr/bin/evse ", f"={evse} ")
    out = directory / "evse.service"
    out.write_text(text)
    return out


def test_systemd_analyze_verify_passes(tmp_path: Path, require_tool: RequireTool) -> None:
    tool = require_tool("systemd-analyze", "apt-get install systemd")
    unit = resolvable_unit(tmp_path)
    result = subprocess.run(
        [tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    # Unknown or misspelt keys are only warnings (exit 0): any output counts as a failure.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def test_verify_catches_a_broken_unit(tmp_path: Path, require_tool: RequireTool) -> None:
    tool = require_tool("systemd-analyze", "apt-get install systemd")
    unit = tmp_path / "evse.service"
    unit.write_text(UNIT.read_text())  # ExecStart=/usr/bin/evse does not exist here
    result = subprocess.run(
        [tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    if Path("/usr/bin/evse").exists():
        pytest.skip("/usr/bin/evse exists on this machine")
    assert result.returncode != 0


def test_required_settings_present() -> None:
    service = unit_lines()["Service"]
    for expected in [
        "Type=notify",
        "Restart=on-failure",
        "StateDirectory=evse",
        "RuntimeDirectory=evse",
        "ConfigurationDirectory=evse",
        "User=evse",
        "SupplementaryGroups=gpio dialout spi",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_CAN AF_NETLINK",
        "CapabilityBoundingSet=",
        "DevicePolicy=closed",
    ]:
        assert expected in service, expected
    assert any(line.startswith("WatchdogSec=") for line in service)
    devices = [line for line in service if line.startswith("DeviceAllow=")]
    for group in ("gpiochip", "spi", "ttyS", "ttyAMA", "ttyUSB"):
        assert f"DeviceAllow=char-{group} rw" in devices
    # Hardening that would cut the daemon off from its hardware must stay off.
    assert not any(line.startswith(("PrivateDevices=yes", "ProtectKernelTunables=yes"))
                   for line in service)


def test_every_setting_is_explained() -> None:
    """Each [Service] setting has a comment above it (or shares the comment of its group)."""
    lines = UNIT.read_text().splitlines()
    in_service = False
    previous = ""
    for line in lines:
        if line.startswith("["):
            in_service = line == "[Service]"
            previous = line
            continue
        if in_service and line and not line.startswith("#"):
            assert previous.startswith("#") or "=" in previous, f"no comment for {line}"
        previous = line


def test_unit_parses_as_ini() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_sysusers_creates_user_and_groups(tmp_path: Path, require_tool: RequireTool) -> None:
    tool = require_tool("systemd-sysusers", "apt-get install systemd")
    conf = ROOT / "systemd" / "evse.sysusers.conf"
    (tmp_path / "etc").mkdir()
    result = subprocess.run(
        [tool, f"--root={tmp_path}", str(conf)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    group = (tmp_path / "etc" / "group").read_text()
    assert any(line.startswith("evse:") and "/usr/sbin/nologin" in line
               for line in passwd.splitlines())
    for name in ("gpio", "spi", "dialout"):
        entry = next(line for line in group.splitlines() if line.startswith(f"{name}:"))
        assert "evse" in entry.split(":")[3].split(","), entry
