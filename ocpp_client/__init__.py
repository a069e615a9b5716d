"""OCPP adapters over the ``ocpp`` library: 1.6J now, 2.0.1 next."""
