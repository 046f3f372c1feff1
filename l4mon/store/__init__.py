"""The process's store: alerts and their transitions, duty, tokens, the pair's leader lock,
meta and commands, in SQLite or PostgreSQL (``journal``), written through the ``keeper`` so
an outage keeps the order of what the hub decided."""
