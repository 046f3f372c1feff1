"""Takeover alerts: declarative rules (``rules``) over fleet facts (``facts``), evaluated by the
``engine`` with the clock it is given, every transition written to the store (l4mon/store)
before anyone is told about it."""
