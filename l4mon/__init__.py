"""l4mon: remote monitoring of Level 4 shuttles' links, alerts, replay and reports."""

__version__ = "0.1.0"
