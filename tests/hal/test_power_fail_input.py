"""The gpio board's optional mains-loss input (``[hardware] power_fail_pin``) on gpiozero's
MockFactory: its edges reach the listener on the driver's thread (issue 12)."""

from __future__ import annotations

import threading
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from evse.config import load_config
from hal.registry import create_board
from tests.hal.test_board_commissioning import (  # noqa: F401 - fixtures
    Wiring,
    config_file,
    meter_server,
)


def test_power_fail_pin_reports_mains_loss_and_return(factory: MockFactory,
                                                      config_file: Path) -> None:  # noqa: F811
    text = config_file.read_text().replace(
        'pin_factory = "mock"\n',
        'pin_factory = "mock"\npower_fail_pin = 24\npower_fail_active_high = false\n')
    config_file.write_text(text)
    wiring = Wiring(factory)
    ups = factory.pin(24)
    ups.drive_high()  # mains present: the UPS output idles high (active low)
    config = load_config(config_file)
    board = create_board(config.hardware, config.connectors)
    edges: list[bool] = []
    changed = threading.Event()
    try:
        assert board.power_fail is not None and not board.power_fail.failing

        def heard(lost: bool) -> None:
            edges.append(lost)
            changed.set()

        board.power_fail.add_listener(heard)
        ups.drive_low()
        assert changed.wait(2.0)
        assert board.power_fail.failing and edges == [True]
        changed.clear()
        ups.drive_high()
        assert changed.wait(2.0)
        assert not board.power_fail.failing and edges == [True, False]
    finally:
        board.close()
        wiring.close()


def test_without_power_fail_pin_the_board_has_no_input(factory: MockFactory,
                                                       config_file: Path) -> None:  # noqa: F811
    wiring = Wiring(factory)
    config = load_config(config_file)
    board = create_board(config.hardware, config.connectors)
    try:
        assert config.hardware.power_fail_pin == -1
        assert board.power_fail is None
    finally:
        board.close()
        wiring.close()
