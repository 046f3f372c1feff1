"""The documentation states facts the code must keep true."""

from __future__ import annotations

from pathlib import Path

from l4mon.config import HubConfig, load_config

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_example_config_lists_the_real_defaults() -> None:
    """docs/hub.example.toml loads, and every value in it is the built-in default."""
    assert load_config(DOCS / "hub.example.toml") == HubConfig()
