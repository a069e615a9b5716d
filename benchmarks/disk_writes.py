#!/usr/bin/env python3
"""Disk write benchmark: fsyncs and bytes written per minute for one charging connector.

SD cards and eMMC wear with every write, and every fsync costs a flash page program; the
state database must still survive a power cut (DESIGN.md, Persistence). This benchmark
counts what the daemon really asks of the disk:

1. A real CSMS (``scripts/dev_csms.py``) listens on 127.0.0.1 and accepts every idTag.
2. ``python -m evse run`` runs as a subprocess under ``strace -f -y`` (every thread), with
   the simulator backend, one connector, ``MeterValueSampleInterval`` = 1 s and the shipped
   default (``config/evse.toml``: 10 s), the shipped ``MeterValuesSampledData``.
3. An EV plugs in and a card starts a transaction; once it is Charging, the window of
   ``--seconds`` seconds is measured: ``fsync``/``fdatasync`` calls and bytes of
   ``write``/``pwrite64`` on files in the state directory (the SQLite database, its WAL,
   journal files). The simulator's own meter register file is not counted (a real meter
   keeps its register itself).
4. The same runs for the *baseline*: the code before one-commit-per-sample, from git
   (``--baseline-rev``, default :data:`BASELINE_REV`), unpacked with ``git archive`` into a
   temp dir and run the same way, in the same run.

Run:  python benchmarks/disk_writes.py [--seconds 60] [--baseline-rev REV] [--no-baseline]
Last lines: ``disk_writes code=<baseline|current> interval_s=… fsyncs_per_min=…
bytes_per_min=…`` per run. Needs ``strace`` (exit status 2 without it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from dev_csms import DevCsms  # noqa: E402

from evse.control import ControlError, request  # noqa: E402

#: The last commit that committed every 1 Hz meter poll (the figures the issue reported).
BASELINE_REV = "3586619"

MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"

CONFIG = """
[station]
id = "CP-DISK"
state_dir = "{state}"
control_socket = "{socket}"

[ocpp]
url = "ws://127.0.0.1:{port}/"
call_timeout_s = 5.0
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[ocpp.configuration]
MeterValueSampleInterval = {interval}
MeterValuesSampledData = "{measurands}"
HeartbeatInterval = 300

[hardware]
driver = "sim"

[[connector]]
id = 1
max_current_a = 32.0

[iec61851]
rcd_self_test = "never"

[logging]
level = "warning"
"""

# 12345 1701234567.123456 pwrite64(7</x/state/evse.db-wal>, "..."..., 4120, 0) = 4120
_LINE = re.compile(r"^\d+\s+(?P<t>\d+\.\d+)\s+(?P<call>\w+)\((?P<fd>\d+)<(?P<path>[^>]*)>"
                   r".*\)\s+=\s+(?P<ret>-?\d+)")


@dataclass
class Result:
    """One measured run."""

    code: str
    interval_s: int
    seconds: float
    fsyncs: int
    bytes_written: int

    @property
    def fsyncs_per_min(self) -> float:
        return self.fsyncs * 60.0 / self.seconds

    @property
    def bytes_per_min(self) -> float:
        return self.bytes_written * 60.0 / self.seconds


def count(trace: Path, state_dir: Path, start: float, end: float) -> tuple[int, int]:
    """(fsyncs, bytes written) on files under ``state_dir`` between ``start`` and ``end``
    (UTC epoch s) in an ``strace -f -y -ttt`` output file."""
    fsyncs = written = 0
    prefix = str(state_dir)
    for line in trace.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if m is None or not start <= float(m["t"]) < end:
            continue
        path = m["path"]
        if not path.startswith(prefix) or "sim-meter" in path:
            continue
        if m["call"] in ("fsync", "fdatasync"):
            fsyncs += 1
        elif int(m["ret"]) > 0:
            written += int(m["ret"])
    return fsyncs, written


async def _control(socket: Path, command: str, **params: object) -> dict[str, object]:
    return await asyncio.to_thread(request, socket, command, 2.0, **params)


async def measure(code: str, tree: Path, interval: int, seconds: float) -> Result:
    """Run the daemon from ``tree`` under strace and measure one charging window."""
    csms = DevCsms(port=0, accept_tags=("DISK01",))
    await csms.start()
    with tempfile.TemporaryDirectory(prefix="evse-disk-") as tmp:
        work = Path(tmp)
        state, socket = work / "state", work / "c.sock"
        config = work / "evse.toml"
        config.write_text(CONFIG.format(state=state, socket=socket, port=csms.port,
                                        interval=interval, measurands=MEASURANDS))
        trace = work / "trace.txt"
        errors = work / "daemon.err"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        proc = subprocess.Popen(
            ["strace", "-f", "-y", "-ttt", "-qq", "-o", str(trace),
             "-e", "trace=fsync,fdatasync,write,pwrite64,writev,pwritev",
             sys.executable, "-m", "evse", "run", "--config", str(config)],
            cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=errors.open("wb"))
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    await _control(socket, "status")
                    break
                except (ControlError, OSError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{code}: daemon did not come up:\n"
                                           + errors.read_text()[-2000:]) from None
                    await asyncio.sleep(0.1)
            # Booted and online (statuses follow the accepted boot): the card is authorized
            # by the CSMS, not decided offline.
            await csms.wait_for(lambda: csms.actions("StatusNotification"), timeout=30)
            await _control(socket, "sim.plug", connector_id=1, max_current_a=32.0, phases=3)
            await _control(socket, "sim.swipe", id_tag="DISK01")
            try:
                await csms.wait_for(lambda: any(
                    p["status"] == "Charging" for p in csms.actions("StatusNotification")),
                    timeout=30)
            except TimeoutError:
                raise RuntimeError(f"{code}: no Charging; daemon said:\n"
                                   + errors.read_text()[-3000:]) from None
            # Let the start-up writes (StartTransaction, its acknowledgement) settle.
            await asyncio.sleep(2.0)
            start = time.time()
            await asyncio.sleep(seconds)
            end = time.time()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            await csms.stop()
        fsyncs, written = count(trace, state, start, end)
    return Result(code, interval, end - start, fsyncs, written)


def baseline_tree(rev: str, into: Path) -> Path:
    """Unpack ``rev`` of this repository into ``into`` (``git archive``)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="measured window per run, s (default 60)")
    parser.add_argument("--intervals", default="1,10",
                        help="MeterValueSampleInterval values, s (default 1,10)")
    parser.add_argument("--baseline-rev", default=None,
                        help=f"git revision of the baseline (default {BASELINE_REV})")
    parser.add_argument("--no-baseline", action="store_true", help="measure current only")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        print("disk_writes: strace not found (apt-get install strace)", file=sys.stderr)
        return 2
    intervals = [int(v) for v in args.intervals.split(",")]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="evse-baseline-") as tmp:
        trees = [("current", ROOT)]
        if not args.no_baseline:
            rev = args.baseline_rev or BASELINE_REV
            trees.insert(0, (f"baseline({rev})", baseline_tree(rev, Path(tmp))))
        for code, tree in trees:
            for interval in intervals:
                result = await measure(code, tree, interval, args.seconds)
                results.append(result)
                print(f"{code:>24} MeterValueSampleInterval={interval:>3} s: "
                      f"{result.fsyncs_per_min:7.1f} fsyncs/min "
                      f"{result.bytes_per_min / 1024:9.1f} KiB/min", flush=True)
    for r in results:
        print(f"disk_writes code={r.code.split('(')[0]} interval_s={r.interval_s} "
              f"fsyncs_per_min={r.fsyncs_per_min:.1f} bytes_per_min={r.bytes_per_min:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
