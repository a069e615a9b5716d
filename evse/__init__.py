"""IEC 61851 connector control, the Station, configuration, CLI and daemon."""

__version__ = "0.1.0"
