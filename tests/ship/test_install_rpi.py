"""scripts/install-rpi in --dry-run mode against a temporary root."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from evse.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-rpi"

INSTALLED = [
    "etc/evse/evse.toml",
    "etc/systemd/system/evse.service",
    "etc/sysusers.d/evse.conf",
    "etc/udev/rules.d/60-evse.rules",
    "etc/polkit-1/rules.d/50-evse-reboot.rules",
    "usr/local/share/doc/evse/deploy.md",
    "usr/local/share/doc/evse/configuration.md",
]


def install(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--root", str(root), *args],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_installs_files_and_prints_system_commands(tmp_path: Path) -> None:
    out = install(tmp_path)
    for rel in INSTALLED:
        assert (tmp_path / rel).is_file(), rel
    link = tmp_path / "usr/local/bin/evse"
    assert link.is_symlink() and str(link.readlink()) == "/opt/evse/venv/bin/evse"
    # The system-changing steps are shown, not run.
    assert f"would run: python3 -m venv {tmp_path}/opt/evse/venv" in out
    assert f"pip install --quiet --upgrade {ROOT}" in out
    assert f"would run: systemctl --root={tmp_path} enable evse.service" in out
    assert "would run: systemd-sysusers" in out
    assert not (tmp_path / "opt").exists()


def test_unit_points_into_the_venv(tmp_path: Path) -> None:
    install(tmp_path)
    unit = (tmp_path / "etc/systemd/system/evse.service").read_text()
    assert "ExecStart=/opt/evse/venv/bin/evse run --config /etc/evse/evse.toml" in unit
    assert "/usr/bin/evse" not in unit
    assert "file:///usr/local/share/doc/evse/deploy.md" in unit


def test_config_has_board_paths_and_validates(tmp_path: Path) -> None:
    install(tmp_path)
    config = load_config(tmp_path / "etc/evse/evse.toml")
    assert config.state_dir == Path("/var/lib/evse")
    assert config.control_socket == Path("/run/evse/control.sock")


def test_idempotent_and_never_overwrites_edited_config(tmp_path: Path) -> None:
    install(tmp_path)
    snapshot = {rel: (tmp_path / rel).read_bytes() for rel in INSTALLED}
    out = install(tmp_path)
    assert "kept: /etc/evse/evse.toml (same as the example)" in out
    assert {rel: (tmp_path / rel).read_bytes() for rel in INSTALLED} == snapshot
    conf = tmp_path / "etc/evse/evse.toml"
    edited = conf.read_text().replace('id = "CP001"', 'id = "SITE-7-CP2"')
    conf.write_text(edited)
    out = install(tmp_path)
    assert conf.read_text() == edited
    assert "evse.toml.dist" in out
    assert (tmp_path / "etc/evse/evse.toml.dist").read_bytes() == snapshot["etc/evse/evse.toml"]


def test_uninstall_keeps_config_and_state_unless_purged(tmp_path: Path) -> None:
    install(tmp_path)
    state = tmp_path / "var/lib/evse"
    state.mkdir(parents=True)
    (state / "evse.db").write_bytes(b"billing data")
    out = install(tmp_path, "--uninstall")
    assert f"would run: systemctl --root={tmp_path} disable evse.service" in out
    for rel in INSTALLED[1:]:
        assert not (tmp_path / rel).exists(), rel
    assert not (tmp_path / "usr/local/bin/evse").is_symlink()
    assert (tmp_path / "etc/evse/evse.toml").exists()
    assert (state / "evse.db").exists()
    install(tmp_path, "--uninstall", "--purge")
    assert not (tmp_path / "etc/evse").exists()
    assert not state.exists()


def test_live_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "would install: /etc/systemd/system/evse.service" in result.stdout
    assert "would run: systemctl enable evse.service" in result.stdout


def test_enable_and_sysusers_really_work_in_a_root(
    tmp_path: Path, require_tool: Callable[[str, str], str]
) -> None:
    """What the dry run prints, run for real against the temp root (offline-safe tools)."""
    systemctl = require_tool("systemctl", "apt-get install systemd")
    sysusers = require_tool("systemd-sysusers", "apt-get install systemd")
    install(tmp_path)
    subprocess.run([sysusers, f"--root={tmp_path}", str(tmp_path / "etc/sysusers.d/evse.conf")],
                   check=True, capture_output=True)
    subprocess.run([systemctl, f"--root={tmp_path}", "enable", "evse.service"],
                   check=True, capture_output=True)
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants/evse.service"
    assert wants.is_symlink()
    assert "evse:" in (tmp_path / "etc/passwd").read_text()


def test_help() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and "--uninstall" in result.stdout


def test_shellcheck_clean() -> None:
    """Lint the installer when shellcheck is available (optional tool: skipped otherwise)."""
    import shutil

    import pytest

    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    result = subprocess.run([tool, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
