"""RFID / identification readers on serial ports."""
