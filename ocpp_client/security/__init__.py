"""Protocol-neutral OCPP security (OCPP 1.6 "Improved security for OCPP 1.6-J" whitepaper
edition 3; OCPP 2.0.1 Part 2 functional block A and M): security profiles and the
AuthorizationKey, the TLS context for the CSMS link, the certificate store, the charge
point key + CSR life cycle, signed firmware verification and security events.

One concept per module; the v16 (and later v201) adapters map these to their messages.
"""
