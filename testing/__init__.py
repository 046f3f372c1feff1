"""Test support shared by tests/ and bench/: real processes to test l4mon against.

* ``broker``      — a throwaway Mosquitto on a free loopback port
* ``blaster``     — a raw-socket MQTT load publisher in its own process
* ``peak_memory`` — ``python -m l4mon ...`` in a child process that reports its own peak RSS
* ``demo``        — ``l4mon demo`` as a child process, and a headless Chromium page
* ``hub``         — ``l4mon serve`` as a child process against a broker, with an API client

A package of the project (listed in pyproject.toml), so that ``pytest`` and a bench script run
as ``.venv/bin/python bench/NAME.py`` both import it as ``testing.*`` with no ``sys.path``
edits. It imports nothing from tests/ or bench/ and needs no test-only dependency.
"""
