"""Bad configuration never hurts (issue 15): every broken file is one clear message and exit
status 1 from ``evse config check`` (no traceback), NaN and infinities are refused for every
float key, a missing board driver is an error rather than a simulator, URLs and limits that
contradict each other are errors, and a password in the CSMS URL is never echoed.

The CLI runs in-process (``evse.cli.main``, the code ``evse`` runs) to keep this fast; one
case also runs it as a separate process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evse.cli import main
from evse.config import ConfigError, load_config, redact_url
from evse.config_schema import SCHEMA, Schema

BASE: dict[str, Any] = {
    "station": {"id": "CP1"},
    "ocpp": {"url": "ws://127.0.0.1:9000/"},
    "hardware": {"driver": "sim"},
    "connector": [{"id": 1}],
}


def toml(doc: dict[str, Any]) -> str:
    """A small TOML writer for the documents below (scalars, lists, tables, [[arrays]])."""
    out: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, float):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(v), repr(v))
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    def table(prefix: str, t: dict[str, Any], header: str | None) -> None:
        if header:
            out.append(header)
        for k, v in t.items():
            if not (isinstance(v, dict) and not _inline(prefix, k)) and not _table_list(v):
                out.append(f"{k} = {value(v)}")
        for k, v in t.items():
            name = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict) and not _inline(prefix, k):
                table(name, v, f"[{name}]")
            elif _table_list(v):
                for item in v:
                    table(name, item, f"[[{name}]]")

    table("", doc, None)
    return "\n".join(out) + "\n"


def _inline(prefix: str, key: str) -> bool:
    return prefix.endswith((".custom", ".signals"))  # register / signal specs


def _table_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def run_check(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None = None,
              path: Path | None = None) -> tuple[int, str]:
    if path is None:
        path = tmp_path / "evse.toml"
        path.write_text(text or "", encoding="utf-8")
    status = main(["config", "check", "--config", str(path)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def float_keys(node: Schema = SCHEMA, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key of type number in the schema, as a path (0 = the first [[connector]])."""
    if node.get("type") == "number":
        yield path
    for key, sub in node.get("properties", {}).items():
        yield from float_keys(sub, (*path, key))
    if "items" in node and node.get("type") == "array" and "properties" in node["items"]:
        yield from float_keys(node["items"], (*path, 0))


FLOAT_KEYS = list(float_keys())


def with_value(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """BASE with ``value`` at ``path``; tables on the way get their required keys."""
    import copy

    doc = copy.deepcopy(BASE)
    node: Any = doc
    schema: Schema = SCHEMA
    for part in path[:-1]:
        schema = schema["items"] if isinstance(part, int) else schema["properties"][part]
        if isinstance(part, str) and part not in node:
            node[part] = {k: schema["properties"][k].get("default", 1)
                          for k in schema.get("required", [])}
        node = node[part]
    node[path[-1]] = value
    return doc


def test_the_walk_finds_every_float_key() -> None:
    assert len(FLOAT_KEYS) >= 20  # issue 15 counted 20 float keys accepting NaN
    assert ("iec61851", "overtemp_trip_c") in FLOAT_KEYS
    assert ("connector", 0, "gpio", "pilot", "adc_vref_v") in FLOAT_KEYS


@pytest.mark.parametrize("path", FLOAT_KEYS, ids=lambda p: ".".join(map(str, p)))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=repr)
def test_nan_and_infinities_are_refused_for_every_float_key(
        tmp_path: Path, path: tuple[Any, ...], bad: float) -> None:
    file = tmp_path / "evse.toml"
    file.write_text(toml(with_value(path, bad)))
    with pytest.raises(ConfigError) as err:
        load_config(file)
    shown = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
    assert any(shown in line and "finite number" in line for line in err.value.errors), \
        err.value.errors


def test_a_finite_value_at_every_float_key_is_accepted_by_the_writer(tmp_path: Path) -> None:
    # The NaN cases fail for the NaN, not for a document the writer got wrong.
    for path in FLOAT_KEYS:
        schema: Schema = SCHEMA
        for part in path:
            schema = schema["items"] if isinstance(part, int) else schema["properties"][part]
        file = tmp_path / "evse.toml"
        file.write_text(toml(with_value(path, float(schema["default"]))))
        load_config(file)


def test_overtemp_trip_nan_is_refused_by_config_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_check(tmp_path, capsys, toml(
        with_value(("iec61851", "overtemp_trip_c"), float("nan"))))
    assert status == 1
    assert "iec61851.overtemp_trip_c: found nan, expected a finite number" in out


@pytest.mark.parametrize("doc", [
    {k: v for k, v in BASE.items() if k != "hardware"},
    {**BASE, "hardware": {}},
    {**BASE, "hardware": {"pin_factory": "mock"}},
], ids=["no-hardware-table", "empty-hardware-table", "no-driver"])
def test_a_missing_board_driver_is_an_error_never_the_simulator(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: dict[str, Any]) -> None:
    status, out = run_check(tmp_path, capsys, toml(doc))
    assert status == 1
    assert "'hardware' is a required property" in out or \
        "'driver' is a required property" in out


@pytest.mark.parametrize("url", [
    "http://csms.example/ocpp",
    "wss//csms.example/",
    "ws://",
    "ws:///ocpp",
    "ws://:9000/",
    "ws://csms.example:99999/",
    "ws://csms.example:0/",
    "ws://csms.example:port/",
    "ws://[::1/",
    "ws://csms.example/ocpp?token=1",
    "ws://csms.example/ocpp#x",
    "ws://csms example/",
    "ws://csms.example/\tocpp",
])
def test_malformed_urls_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   url: str) -> None:
    status, out = run_check(tmp_path, capsys, toml({**BASE, "ocpp": {"url": url}}))
    assert status == 1
    assert "ocpp.url: found" in out


@pytest.mark.parametrize("url", [
    "ws://127.0.0.1:9000/", "wss://csms.example/ocpp/", "ws://[::1]:9000",
    "wss://cp:secret@csms.example:443/ocpp",
])
def test_good_urls_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                url: str) -> None:
    status, out = run_check(tmp_path, capsys, toml({**BASE, "ocpp": {"url": url}}))
    assert status == 0, out


@pytest.mark.parametrize("url", [
    "wss://cp:s3cr3t-pw@csms.example:443/ocpp",   # valid: the OK line
    "wss://cp:s3cr3t-pw@csms.example:99999/",     # bad port
    "https://cp:s3cr3t-pw@csms.example/",         # bad scheme (schema pattern)
    "wss://cp:s3cr3t-pw@csms.example/?x",         # query
    "wss://cp:s3cr3t-pw@[::1/",                   # unparsable
])
def test_config_check_never_echoes_a_password(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str) -> None:
    doc = {**BASE, "ocpp": {"url": url}, "station": {"id": "CP1", "max_current_a": 1.0}}
    _, out = run_check(tmp_path, capsys, toml(doc))
    assert "s3cr3t" not in out
    assert "ocpp.url" in out or "station.max_current_a" in out


def test_redact_url_keeps_everything_but_the_password() -> None:
    assert redact_url("wss://cp:pw@h:443/p") == "wss://cp:***@h:443/p"
    assert redact_url("wss://h/p") == "wss://h/p"


GPIO: dict[str, Any] = {**BASE, "hardware": {"driver": "gpio", "pin_factory": "mock"}}
TCP_METER = {"driver": "modbus-tcp", "host": "10.0.0.5"}


def _gpio(*connectors: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**GPIO, "connector": list(connectors), **extra}


@pytest.mark.parametrize(("doc", "expected"), [
    ({**BASE, "ocpp": {"url": "ws://h/", "reconnect_min_s": 30.0, "reconnect_max_s": 10.0}},
     "ocpp.reconnect_min_s: found 30.0, expected ≤ reconnect_max_s"),
    ({**BASE, "iec61851": {"derating_start_c": 70.0, "overtemp_trip_c": 65.0}},
     "iec61851.overtemp_trip_c: found 65.0, expected above derating_start_c"),
    ({**BASE, "iec61851": {"derating_start_c": 70.0, "overtemp_trip_c": 70.0}},
     "iec61851.overtemp_trip_c: found 70.0, expected above derating_start_c"),
    (_gpio({"id": 1, "meter": TCP_METER},
           {"id": 2, "meter": TCP_METER, "gpio": {"pilot": {"pwm_pin": 12, "adc_channel": 1},
                                                  "contactor": {"pin": 23},
                                                  "rcd": {"trip_pin": 24, "test_pin": 25}}}),
     "connector[1].meter: the same meter as connector[0]"),
    (_gpio({"id": 1, "meter": {"driver": "modbus-rtu", "device": "/dev/ttyUSB0"}},
           {"id": 2, "meter": {"driver": "modbus-rtu", "device": "/dev/ttyUSB0", "unit_id": 2,
                               "baudrate": 19200},
            "gpio": {"pilot": {"pwm_pin": 12, "adc_channel": 1}, "contactor": {"pin": 23},
                     "rcd": {"trip_pin": 24, "test_pin": 25}}}),
     "connector[1].meter: serial settings (19200, 'N', 1) differ from connector[0]"),
    (_gpio({"id": 1, "meter": TCP_METER, "gpio": {"contactor": {"pin": 27}}}),
     "connector[0].gpio.rcd.trip_pin: GPIO 27 is already connector[0].gpio.contactor.pin"),
    (_gpio({"id": 1, "meter": TCP_METER},
           {"id": 2, "meter": {**TCP_METER, "unit_id": 2}}),
     "connector[1].gpio.pilot.pwm_pin: GPIO 18 is already connector[0].gpio.pilot.pwm_pin"),
    (_gpio({"id": 1, "meter": TCP_METER,
            "gpio": {"temperature": {"sensor": "adc", "adc_channel": 0}}}),
     "connector[0].gpio.temperature.adc_channel: SPI 0.0 channel 0 is already "
     "connector[0].gpio.pilot.adc_channel"),
    (_gpio({"id": 1, "meter": TCP_METER,
            "gpio": {"temperature": {"sensor": "adc", "adc_chip": "mcp3208"}}}),
     "connector[0].gpio.temperature.adc_chip: found 'mcp3208', but SPI 0.0 is an mcp3008"),
    ({**_gpio({"id": 1, "meter": TCP_METER}),
      "hardware": {"driver": "gpio", "pin_factory": "native"}},
     "pin_factory = 'native' has no PWM"),
    (_gpio({"id": 1, "meter": TCP_METER, "gpio": {"rcd": {"test_pin": -1}}}),
     "connector[0].gpio.rcd.test_pin: required for iec61851.rcd_self_test = 'every_session'"),
    (_gpio({"id": 1, "meter": TCP_METER, "gpio": {"contactor": {"pin": -1}}}),
     "connector[0].gpio.contactor.pin: required (a GPIO pin), found -1"),
    (_gpio({"id": 1, "lock": True, "meter": TCP_METER, "gpio": {"lock": {"unlock_pin": -1}}}),
     "connector[0].gpio.lock.unlock_pin: required (a GPIO pin), found -1"),
    ({**BASE, "station": {"id": "CP1", "control_socket": "/run/" + "s" * 120}},
     "station.control_socket: /run/sss"),
], ids=["reconnect", "trip-below-derating", "trip-at-derating", "same-tcp-meter",
        "rtu-bus-settings", "pin-twice", "default-pins-two-connectors", "adc-channel-twice",
        "adc-chip-mismatch", "native-no-pwm", "rcd-test-pin", "contactor-pin",
        "lock-pin", "socket-path-length"])
def test_inconsistent_settings_are_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: dict[str, Any],
        expected: str) -> None:
    status, out = run_check(tmp_path, capsys, toml(doc))
    assert status == 1
    assert expected in out, out


def test_consistent_gpio_wiring_and_a_connector_above_the_station_limit_are_fine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A connector rated 32 A behind a 16 A supply is a normal install: the station caps it.
    doc = _gpio({"id": 1, "max_current_a": 32.0, "meter": TCP_METER},
                {"id": 2, "meter": {**TCP_METER, "unit_id": 2},
                 "gpio": {"pilot": {"pwm_pin": 12, "adc_channel": 1},
                          "contactor": {"pin": 23}, "rcd": {"trip_pin": 24, "test_pin": 25}}},
                station={"id": "CP1", "max_current_a": 16.0})
    status, out = run_check(tmp_path, capsys, toml(doc))
    assert status == 0, out


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo.toml"
    os.mkfifo(path)
    return path


def _loop(tmp_path: Path) -> Path:
    (tmp_path / "a.toml").symlink_to(tmp_path / "b.toml")
    (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
    return tmp_path / "a.toml"


def _write(name: str, data: bytes) -> Any:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path
    return make


@pytest.mark.parametrize(("make", "expected"), [
    (lambda d: d / "missing.toml", "file not found"),
    (lambda d: d, "is a directory, expected a TOML file"),
    (_loop, "cannot be read (Too many levels of symbolic links)"),
    (lambda d: (d / "dangling.toml").symlink_to(d / "nowhere") or d / "dangling.toml",
     "file not found"),
    (_fifo, "not a regular file"),
    (lambda d: Path("/dev/zero"), "not a regular file"),
    (_write("binary.toml", bytes(range(256)) * 4), "not UTF-8 text (byte 0x80 at offset 128)"),
    (_write("latin1.toml", '[station]\nid = "Café"\n'.encode("latin-1")), "not UTF-8 text"),
    (_write("nul.toml", b'[station]\nid = "CP1"\x00\n'), "contains NUL bytes"),
    (_write("big.toml", b"# x\n" * 300_000), "expected a TOML file of at most"),
    (_write("digits.toml", b"[station]\nmax_current_a = " + b"9" * 5000 + b"\n"),
     "not valid TOML: an integer of more than 4300 digits"),
    (_write("deep.toml", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n"),
     "not valid TOML: arrays or tables nested too deeply"),
    (_write("broken.toml", b"[station\nid="), "not valid TOML"),
], ids=["missing", "directory", "symlink-loop", "dangling-symlink", "fifo", "device",
        "binary", "latin-1", "nul", "too-large", "huge-integer", "deep-nesting", "not-toml"])
def test_unusable_files_are_one_clear_line_and_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, expected: str) -> None:
    path = make(tmp_path)
    status, out = run_check(tmp_path, capsys, path=path)
    assert status == 1
    assert expected in out, out
    assert "Traceback" not in out


def _without_read_override() -> list[str]:
    """A command prefix under which even root gets EACCES on a mode-000 file (root's
    CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH dropped with util-linux setpriv); [] when not root."""
    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="root without setpriv reads every file")
def test_an_unreadable_file_is_a_clear_message_as_a_process(tmp_path: Path) -> None:
    path = tmp_path / "evse.toml"
    path.write_text(toml(BASE))
    path.chmod(0)
    done = subprocess.run([*_without_read_override(), sys.executable, "-m", "evse", "config",
                           "check", "--config", str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == f"{path}: cannot be read (permission denied)\n"
