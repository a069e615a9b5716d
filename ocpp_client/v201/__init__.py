"""OCPP 2.0.1: the device model (components, variables, reports) and, later, the adapter."""
