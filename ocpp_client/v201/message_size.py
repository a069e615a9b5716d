"""Size of an OCPP-J message as it travels (OCPP 2.0.1 Part 4 §4 "RPC framework").

ItemsPerMessage / BytesPerMessage (DeviceDataCtrlr) count the whole CALL frame
``[2,"<messageId>","<Action>",{payload}]``. The ``ocpp`` library writes it with compact
separators and ASCII escapes, and message ids are UUID4 strings (36 characters): this module
measures exactly that.
"""

from __future__ import annotations

import json
from typing import Any

#: Length of the message ids the ``ocpp`` library generates (``str(uuid.uuid4())``).
MESSAGE_ID_LENGTH = 36


def call_frame_size(action: str, payload: Any) -> int:
    """Bytes of the CALL frame carrying ``payload`` for ``action`` (UTF-8 = ASCII here)."""
    return len(json.dumps([2, "x" * MESSAGE_ID_LENGTH, action, payload],
                          separators=(",", ":")))


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (its share inside a frame)."""
    return len(json.dumps(value, separators=(",", ":")))
