"""Bus energy meters: Modbus RTU/TCP (model profiles as data) and CAN (IVT-S)."""
