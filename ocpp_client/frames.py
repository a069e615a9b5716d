"""The OCPP-J frame guard: every frame from the CSMS is screened before the ``ocpp`` library
routes it, and every CALLERROR we send gets the version's spelling of its error code.

The guard wraps the WebSocket handed to the library's ``ChargePoint`` (its public
``connection`` contract: ``recv()`` / ``send()``), so no private part of the library is
touched. A hostile or broken CSMS never drops the link and never reaches a handler with
values it cannot hold (OCPP-J 1.6 §4.2.3, OCPP-J 2.0.1 §4.2.3):

- a frame over :attr:`FrameRules.max_frame_bytes`, text that is not JSON, NaN / Infinity,
  nesting deeper than :attr:`FrameRules.max_depth` → FormatViolation (1.6: FormationViolation);
- an integer of more than 19 digits or outside the signed 64-bit range → TypeConstraintViolation
  (no OCPP integer field can hold it; Python would parse it, SQLite and timers would not);
- not an array or a CALL of the wrong length → ProtocolError; an action or unique id that is
  not a string, a payload that is not an object, a unique id over 36 characters →
  FormatViolation (answered with the unique id "-1" when the id itself is refused);
- an unknown MessageTypeId → PropertyConstraintViolation (as the library answers it);
- a CALL whose action is not routed → NotImplemented when the version does not define the
  action, NotSupported when it defines it but this charge point does not (§4.2.3 — the
  library swaps the two);
- a payload failing the action's JSON schema → the code for the failing rule (type and
  maxLength → TypeConstraintViolation, required → ProtocolError, enum / minimum / maximum /
  pattern / format → PropertyConstraintViolation, anything else → FormatViolation);
- a CALLRESULT / CALLERROR that answers no CALL we have outstanding is ignored (counted,
  logged once per burst): thousands of them never queue up in the library.

While a CALL from the CSMS is being handled, a CALL of ours waits (at most
:data:`HOLD_S`) until its CALLRESULT is sent: a follow-up StatusNotification never
overtakes the answer it follows (OCPP 1.6 §4.9, §5.2, §5.18).

The one frame logger is :func:`log_frame`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError as SchemaError

from ocpp_client.frame_log import redact_frame

log = logging.getLogger(__name__)
frame_log = logging.getLogger("ocpp_client.frames")

CALL, CALLRESULT, CALLERROR = 2, 3, 4
#: Largest signed 64-bit integer; OCPP integers are 32-bit, the DB's are 64-bit.
INT64_MAX = 2**63 - 1
#: OCPP-J: "The message ID ... maximum of 36 characters" (OCPP-J 1.6 §4.1.1, 2.0.1 §4.1.2).
MAX_UNIQUE_ID = 36

#: Frames up to this many characters are checked on the event loop, longer ones on a thread.
INLINE_FRAME_CHARS = 4096
#: Longest a CALL of ours waits for the answer to the CSMS's CALL being handled, s.
HOLD_S = 5.0

_LEADING_ID = re.compile(r'^\s*\[\s*\d+\s*,\s*"([^"\\]{1,36})"')


def log_frame(direction: str, station_id: str, frame: str) -> None:
    """Log one OCPP-J frame at DEBUG (``direction``: "in" from the CSMS, "out" to it).

    The one place frames are logged, so redaction has one place to go: secret values
    (AuthorizationKey, BasicAuthPassword, password fields) are masked and the frame cut to
    :data:`~ocpp_client.frame_log.MAX_FRAME_CHARS` by :func:`~ocpp_client.frame_log.redact_frame`,
    in linear time, before a record exists."""
    if frame_log.isEnabledFor(logging.DEBUG):
        frame_log.debug("%s %s %s", station_id, "<-" if direction == "in" else "->",
                        redact_frame(frame))


class FrameError(Exception):
    """A frame to be answered with a CALLERROR (neutral ``code``; spelled per version)."""

    def __init__(self, code: str, description: str, unique_id: str = "-1") -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.unique_id = unique_id


class _Bad:
    """A JSON value the parser refused to turn into a Python number."""

    def __init__(self, code: str, text: str) -> None:
        self.code = code
        self.text = text


def _parse_int(text: str) -> Any:
    digits = text.lstrip("-")
    # Checked on the text first: int() of thousands of digits is slow, and over 4300 digits
    # raises ValueError (CPython's int_max_str_digits).
    if len(digits) > 19 or not -INT64_MAX - 1 <= int(text) <= INT64_MAX:
        return _Bad("TypeConstraintViolation", f"integer {text[:24]}… out of range")
    return int(text)


def _parse_float(text: str) -> Any:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Bad("TypeConstraintViolation", f"number {text[:24]}… out of range")
    return value


def _parse_constant(text: str) -> Any:
    return _Bad("FormatViolation", f"{text} is not JSON")


def _check_values(frame: Any, max_depth: int) -> _Bad | None:
    """The first refused value or too-deep container in ``frame`` (iterative walk)."""
    stack: list[tuple[Any, int]] = [(frame, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, _Bad):
            return value
        if isinstance(value, dict | list):
            if depth > max_depth:
                return _Bad("FormatViolation", f"nested deeper than {max_depth} levels")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return None


def _schema_error_code(error: SchemaError) -> str:
    return {
        "type": "TypeConstraintViolation",
        "maxLength": "TypeConstraintViolation",
        "required": "ProtocolError",
        "enum": "PropertyConstraintViolation",
        "minimum": "PropertyConstraintViolation",
        "maximum": "PropertyConstraintViolation",
        "pattern": "PropertyConstraintViolation",
        "format": "PropertyConstraintViolation",
        "minItems": "OccurrenceConstraintViolation",
        "maxItems": "OccurrenceConstraintViolation",
    }.get(str(error.validator), "FormatViolation")


@dataclass(frozen=True)
class FrameRules:
    """What a version adapter tells the guard.

    Args:
        known_actions: every action the OCPP version defines (NotSupported vs NotImplemented).
        routed: the actions this charge point handles (the library's ``route_map`` keys).
        validator: the JSON schema validator of a CALL's payload (None: no schema).
        spelling: the version's spelling of neutral error codes (1.6: FormationViolation).
        max_frame_bytes: longest frame accepted, bytes of UTF-8.
        max_depth: deepest nesting of arrays / objects accepted (the frame array is level 1).
    """

    known_actions: Collection[str]
    routed: Collection[str]
    validator: Callable[[str], Draft4Validator | None]
    spelling: Mapping[str, str] = field(default_factory=dict)
    max_frame_bytes: int = 1024 * 1024
    max_depth: int = 16


class Connection(Protocol):
    """The WebSocket the ``ocpp`` library reads and writes."""

    async def recv(self) -> Any: ...

    async def send(self, message: str) -> None: ...


class FrameGuard:
    """Wraps ``connection`` for the ``ocpp`` library's ChargePoint (see the module docstring).

    Args:
        connection: the open WebSocket.
        rules: the version's rules.
        station_id: for the frame log.
        on_refused: told (with the CALLERROR text) of every frame refused with a
            CALLERROR, e.g. to record an InvalidMessages security event (rate-limited there).
    """

    def __init__(self, connection: Connection, rules: FrameRules, station_id: str = "",
                 on_refused: Callable[[str], object] | None = None) -> None:
        self._connection = connection
        self._on_refused = on_refused
        self.rules = rules
        self.station_id = station_id
        #: Unique id of our outstanding CALL (OCPP-J: one at a time), None when none.
        self._awaiting: str | None = None
        #: CALLRESULT / CALLERROR frames ignored because they answered nothing outstanding.
        self.stray = 0
        #: Frames answered with a CALLERROR by the guard itself.
        self.refused = 0
        #: Unique id of the CSMS's CALL being handled (None when none).
        self._answering: str | None = None
        self._answered = asyncio.Event()
        self._answered.set()

    def __getattr__(self, name: str) -> Any:
        # Everything else (close, remote_address, ...) is the WebSocket's.
        return getattr(self._connection, name)

    async def recv(self) -> Any:
        """The next frame fit for the library; answers or drops the others on the way."""
        while True:
            raw = await self._connection.recv()
            log_frame("in", self.station_id, raw if isinstance(raw, str) else repr(raw[:200]))
            try:
                # A large frame is parsed and schema-checked on a worker thread: a
                # SendLocalList of 1000 entries takes ~27 ms here, longer on a Pi.
                frame = (await asyncio.to_thread(self.screen, raw)
                         if len(raw) > INLINE_FRAME_CHARS else self.screen(raw))
                if frame is None:
                    continue
                if frame[0] in (CALLRESULT, CALLERROR):
                    if self._answer(frame):
                        return raw
                    continue
                self._answering = frame[1]
                self._answered.clear()
                return raw
            except FrameError as error:
                self.refused += 1
                log.warning("refused frame from CSMS (%s: %s): %.120r", error.code,
                            error.description, raw)
                if self._on_refused is not None:
                    self._on_refused(f"{error.code}: {error.description}")
                await self._send_error(error)

    async def send(self, message: str) -> None:
        """Send ``message``; CALLERROR codes spelled per version, our CALL ids remembered."""
        answered = None
        if message.startswith(f"[{CALLERROR},"):
            frame = json.loads(message)
            answered = frame[1]
            code = self.rules.spelling.get(frame[2], frame[2])
            if code != frame[2]:
                frame[2] = code
                message = json.dumps(frame, separators=(",", ":"))
        elif message.startswith(f"[{CALLRESULT},"):
            answered = json.loads(message)[1]
        elif message.startswith(f"[{CALL},"):
            if not self._answered.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._answered.wait(), HOLD_S)
            self._awaiting = json.loads(message)[1]
        log_frame("out", self.station_id, message)
        await self._connection.send(message)
        if answered is not None and answered == self._answering:
            self._answering = None
            self._answered.set()

    async def _send_error(self, error: FrameError) -> None:
        code = self.rules.spelling.get(error.code, error.code)
        await self.send(json.dumps([CALLERROR, error.unique_id, code, error.description, {}],
                                   separators=(",", ":")))

    def screen(self, raw: Any) -> list[Any] | None:
        """Parse and check one frame (no state touched: safe on a worker thread).

        Returns the parsed frame (a CALL fit for the library, or a well-formed answer),
        or None (an answer to ignore). Raises FrameError: answer it with a CALLERROR."""
        if isinstance(raw, bytes):
            raise FrameError("FormatViolation", "binary frame; OCPP-J frames are text")
        unique_id = _leading_id(raw)
        if len(raw) > self.rules.max_frame_bytes // 4 and (
                len(raw.encode("utf-8", "surrogatepass")) > self.rules.max_frame_bytes):
            raise FrameError("FormatViolation",
                             f"frame over {self.rules.max_frame_bytes} bytes", unique_id)
        try:
            frame = json.loads(raw, parse_int=_parse_int, parse_float=_parse_float,
                               parse_constant=_parse_constant)
        except RecursionError:
            raise FrameError("FormatViolation", "nested too deeply", unique_id) from None
        except ValueError:
            raise FrameError("FormatViolation", "not valid JSON", unique_id) from None
        if not isinstance(frame, list) or not frame:
            raise FrameError("ProtocolError", "a frame is a non-empty JSON array", unique_id)
        if len(frame) > 1 and isinstance(frame[1], str) and 0 < len(frame[1]) <= MAX_UNIQUE_ID:
            unique_id = frame[1]
        bad = _check_values(frame, self.rules.max_depth)
        if bad is not None:
            if frame[0] in (CALLRESULT, CALLERROR):
                log.warning("ignored answer from CSMS: %s", bad.text)
                return None
            raise FrameError(bad.code, bad.text, unique_id)
        kind = frame[0]
        if kind in (CALLRESULT, CALLERROR):
            return frame  # matched against our outstanding CALL by the caller
        if kind != CALL:
            # The library's answer to an unknown MessageTypeId, kept.
            raise FrameError("PropertyConstraintViolation",
                             f"MessageTypeId {str(kind)[:20]!r} is not valid", unique_id)
        if len(frame) != 4:
            raise FrameError("ProtocolError", "a CALL has 4 elements", unique_id)
        _, uid, action, payload = frame
        if not isinstance(uid, str) or not uid or len(uid) > MAX_UNIQUE_ID:
            # Answered as "-1": an id we refuse is not echoed.
            raise FrameError("FormatViolation",
                             f"the unique id is a string of 1 to {MAX_UNIQUE_ID} characters")
        if not isinstance(action, str):
            raise FrameError("FormatViolation", "the action is a string", uid)
        if not isinstance(payload, dict):
            raise FrameError("FormatViolation", "the payload is a JSON object", uid)
        if action not in self.rules.routed:
            if action in self.rules.known_actions:
                raise FrameError("NotSupported", "Requested Action is recognized but not "
                                 "supported by the receiver", uid)
            raise FrameError("NotImplemented", "Requested Action is not known by receiver", uid)
        validator = self.rules.validator(action)
        if validator is not None:
            error = next(iter(validator.iter_errors(payload)), None)
            if error is not None:
                raise FrameError(_schema_error_code(error), error.message[:200], uid)
        return frame

    def _answer(self, frame: list[Any]) -> bool:
        uid = frame[1] if len(frame) > 1 else None
        if uid is not None and uid == self._awaiting and (
                (frame[0] == CALLRESULT and len(frame) == 3 and isinstance(frame[2], dict))
                or (frame[0] == CALLERROR and len(frame) in (4, 5) and isinstance(frame[2], str))):
            self._awaiting = None
            return True
        self.stray += 1
        # Logged once per burst: a flood must not flood the journal too.
        if self.stray & (self.stray - 1) == 0:
            log.warning("ignored %d answer(s) from CSMS to no outstanding CALL (latest %.80r)",
                        self.stray, frame)
        return False


def _leading_id(raw: str) -> str:
    """The unique id at the start of a frame that may not parse ("-1" when there is none)."""
    match = _LEADING_ID.match(raw[:100])
    return match.group(1) if match else "-1"
