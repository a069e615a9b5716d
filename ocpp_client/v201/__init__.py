"""OCPP 2.0.1: the version adapter over the shared parts of :mod:`ocpp_client`, and the
device model (components, variables, reports).

The daemon picks this package by ``[ocpp] version = "2.0.1"`` and calls :func:`check_config`
and :func:`create_adapter`.
"""

from ocpp_client.v201.adapter import check_config, create_adapter

__all__ = ["check_config", "create_adapter"]
