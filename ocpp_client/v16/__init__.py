"""OCPP 1.6J: the version adapter over the shared parts of :mod:`ocpp_client`.

The daemon picks this package by ``[ocpp] version = "1.6"`` and calls :func:`check_config`
and :func:`create_adapter`.
"""

from ocpp_client.v16.adapter import check_config, create_adapter

__all__ = ["check_config", "create_adapter"]
