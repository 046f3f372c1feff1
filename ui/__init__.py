"""Operator console assets, served by the hub as static files (no build step)."""
