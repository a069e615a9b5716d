"""Logging of OCPP-J frames with secrets masked at the source, in linear time.

The ``ocpp`` library logs every frame it sends and receives (INFO), every CALLERROR it gets
(WARNING) and the CALL a handler failed on, through the ``logger`` its ChargePoint is given.
:class:`FrameLogger` is that logger: before a record exists, each frame or message object
among the arguments is

- **redacted**: parsed as JSON and the values of secret configuration keys
  (``AuthorizationKey``, OCPP 1.6 Security Whitepaper; ``BasicAuthPassword``, OCPP 2.0.1)
  in ChangeConfiguration / GetConfiguration (1.6) and SetVariables / GetVariables (2.0.1)
  payloads and of fields named like passwords or keys replaced by
  :data:`~evse.logging_setup.MASK`; a frame that does not parse and names a secret key is
  not logged at all;
- **cut** to :data:`MAX_FRAME_CHARS`, so a 0.5 MB frame or a CALLERROR with a 30 000-letter
  description costs one bounded copy, never seconds of regular expressions under the GIL.

Nothing is done (not even ``str()``) unless the level is enabled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from typing import Any

from evse.logging_setup import MASK, SECRET_CONFIG_KEYS, cut

#: Longest frame text put into a log record, characters.
MAX_FRAME_CHARS = 2000

#: Field names (compared lower-case, without ``_``) whose values are secrets.
_SECRET_FIELDS = frozenset({"password", "basicauthpassword", "authorizationkey", "privatekey",
                            "secret", "passwd"})
_CONFIG_KEYS = frozenset(SECRET_CONFIG_KEYS)


def _mask(node: Any) -> Any:
    """``node`` (parsed JSON) with every secret value replaced by MASK."""
    if isinstance(node, list):
        return [_mask(item) for item in node]
    if not isinstance(node, dict):
        return node
    variable = node.get("variable")
    # OCPP 1.6 KeyValue / ChangeConfiguration {key, value}; OCPP 2.0.1 SetVariableData /
    # GetVariableResult {variable: {name}, attributeValue}.
    key = node.get("key")
    name = variable.get("name") if isinstance(variable, dict) else None
    secret_entry = (isinstance(key, str) and key in _CONFIG_KEYS) or (
        isinstance(name, str) and name in _CONFIG_KEYS)
    out: dict[str, Any] = {}
    for name, value in node.items():
        if (secret_entry and name in ("value", "attributeValue")) or (
                isinstance(name, str) and name.replace("_", "").lower() in _SECRET_FIELDS):
            out[name] = MASK
        else:
            out[name] = _mask(value)
    return out


def redact_frame(frame: str) -> str:
    """An OCPP-J frame (JSON text) fit for a log: secrets masked, cut to MAX_FRAME_CHARS.

    A frame that is not JSON is cut; if it names a secret key it is replaced by a note."""
    try:
        parsed = json.loads(frame)
    except (ValueError, RecursionError):
        if any(key in frame for key in _CONFIG_KEYS):
            return f"<unparsable frame of {len(frame)} characters naming a secret key>"
        return cut(frame, MAX_FRAME_CHARS)
    return cut(json.dumps(_mask(parsed), ensure_ascii=False), MAX_FRAME_CHARS)


def loggable(arg: Any) -> Any:
    """A log argument as :class:`FrameLogger` passes it on: frames (str / bytes) and
    ``ocpp.messages`` objects (``to_json()``) redacted and cut; numbers and the like kept."""
    if isinstance(arg, (int, float, bool)) or arg is None:
        return arg
    try:
        if isinstance(arg, bytes):
            arg = arg.decode("utf-8", "replace")
        elif not isinstance(arg, str):
            to_json = getattr(arg, "to_json", None)
            arg = to_json() if callable(to_json) else str(arg)
        return redact_frame(arg)
    except Exception:  # logging must never break the link it logs
        return f"<{type(arg).__name__} not loggable>"


class FrameLogger(logging.LoggerAdapter[logging.Logger]):
    """The logger handed to ``ocpp``'s ChargePoint (its ``logger=`` argument): every
    argument is made :func:`loggable` before the record is created."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]
                ) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            self.logger.log(level, msg, *(loggable(a) for a in args), **kwargs)


__all__ = ["MAX_FRAME_CHARS", "FrameLogger", "loggable", "redact_frame"]
