"""HTTP API: thin handlers that read the hub's state through ``views``."""
