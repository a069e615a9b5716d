#!/usr/bin/env python3
"""Drive one charging session end to end and print what the CSMS saw (see scripts/demo)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def evse(*args: str) -> str:
    out = subprocess.run([PY, "-m", "evse", *args], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return out.stdout


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on 127.0.0.1:{port}")


def wait_status(config: str, predicate: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status: dict[str, Any] = json.loads(evse("status", "--json", "--config", config))
            if predicate(status):
                return status
        except subprocess.CalledProcessError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the daemon did not reach the expected state; see its log")
        time.sleep(0.3)


def step(text: str) -> None:
    print(f"\n\033[1m▶ {text}\033[0m", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="one simulated charging session")
    parser.add_argument("--config", default=str(ROOT / "config" / "evse.toml"))
    parser.add_argument("--charge-seconds", type=float, default=12.0)
    args = parser.parse_args()
    config = args.config
    logs = ROOT / "config" / "state"
    logs.mkdir(parents=True, exist_ok=True)
    csms_log, daemon_log = logs / "demo-csms.log", logs / "demo-daemon.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    step("starting the development CSMS on ws://127.0.0.1:9000/ (authorizes idTag DEMO01)")
    csms = subprocess.Popen([PY, str(ROOT / "scripts" / "dev_csms.py"), "--port", "9000"],
                            stdout=csms_log.open("w"), stderr=subprocess.STDOUT, env=env)
    daemon = None
    try:
        wait_port(9000, 15)
        step(f"starting the firmware: evse run --config {os.path.relpath(config)}")
        daemon = subprocess.Popen([PY, "-m", "evse", "run", "--config", config],
                                  stdout=daemon_log.open("w"), stderr=subprocess.STDOUT,
                                  env=env, cwd=ROOT)
        wait_status(config, lambda s: s["csms"]["state"] == "accepted", 30)
        print(evse("status", "--config", config), end="")

        step("evse sim plug 1 --max-current 16   (an EV plugs in: pilot A → B)")
        evse("sim", "plug", "1", "--max-current", "16", "--config", config)
        wait_status(config, lambda s: s["connectors"][0]["state"] == "pending", 10)
        step("evse sim swipe DEMO01   (a card; the CSMS authorizes it)")
        evse("sim", "swipe", "DEMO01", "--config", config)
        wait_status(config, lambda s: s["connectors"][0]["state"] == "energy_transfer", 15)
        print(evse("status", "--config", config), end="")
        step(f"charging for {args.charge_seconds:.0f} s ...")
        time.sleep(args.charge_seconds)
        print(evse("status", "--config", config), end="")
        step("evse sim unplug 1   (the EV leaves: pilot → A)")
        evse("sim", "unplug", "1", "--config", config)
        wait_status(config, lambda s: s["connectors"][0]["state"] == "idle"
                    and s["csms"]["queued"] == 0, 15)
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(15)
        csms.send_signal(signal.SIGINT)
        csms.wait(10)

    step("the OCPP 1.6J message exchange, as the CSMS logged it")
    frames = []
    for line in csms_log.read_text().splitlines():
        if "CP → CSMS" in line or "CSMS → CP" in line:
            print(line[:220] + (" …" if len(line) > 220 else ""))
            frames.append(json.loads(line.split(": ", 1)[1]))
    calls = {f[1]: f for f in frames if f[0] == 2}
    start = next((f[3] for f in calls.values() if f[2] == "StartTransaction"), None)
    stop = next((f[3] for f in calls.values() if f[2] == "StopTransaction"), None)
    step("session summary")
    if start is None or stop is None:
        print(f"incomplete session; see {daemon_log}")
        return 1
    began = datetime.fromisoformat(start["timestamp"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(stop["timestamp"].replace("Z", "+00:00"))
    print(f"transactionId {stop['transactionId']}  idTag {start['idTag']}  "
          f"duration {(ended - began).total_seconds():.1f} s  "
          f"energy {stop['meterStop'] - start['meterStart']} Wh  "
          f"(meterStart {start['meterStart']} Wh, meterStop {stop['meterStop']} Wh, "
          f"reason {stop['reason']})")
    print(f"logs: {os.path.relpath(csms_log)}, {os.path.relpath(daemon_log)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
