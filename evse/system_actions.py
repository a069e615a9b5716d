"""Board-level actions the CSMS can ask for: reboot (OCPP Reset Hard) and firmware install
(OCPP UpdateFirmware), run as the commands configured in ``[system]``.

Each command is an argv list from the configuration, never a shell line: no shell parses it,
so nothing in a CSMS-supplied file name can inject a command. ``{file}`` in an argument is
replaced by the downloaded firmware file's path. Typical choices (``docs/deploy.md``):

* reboot: ``["systemctl", "reboot"]`` (needs the polkit rule shipped in ``systemd/``);
* firmware: ``["rauc", "install", "{file}"]`` (RAUC A/B bundles) or
  ``["swupdate", "-i", "{file}"]`` (SWUpdate ``.swu`` images).

A soft reset (OCPP Reset Soft) is not a board action: the daemon exits with
:data:`SOFT_RESET_EXIT_STATUS` and systemd's ``Restart=on-failure`` starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evse.settings import SystemSettings

log = logging.getLogger(__name__)

#: Exit status of the daemon for an OCPP soft reset (``EX_TEMPFAIL``, sysexits.h);
#: ``Restart=on-failure`` in evse.service restarts it.
SOFT_RESET_EXIT_STATUS = 75

#: How much of a failed command's output goes into the error message, characters.
_OUTPUT_TAIL_CHARS = 2000

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class SystemActionError(Exception):
    """A configured system command is unusable, could not start, failed or timed out."""


def expand_argv(template: Sequence[str], key: str, **values: str) -> list[str]:
    """Substitute ``{name}`` placeholders in each argument of ``template`` with ``values``.

    Plain text replacement, one argument stays one argument (a path with spaces is not split).
    ``key`` names the config key in errors.

    Raises:
        SystemActionError: an empty command, or a placeholder with no value.
    """
    if not template:
        raise SystemActionError(f"[system] {key}: empty command")
    out = []
    for arg in template:
        for name in _PLACEHOLDER.findall(arg):
            if name not in values:
                raise SystemActionError(
                    f"[system] {key}: unknown placeholder {{{name}}} in {arg!r} "
                    f"(known: {', '.join('{' + v + '}' for v in values) or 'none'})"
                )
        out.append(_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg))
    return out


@dataclass(frozen=True)
class SystemActions:
    """The configured reboot and firmware-install commands (``[system]`` table).

    Build it with :meth:`from_config` at start-up (so a bad command is a start-up error, and
    ``evse config check`` reports it), then ``await reboot()`` / ``await install_firmware(f)``.
    """

    reboot_command: tuple[str, ...]
    firmware_install_command: tuple[str, ...]
    reboot_timeout_s: float
    firmware_install_timeout_s: float

    @classmethod
    def from_config(cls, system: SystemSettings) -> SystemActions:
        """Build from the ``[system]`` settings (``config.system``).

        Raises:
            SystemActionError: a command uses an unknown placeholder, or the firmware command
                has no ``{file}``.
        """
        actions = cls(
            reboot_command=tuple(system.reboot_command),
            firmware_install_command=tuple(system.firmware_install_command),
            reboot_timeout_s=system.reboot_timeout_s,
            firmware_install_timeout_s=system.firmware_install_timeout_s,
        )
        expand_argv(actions.reboot_command, "reboot_command")
        if not any("{file}" in arg for arg in actions.firmware_install_command):
            raise SystemActionError(
                "[system] firmware_install_command: no {file} placeholder for the firmware file"
            )
        expand_argv(actions.firmware_install_command, "firmware_install_command", file="x")
        return actions

    async def reboot(self) -> None:
        """Run the reboot command (OCPP Reset Hard). Returns when the command exited 0; the
        reboot itself follows (systemd stops the daemon with SIGTERM).

        Raises:
            SystemActionError: the command could not start, failed, or timed out.
        """
        argv = expand_argv(self.reboot_command, "reboot_command")
        await run_command(argv, "reboot_command", self.reboot_timeout_s)

    async def install_firmware(self, file: Path) -> None:
        """Install the firmware image at ``file`` (OCPP UpdateFirmware, after the download).

        Raises:
            SystemActionError: the file is missing, or the command could not start, failed, or
                timed out. The message names the command and ends with its output.
        """
        if not file.is_file():
            raise SystemActionError(f"firmware file {file} does not exist")
        argv = expand_argv(
            self.firmware_install_command, "firmware_install_command", file=str(file)
        )
        await run_command(argv, "firmware_install_command", self.firmware_install_timeout_s)


async def run_command(argv: Sequence[str], key: str, timeout_s: float) -> str:
    """Run ``argv`` (no shell), wait at most ``timeout_s`` seconds, return its output.

    stdout and stderr are merged and logged line by line at info level. On timeout the
    process is killed.

    Raises:
        SystemActionError: naming ``[system] key``: command not found / not executable, exit
            status ≠ 0 (with the output's tail), or timeout.
    """
    log.info("[system] %s: running %s", key, " ".join(argv))
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise SystemActionError(f"[system] {key}: cannot run {argv[0]!r}: {exc}") from exc
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise SystemActionError(
            f"[system] {key}: {argv[0]} did not finish within {timeout_s:g} s; killed"
        ) from None
    output = stdout.decode(errors="replace")
    for line in output.splitlines():
        log.info("[system] %s: %s", key, line)
    if proc.returncode != 0:
        tail = output[-_OUTPUT_TAIL_CHARS:].strip()
        raise SystemActionError(
            f"[system] {key}: {argv[0]} exited with status {proc.returncode}"
            + (f": {tail}" if tail else "")
        )
    return output
