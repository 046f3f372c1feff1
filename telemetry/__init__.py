"""Telemetry: the wire model, decoding and per-link statistics.

The flow is ``topics`` (where a message came from) → ``decode`` (what it says, or why it was
quarantined) → ``link`` / ``vehicle`` / ``fleet`` (what we now believe about each vehicle).
"""
