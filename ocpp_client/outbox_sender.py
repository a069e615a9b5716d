"""The sender of the durable outbox (:mod:`ocpp_client.queue`): in order per connector,
connectors in turn, one CALL at a time, with the retry rule of OCPP 1.6 §4.10 (2.0.1:
MessageAttempts / MessageAttemptInterval, the same rule).

Version-independent: the adapter passes how a queued row becomes a CALL (``prepare``), what
an answer does (``delivered``) and the retry settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError

from ocpp_client.queue import Outbox, QueuedMessage

log = logging.getLogger(__name__)

#: A CALL that failed and counts as one attempt (§4.10): no answer, or a CALLERROR —
#: also one with an error code the ``ocpp`` library does not know.
ATTEMPT_FAILED = (TimeoutError, OCPPError, UnknownCallErrorCodeError)


class DropMessage(Exception):
    """Raised by ``prepare``: the row can never be sent (the reason is logged)."""


#: Sends a CALL (its payload object) with the row's unique id; returns the CALLRESULT.
SendCall = Callable[[Any, str], Awaitable[Any]]


class OutboxSender:
    """Delivers the outbox over one link (one :meth:`run` per connection).

    Args:
        outbox: the durable queue.
        prepare: queued row → the CALL payload object to send; raises :class:`DropMessage`.
        delivered: called with the row and its CALLRESULT (acknowledges it in the outbox).
        retry: the current (attempts, interval s) retry settings, e.g. 1.6's
            TransactionMessageAttempts / TransactionMessageRetryInterval.
    """

    def __init__(self, outbox: Outbox, prepare: Callable[[QueuedMessage], Any],
                 delivered: Callable[[QueuedMessage, Any], None],
                 retry: Callable[[], tuple[int, int]]) -> None:
        self.outbox = outbox
        self._prepare = prepare
        self._delivered = delivered
        self._retry = retry

    async def run(self, send: SendCall) -> None:
        """Deliver until cancelled; no pauses but the §4.10 retry waits of a failing
        connector."""
        outbox = self.outbox
        while True:
            message, wait = outbox.next_message()
            if message is None:
                # No flush here: acknowledgements ride with the next commit (Outbox.done).
                outbox.changed.clear()
                message, wait = outbox.next_message()
                if message is None:
                    timeout = None if math.isinf(wait) else wait
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(outbox.changed.wait(), timeout)
                    continue
            try:
                payload = self._prepare(message)
            except DropMessage as why:
                outbox.drop(message, str(why))
                continue
            try:
                result = await send(payload, message.unique_id)
            except ATTEMPT_FAILED as exc:
                self.failed(message, exc)
                continue
            self._delivered(message, result)

    def failed(self, message: QueuedMessage, exc: BaseException) -> None:
        """CALLERROR or no answer (OCPP 1.6 §4.10): retry after interval × attempts so
        far; give up after the attempts limit (logged, counted in ``dropped``)."""
        limit, interval = self._retry()
        attempts = message.attempts + 1
        self.outbox.failed(message, float(interval * attempts))
        if attempts >= limit:
            self.outbox.drop(message, f"{attempts} attempt(s) failed, last: {exc!r} "
                                      "(retry limit: OCPP 1.6 §4.10)")
            return
        log.warning("%s (session %s) failed (%s): attempt %d/%d in %d s", message.action,
                    message.session_id, exc, attempts + 1, limit, interval * attempts)
