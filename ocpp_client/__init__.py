"""OCPP adapters over the ``ocpp`` library: 1.6J now, 2.0.1 next.

Shared, version-independent parts (this package's modules), each given the protocol
specifics as small parameters:

- :mod:`ocpp_client.link` — connect, BootNotification loop, Heartbeat, backoff, WebSocket
  ping; a version supplies a :class:`~ocpp_client.link.VersionLink`; TLS and extra
  handshake headers plug in through :class:`~ocpp_client.link.LinkSettings`.
- :mod:`ocpp_client.frames` — the frame guard around the WebSocket (hostile frames,
  CALLERROR spelling, stray answers, our CALLs held until the CSMS's CALL is answered),
  and the one frame logger :func:`~ocpp_client.frames.log_frame`.
- :mod:`ocpp_client.queue` + :mod:`ocpp_client.outbox_sender` — the durable outbox and
  its sender (§4.10 retries).
- :mod:`ocpp_client.authorization` (+ ``local_list``, ``auth_cache``, ``id_tag_info``) —
  the authorization policy.
- :mod:`ocpp_client.configuration` — the configuration store (validated, range-checked,
  persisted, case-insensitive names; write-only keys; keys whose change is decided by a
  handler, e.g. SecurityProfile).
- :mod:`ocpp_client.security` — protocol-neutral OCPP security (profiles, AuthorizationKey,
  TLS context, certificate store, charge point certificate, firmware signatures, security
  log); :mod:`ocpp_client.secure_link` puts it around every connect of the link keeper
  (:class:`~ocpp_client.link.ConnectSecurity`), and :mod:`ocpp_client.security_events`
  logs security events and queues the due ones in the outbox (docs/security.md).

Version packages (``v16/``; ``v201/`` next) hold the handlers (``@on`` / ``@after`` on the
library's ChargePoint subclass, given ports), the mapping of session events to CALLs, the
key table, the security-extension port (``v16/security.py``), and
``create_adapter(station, config, db, ssl_context=None, headers=None)`` +
``check_config(config)``, which the daemon picks by ``[ocpp] version``.
"""
