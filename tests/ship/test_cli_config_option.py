"""`--config` works before or after the subcommand (issue 15, the technician's view)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evse.cli import DEFAULT_CONFIG, build_parser


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status"], DEFAULT_CONFIG),
        (["--config", "/a.toml", "status"], "/a.toml"),
        (["status", "--config", "/b.toml"], "/b.toml"),
        (["--config=/a.toml", "config", "check"], "/a.toml"),
        (["config", "check", "--config", "/b.toml"], "/b.toml"),
        (["--config", "/a.toml", "sim", "plug", "1"], "/a.toml"),
        (["--config", "/a.toml", "fault", "reset", "0"], "/a.toml"),
        # Given twice, the one nearer the command's options wins.
        (["--config", "/a.toml", "status", "--config", "/b.toml"], "/b.toml"),
    ],
)
def test_config_path_parsed_in_either_place(argv: list[str], expected: str) -> None:
    assert build_parser().parse_args(argv).config == expected


def test_config_check_reads_the_file_given_before_the_command(tmp_path: Path) -> None:
    config = tmp_path / "evse.toml"
    config.write_text('[station]\nid = "CP-ORDER"\n[ocpp]\nurl = "ws://127.0.0.1:9/"\n'
                      '[hardware]\ndriver = "sim"\n[[connector]]\nid = 1\n')
    for argv in (["--config", str(config), "config", "check"],
                 ["config", "check", "--config", str(config)]):
        result = subprocess.run([sys.executable, "-m", "evse", *argv], capture_output=True,
                                text=True, check=False, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "CP-ORDER" in result.stdout
