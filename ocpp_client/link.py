"""Link keeping (OCPP 1.6 §4.2, §4.6; OCPP 2.0.1 B01, B04 follow the same shape).

Connect to ``<url>/<station id>`` with the version's WebSocket subprotocol, BootNotification
until Accepted (retrying after the CSMS's ``interval`` while Pending or Rejected), then the
version's on-accept work (current statuses), Heartbeat every heartbeat interval, WebSocket
pings every ping interval, and the version's workers (live sender, outbox sender). On loss:
reconnect forever with the ``websockets`` library's exponential backoff (jittered first
delay). Version specifics come in through :class:`VersionLink`.

TLS and HTTP Basic authentication (OCPP 1.6 Security Whitepaper profiles 1–3) plug in as
:attr:`LinkSettings.security` (:class:`ConnectSecurity`: asked for the URL, ``ssl`` context
and headers before every connect, told whether it worked), or statically as
:attr:`LinkSettings.ssl` (an ``ssl.SSLContext`` for ``wss://``) and
:attr:`LinkSettings.headers` (called at every connect, e.g. an ``Authorization`` header).
:meth:`LinkKeeper.reconnect` closes the link so that new credentials take effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import websockets
from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError
from websockets.asyncio.client import connect
from websockets.client import backoff
from websockets.exceptions import WebSocketException

from evse.config import redact_url

log = logging.getLogger(__name__)

#: Errors that end one connection (and start the reconnect wait). EOFError: websockets 13's
#: asyncio client when the CSMS closes before its HTTP response (a refused TLS 1.3 client
#: certificate); later versions wrap it in InvalidMessage.
LINK_ERRORS = (OSError, asyncio.TimeoutError, WebSocketException, EOFError)
#: Longest wait before a BootNotification retry, s (a CSMS interval above is capped).
MAX_BOOT_RETRY_S = 86_400
#: BootNotification retry wait when the CSMS gives none (interval 0), s.
DEFAULT_BOOT_RETRY_S = 30


@dataclass(frozen=True)
class BootAnswer:
    """The part of a BootNotification answer link keeping needs."""

    accepted: bool
    #: The registration status as the CSMS sent it (e.g. "Pending").
    status: str
    #: The CSMS's interval, s: heartbeat interval when accepted, else the retry wait.
    interval: int


@dataclass(frozen=True)
class ConnectOptions:
    """How to open one connection: the endpoint (scheme per security profile), the TLS
    context (None for ``ws://``), the handshake headers, and what the security side needs
    back in :meth:`ConnectSecurity.connected` / :meth:`ConnectSecurity.failed`."""

    url: str
    ssl: ssl.SSLContext | None
    headers: Mapping[str, str]
    attempt: Any = None


class ConnectSecurity(Protocol):
    """Consulted around every connect (security profiles, credentials, certificates)."""

    def prepare(self, url: str) -> ConnectOptions:
        """Options for connecting to ``url`` (LinkSettings.url).

        Raises:
            ValueError / OSError: nothing to connect with (a key, root or certificate is
                missing or unreadable); the link retries after the backoff delay.
        """
        ...

    def connected(self, options: ConnectOptions, ws: Any) -> None:
        """The WebSocket opened (commit what the attempt tried)."""
        ...

    def failed(self, options: ConnectOptions, exc: BaseException) -> None:
        """Opening the WebSocket failed with ``exc`` (roll back, log a security event)."""
        ...


@dataclass(frozen=True)
class LinkSettings:
    """How to reach the CSMS.

    Args:
        url: full endpoint, station id included.
        subprotocol: e.g. "ocpp1.6".
        reconnect_min_s: backoff floor, s.
        reconnect_max_s: backoff cap, s.
        max_frame_bytes: the frame guard's limit; the WebSocket layer allows 4× that, so a
            frame between the two gets a CALLERROR instead of a closed link.
        ssl: TLS context for ``wss://`` (None: the ``websockets`` default).
        headers: extra HTTP headers of the opening handshake, computed at each connect.
        open_timeout_s: WebSocket opening handshake timeout, s.
        close_timeout_s: closing handshake timeout, s (a stalled link must not hold the
            reconnect up for long).
        security: consulted around every connect; replaces ``ssl`` and ``headers``.
    """

    url: str
    subprotocol: str
    reconnect_min_s: float
    reconnect_max_s: float
    max_frame_bytes: int = 1024 * 1024
    ssl: ssl.SSLContext | None = None
    headers: Callable[[], Mapping[str, str]] | None = None
    open_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    security: ConnectSecurity | None = None


class VersionLink(Protocol):
    """What a version adapter supplies to :class:`LinkKeeper` (``cp`` is its ChargePoint)."""

    def open_charge_point(self, ws: Any) -> Any:
        """The ``ocpp`` library ChargePoint over ``ws`` (its ``start()`` reads frames)."""
        ...

    async def boot(self, cp: Any) -> BootAnswer:
        """Send one BootNotification (and take the CSMS time from its answer)."""
        ...

    async def on_accepted(self, cp: Any, answer: BootAnswer) -> None:
        """Work right after Accepted (e.g. the current status of every connector)."""
        ...

    async def heartbeat(self, cp: Any) -> None:
        """Send one Heartbeat."""
        ...

    def heartbeat_interval(self) -> int:
        """Current heartbeat interval, s (0: none configured)."""
        ...

    def ping_interval(self) -> int:
        """Current WebSocket ping interval, s (0: no pings)."""
        ...

    def workers(self, cp: Any) -> list[Coroutine[Any, Any, None]]:
        """Tasks that run while the link is accepted (senders)."""
        ...

    def on_offline(self) -> None:
        """The link went down (drop stale live messages, release the outbox)."""
        ...


class LinkKeeper:
    """Keeps one CSMS link up (see the module docstring).

    Args:
        settings: endpoint, backoff, TLS and headers.
        version: the version adapter's link part.
    """

    def __init__(self, settings: LinkSettings, version: VersionLink) -> None:
        self.settings = settings
        self.version = version
        #: disconnected, connecting, booting, pending, rejected, accepted
        self.state = "disconnected"
        #: The ChargePoint of the current connection (None while down).
        self.cp: Any = None
        self._online = asyncio.Event()
        self._interval_changed = asyncio.Event()
        self._ws: Any = None
        self._closing: set[asyncio.Task[None]] = set()
        #: Monotonic time a frame last came from the CSMS (None: never), s.
        self.last_contact: float | None = None
        #: Why the last connection ended or failed (None: none did), and when (monotonic, s).
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        #: Monotonic time of the next connection or BootNotification attempt (None: none
        #: scheduled), s.
        self.next_retry_at: float | None = None

    def interval_changed(self) -> None:
        """The heartbeat interval changed: the wait for the next Heartbeat is measured
        with the new interval from the last one at once (OCPP 1.6 §9.1.12), not after the
        old interval has run out."""
        self._interval_changed.set()

    @property
    def online(self) -> bool:
        """Booted (Accepted) and connected."""
        return self._online.is_set()

    def describe(self) -> dict[str, Any]:
        """Link keeping for ``evse status``: seconds since the CSMS last sent a frame, the
        last link error and its age, seconds until the next attempt (each None: none)."""
        now = time.monotonic()

        def since(t: float | None) -> float | None:
            return None if t is None else round(max(0.0, now - t), 1)

        return {"last_contact_ago_s": since(self.last_contact),
                "last_error": self.last_error,
                "last_error_ago_s": since(self.last_error_at),
                "next_retry_in_s": None if self.next_retry_at is None
                else round(max(0.0, self.next_retry_at - now), 1)}

    def _failed(self, text: str) -> None:
        self.last_error, self.last_error_at = text, time.monotonic()

    def _backoff(self) -> Any:
        s = self.settings
        return backoff(s.reconnect_min_s, s.reconnect_min_s, s.reconnect_max_s)

    def reconnect(self) -> None:
        """Close the current connection (if any); the link reconnects after the backoff
        floor, with whatever credentials :attr:`LinkSettings.security` gives then."""
        ws = self._ws
        if ws is not None:
            # Kept until done: the loop holds tasks only weakly (a collected close would
            # leave the old credentials in use).
            task = asyncio.get_running_loop().create_task(ws.close(1000, "reconnecting"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _options(self) -> ConnectOptions:
        s = self.settings
        if s.security is not None:
            return s.security.prepare(s.url)
        return ConnectOptions(s.url, s.ssl, dict(s.headers()) if s.headers else {})

    def _connect(self, options: ConnectOptions) -> Any:
        s = self.settings
        kwargs: dict[str, Any] = {}
        if options.ssl is not None:
            kwargs["ssl"] = options.ssl
        if options.headers:
            kwargs["additional_headers"] = dict(options.headers)
        # The asyncio client (websockets ≥ 13; on 13.x ``websockets.connect`` is still the
        # legacy one, which spells the header option differently).
        return connect(
            options.url,
            subprotocols=[websockets.Subprotocol(s.subprotocol)],
            ping_interval=self.version.ping_interval() or None,
            open_timeout=s.open_timeout_s,
            close_timeout=s.close_timeout_s,
            max_size=4 * s.max_frame_bytes,
            **kwargs,
        )

    async def run(self) -> None:
        """Keep the link up forever (cancel to stop)."""
        url = redact_url(self.settings.url)  # as logs show it: basic-auth password masked
        delays = self._backoff()
        security = self.settings.security
        while True:
            self.state = "connecting"
            opened = False
            try:
                options = self._options()
            except (ValueError, OSError) as exc:
                log.error("CSMS link %s: cannot connect: %s", url, exc)
                await asyncio.sleep(next(delays))
                continue
            try:
                async with self._connect(options) as ws:
                    opened = True
                    self._ws = ws
                    delays = self._backoff()
                    if security is not None:
                        security.connected(options, ws)
                    log.info("connected to CSMS %s", url)
                    await self._serve(ws)
            except LINK_ERRORS as exc:
                if security is not None and not opened:
                    security.failed(options, exc)
                log.warning("CSMS link %s: %s", url, exc or type(exc).__name__)
                self._failed(str(exc) or type(exc).__name__)
            except (OCPPError, UnknownCallErrorCodeError) as exc:
                log.error("CSMS answered BootNotification with %s: reconnecting", exc)
                self._failed(f"BootNotification answered with {exc}")
            except Exception as exc:  # a bug must not end the link for good
                log.exception("CSMS link %s: unexpected error", url)
                self._failed(f"unexpected error: {exc!r}")
            finally:
                self._ws = None
                self._go_offline()
            delay = next(delays)
            log.info("reconnecting in %.1f s", delay)
            self.next_retry_at = time.monotonic() + delay
            try:
                await asyncio.sleep(delay)
            finally:
                self.next_retry_at = None

    def _go_offline(self) -> None:
        if self._online.is_set():
            log.warning("CSMS link down")
        self._online.clear()
        self.state = "disconnected"
        self.cp = None
        self.version.on_offline()

    async def _serve(self, ws: Any) -> None:
        cp = self.version.open_charge_point(_ContactStamp(ws, self))
        self.cp = cp
        reader = asyncio.ensure_future(cp.start())
        workers: list[asyncio.Future[Any]] = []
        try:
            boot = asyncio.ensure_future(self._boot(cp))
            await asyncio.wait({reader, boot}, return_when=asyncio.FIRST_COMPLETED)
            if not boot.done():
                boot.cancel()
                reader.result()  # raises the link error
                return
            answer = boot.result()
            self._online.set()
            self.state = "accepted"
            await self.version.on_accepted(cp, answer)
            workers = [asyncio.ensure_future(c) for c in (
                self._heartbeats(cp, answer.interval), *self.version.workers(cp))]
            done, _ = await asyncio.wait({reader, *workers}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (reader, *workers):
                task.cancel()
            await asyncio.gather(reader, *workers, return_exceptions=True)

    async def _boot(self, cp: Any) -> BootAnswer:
        """BootNotification until Accepted (OCPP 1.6 §4.2)."""
        self.state = "booting"
        while True:
            answer = await self.version.boot(cp)
            if answer.accepted:
                log.info("BootNotification accepted (heartbeat %d s)", answer.interval)
                return answer
            self.state = answer.status.lower()
            wait = min(answer.interval, MAX_BOOT_RETRY_S) if answer.interval > 0 \
                else DEFAULT_BOOT_RETRY_S
            log.warning("BootNotification %s: retrying in %d s", answer.status, wait)
            self.next_retry_at = time.monotonic() + wait
            try:
                await asyncio.sleep(wait)
            finally:
                self.next_retry_at = None

    async def _heartbeats(self, cp: Any, interval: int) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            self._interval_changed.clear()
            period = self.version.heartbeat_interval() or interval or 300
            wait = last + period - loop.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._interval_changed.wait(), wait)
                    continue  # changed: measure again with the new interval
            await self.version.heartbeat(cp)
            last = loop.time()


class _ContactStamp:
    """The WebSocket as the ChargePoint sees it, stamping :attr:`LinkKeeper.last_contact`
    at every frame received; everything else is the WebSocket's."""

    def __init__(self, connection: Any, keeper: LinkKeeper) -> None:
        self._connection = connection
        self._keeper = keeper

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def recv(self) -> Any:
        """The next frame from the CSMS."""
        frame = await self._connection.recv()
        self._keeper.last_contact = time.monotonic()
        return frame
