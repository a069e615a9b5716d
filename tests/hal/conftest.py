"""Fixtures of the hal tests: the gpiozero mock pin factory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from tests.hal.gpio_peers import mock_pin_factory


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """gpiozero's default pin factory for the test (``MockFactory`` with PWM pins)."""
    with mock_pin_factory() as f:
        yield f
