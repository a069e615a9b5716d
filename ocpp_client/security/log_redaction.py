"""Keep the AuthorizationKey out of log lines written by libraries (issue 13: "secrets
never appear in logs").

The ``websockets`` client logs every opening-handshake header at DEBUG level, the
``Authorization: Basic …`` header (station id and AuthorizationKey, base64) included.
:class:`AuthorizationHeaderFilter` replaces that header's value before any handler sees it;
:func:`redact_websockets_logs` installs it on the logger that creates those records (a
logger's filters only apply to records created on that very logger). The daemon calls it
once at start-up.
"""

from __future__ import annotations

import logging

REDACTED = "<redacted>"
#: Headers whose value is a credential.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})


class AuthorizationHeaderFilter(logging.Filter):
    """Rewrites ``"> %s: %s"`` header records whose header is a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (isinstance(args, tuple) and len(args) == 2 and isinstance(args[0], str)
                and args[0].lower() in SECRET_HEADERS):
            record.args = (args[0], REDACTED)
        return True


def redact_websockets_logs(logger_name: str = "websockets.client") -> None:
    """Install :class:`AuthorizationHeaderFilter` on ``logger_name`` (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, AuthorizationHeaderFilter) for f in logger.filters):
        logger.addFilter(AuthorizationHeaderFilter())
