"""IEC 61851 connector control, the Station, configuration, CLI and daemon."""
