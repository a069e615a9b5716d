"""Configured reboot / firmware-install commands: argv only, {file} substitution, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from evse.config import typed
from evse.settings import SystemSettings
from evse.system_actions import SystemActionError, SystemActions, expand_argv, run_command

ECHO_ARGS = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]


def actions(**overrides: Any) -> SystemActions:
    system: dict[str, Any] = {
        "reboot_command": ["true"],
        "reboot_timeout_s": 5.0,
        "firmware_install_command": [*ECHO_ARGS, "-i", "{file}"],
        "firmware_install_timeout_s": 5.0,
        **overrides,
    }
    return SystemActions.from_config(typed(SystemSettings, system))


def test_defaults_from_schema_are_valid() -> None:
    built = SystemActions.from_config(SystemSettings())
    assert built.reboot_command == ("systemctl", "reboot")
    assert built.firmware_install_command == ("rauc", "install", "{file}")


async def test_file_placeholder_is_one_argument_no_shell(tmp_path: Path) -> None:
    image = tmp_path / "fw image; rm -rf $HOME.raucb"
    image.write_bytes(b"bundle")
    out = await run_command(
        expand_argv([*ECHO_ARGS, "-i", "{file}"], "k", file=str(image)), "k", 5.0
    )
    assert json.loads(out) == ["-i", str(image)]
    await actions().install_firmware(image)


async def test_failing_command_names_key_status_and_output(tmp_path: Path) -> None:
    image = tmp_path / "fw.swu"
    image.write_bytes(b"x")
    failing = [sys.executable, "-c", "import sys; print('bad image'); sys.exit(3)", "{file}"]
    expected = r"firmware_install_command: .* status 3: bad image"
    with pytest.raises(SystemActionError, match=expected):
        await actions(firmware_install_command=failing).install_firmware(image)


async def test_missing_executable() -> None:
    with pytest.raises(SystemActionError, match="reboot_command: cannot run 'no-such-reboot-tool'"):
        await actions(reboot_command=["no-such-reboot-tool"]).reboot()


async def test_timeout_kills_the_command() -> None:
    slow = actions(reboot_command=[sys.executable, "-c", "import time; time.sleep(30)"],
                   reboot_timeout_s=0.3)
    with pytest.raises(SystemActionError, match=r"did not finish within 0\.3 s"):
        await slow.reboot()


async def test_reboot_runs_configured_command(tmp_path: Path) -> None:
    marker = tmp_path / "rebooted"
    await actions(
        reboot_command=[sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    ).reboot()
    assert marker.exists()


async def test_missing_firmware_file(tmp_path: Path) -> None:
    with pytest.raises(SystemActionError, match="does not exist"):
        await actions().install_firmware(tmp_path / "nope.raucb")


def test_bad_placeholders_rejected() -> None:
    with pytest.raises(SystemActionError, match="no \\{file\\} placeholder"):
        actions(firmware_install_command=["swupdate", "-i"])
    with pytest.raises(SystemActionError, match="unknown placeholder \\{path\\}"):
        actions(firmware_install_command=["swupdate", "-i", "{path}", "{file}"])
    with pytest.raises(SystemActionError, match="unknown placeholder"):
        actions(reboot_command=["reboot", "{file}"])
