"""scripts/install-rpi in --dry-run mode against a temporary root, scripts/setup-venv's
ensurepip check, and the lock the installer installs from."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def install(root: Path, *args: str, expect: int = 0, model: str = "") -> str:
    """Run the installer in --dry-run mode into ``root``; ``model`` fakes the board."""
    model_file = root.parent / f"{root.name}-model"
    model_file.write_text(model)
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--root", str(root), *args],
        capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "EVSE_DT_MODEL": str(model_file)},
    )
    assert result.returncode == expect, result.stdout + result.stderr
    return result.stdout + result.stderr


def fill_in(root: Path, station_id: str = "SITE-7-CP2",
            url: str = "wss://csms.operator.test/ocpp/") -> Path:
    conf = root / "etc/evse/evse.toml"
    text = conf.read_text()
    text = re.sub(r'(?m)^id = ".*"$', f'id = "{station_id}"', text, count=1)
    text = re.sub(r'(?m)^url = ".*"$', f'url = "{url}"', text, count=1)
    conf.write_text(text)
    return conf


def test_installs_files_and_prints_system_commands(tmp_path: Path) -> None:
    out = install(tmp_path)
    for rel in INSTALLED:
        assert (tmp_path / rel).is_file(), rel
    link = tmp_path / "usr/local/bin/evse"
    assert link.is_symlink() and str(link.readlink()) == "/opt/evse/venv/bin/evse"
    # The system-changing steps are shown, not run.
    venv = f"{tmp_path}/opt/evse/venv"
    assert f"would run: python3 -m venv --system-site-packages {venv}" in out
    lock = ROOT / "scripts/rpi-requirements.lock"
    assert (f"would run: {venv}/bin/python -m pip install --quiet --require-hashes --no-deps "
            f"--ignore-installed -r {lock}") in out
    assert f"--no-deps --no-build-isolation --force-reinstall {ROOT}" in out
    assert "would run: systemd-sysusers" in out
    assert not (tmp_path / "opt").exists()
    # A new install is not enabled or started: the config still has the example's values.
    assert "enable evse.service" not in out and "not enabled" in out


def test_unit_points_into_the_venv(tmp_path: Path) -> None:
    install(tmp_path)
    unit = (tmp_path / "etc/systemd/system/evse.service").read_text()
    assert "ExecStart=/opt/evse/venv/bin/evse run --config /etc/evse/evse.toml" in unit
    assert "/usr/bin/evse" not in unit
    assert "file:///usr/local/share/doc/evse/deploy.md" in unit


def test_config_is_the_rpi_example_with_board_paths(tmp_path: Path) -> None:
    install(tmp_path)
    config = load_config(tmp_path / "etc/evse/evse.toml")
    assert config.state_dir == Path("/var/lib/evse")
    # Not in the 0700 state dir: technicians (group evse) reach it in /run/evse.
    assert config.control_socket == Path("/run/evse/control.sock")
    example = tomllib.loads((ROOT / "config/rpi-sdm630.toml").read_text())
    assert config.hardware.driver == example["hardware"]["driver"] == "gpio"
    assert config.station_id == example["station"]["id"]


def test_start_refused_until_station_id_and_url_are_set(tmp_path: Path) -> None:
    install(tmp_path)
    out = install(tmp_path, "--start", expect=1)
    assert "not configured: [station] id" in out
    assert "enable evse.service" not in out
    conf = tmp_path / "etc/evse/evse.toml"
    example_url = tomllib.loads(conf.read_text())["ocpp"]["url"]
    fill_in(tmp_path, url=example_url)  # id set, url still the placeholder
    out = install(tmp_path, "--start", expect=1)
    assert "not configured: [ocpp] url" in out
    fill_in(tmp_path)
    out = install(tmp_path, "--start")
    assert f"would run: systemctl --root={tmp_path} enable evse.service" in out


def test_simulator_never_started_on_a_pi_unless_asked(tmp_path: Path) -> None:
    install(tmp_path)
    conf = fill_in(tmp_path)
    conf.write_text(conf.read_text().replace('driver = "gpio"', 'driver = "sim"', 1))
    pi = "Raspberry Pi 4 Model B Rev 1.5"
    out = install(tmp_path, "--start", expect=1, model=pi)
    assert 'runs the simulator ([hardware] driver = "sim")' in out
    assert "enable evse.service" not in out
    out = install(tmp_path, "--start", "--allow-sim", model=pi)
    assert "enable evse.service" in out
    # Not a Pi (a bench PC): the simulator is what it is for.
    assert "enable evse.service" in install(tmp_path, "--start")


def test_technician_and_admin_groups(tmp_path: Path) -> None:
    out = install(tmp_path, "--technician", "alice", "--admin", "bob")
    assert f"would run: usermod --root {tmp_path} -aG evse alice" in out
    assert f"would run: usermod --root {tmp_path} -aG evse,evse-admin bob" in out
    sysusers = (tmp_path / "etc/sysusers.d/evse.conf").read_text()
    assert re.search(r"(?m)^g\s+evse-admin\s", sysusers)


def test_lock_pins_every_dependency_with_hashes() -> None:
    """Reproducible: one version per package, each with hashes, satisfying pyproject."""
    lock = (ROOT / "scripts/rpi-requirements.lock").read_text()
    entries = re.findall(r"(?m)^([A-Za-z0-9_.-]+)==(\S+)((?: \\\n\s+--hash=sha256:[0-9a-f]{64})+)",
                         lock)
    pins = {str(canonicalize_name(name)): version for name, version, _ in entries}
    requirement_lines = [line for line in lock.splitlines() if re.match(r"^[A-Za-z]", line)]
    assert len(entries) == len(requirement_lines), "every pin has --hash lines"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        req = Requirement(text)
        name = str(canonicalize_name(req.name))
        assert name in pins, f"{req} missing from the lock (run scripts/lock-rpi)"
        assert req.specifier.contains(pins[name]), f"lock has {name} {pins[name]}, want {req}"
    assert "setuptools" in pins, "the build backend is locked too (offline, same build)"


def test_setup_venv_names_the_debian_package_without_ensurepip(tmp_path: Path) -> None:
    """A python3 without ensurepip (Debian without python3-venv): say what to install."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text("#!/bin/sh\ncase \"$*\" in *ensurepip*) exit 1;; esac\nexit 0\n")
    fake.chmod(0o755)
    work = tmp_path / "checkout"
    work.mkdir()
    result = subprocess.run(
        ["bash", "-c", f"source {ROOT / 'scripts/setup-venv'}"], cwd=work,
        capture_output=True, text=True, check=False, timeout=30,
        env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "python3-venv" in result.stderr
    assert not (work / ".venv").exists()


def test_idempotent_and_never_overwrites_edited_config(tmp_path: Path) -> None:
    install(tmp_path)
    snapshot = {rel: (tmp_path / rel).read_bytes() for rel in INSTALLED}
    out = install(tmp_path)
    assert "kept: /etc/evse/evse.toml (same as the example)" in out
    assert {rel: (tmp_path / rel).read_bytes() for rel in INSTALLED} == snapshot
    conf = fill_in(tmp_path)
    edited = conf.read_text()
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
    # An upgrade restarts a running service; a new one is not started.
    assert "would run: systemctl try-restart evse.service" in result.stdout
    assert "would run: systemctl enable" not in result.stdout


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

    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    result = subprocess.run([tool, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
