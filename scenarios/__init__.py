"""Scenarios: site and scenario files, radio-condition models, message generators and replay.

Everything here produces the same bytes a real fleet would put on the wire, driven by a clock
the caller passes in, so a scenario can run live in the hub's loop or as fast as a CPU allows.
"""
