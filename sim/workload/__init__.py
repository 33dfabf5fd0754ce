"""Connection loads: when attempts arrive and how long connections live."""
