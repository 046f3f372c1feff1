"""Hub configuration: defaults, TOML loading, errors that name the key, command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from l4mon.config import (
    ConfigError,
    HubConfig,
    config_from_dict,
    load_config,
    parse_listen,
    with_overrides,
)
from telemetry.linkstate import Limits

FULL = """\
[mqtt]
url = "mqtts://broker.example:8884"
client = "aiomqtt"
shared_group = "hubs"

[http]
listen = "0.0.0.0:9000"

[ingest]
max_payload_bytes = 4096
max_ahead_s = 30.0
quarantine_capacity = 50
eval_interval_s = 0.5

[links]
window_s = 5.0
stale_after_s = 2.0
recover_after_s = 8.0

[links.degraded]
rtt_p95_ms = 200.0
loss_ratio = 0.05

[links.degraded_clear]
rtt_p95_ms = 150.0
loss_ratio = 0.02

[fleet]
max_vehicles = 20
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    """No file means the documented defaults."""
    cfg = load_config(None)
    assert cfg == HubConfig()
    assert cfg.mqtt.url == "mqtt://127.0.0.1:1883"
    assert cfg.mqtt.client == "gmqtt"
    assert cfg.http.listen == "127.0.0.1:8080"
    assert cfg.ingest.max_payload_bytes == 16_384
    assert (cfg.ingest.max_ahead_s, cfg.ingest.max_age_s) == (3_600.0, 86_400.0)
    assert cfg.links.degraded.rtt_p95_ms == 150.0
    assert cfg.links.stale_after_s == 1.0
    assert cfg.fleet.max_vehicles == 10_000
    assert cfg.mqtt.topics() == ["l4mon/v1/+/vehicle/#", "l4mon/v1/+/rsu/#"]


def test_toml_file_loads(tmp_path: Path) -> None:
    """Every table of a full file lands in the model; unset keys keep their defaults."""
    cfg = load_config(_write(tmp_path, FULL))
    assert cfg.mqtt.url == "mqtts://broker.example:8884"
    assert cfg.mqtt.client == "aiomqtt"
    assert cfg.mqtt.topics() == ["$share/hubs/l4mon/v1/+/vehicle/#", "$share/hubs/l4mon/v1/+/rsu/#"]
    assert cfg.mqtt.client_id == "l4mon-hub"
    assert cfg.http.listen == "0.0.0.0:9000"
    assert cfg.ingest.max_payload_bytes == 4096
    assert cfg.ingest.max_ahead_s == 30.0
    assert cfg.ingest.max_age_s == 86_400.0
    assert cfg.ingest.quarantine_capacity == 50
    assert cfg.ingest.eval_interval_s == 0.5
    assert (cfg.links.window_s, cfg.links.stale_after_s, cfg.links.recover_after_s) == (
        5.0, 2.0, 8.0)
    assert cfg.links.degrade_after_s == 1.0
    assert cfg.links.degraded.rtt_p95_ms == 200.0
    assert cfg.links.degraded.loss_ratio == 0.05
    assert cfg.links.degraded_clear.rtt_p95_ms == 150.0
    assert cfg.links.degraded_clear.loss_ratio == 0.02
    assert cfg.links.down == HubConfig().links.down
    assert cfg.fleet.max_vehicles == 20
    assert cfg.fleet.max_links_per_vehicle == 4


def test_partial_limits_table_keeps_other_defaults(tmp_path: Path) -> None:
    """Overriding one degraded limit keeps the other degraded criteria at their defaults."""
    cfg = load_config(_write(tmp_path, "[links.degraded]\nrtt_p95_ms = 200.0\n"))
    default = HubConfig().links.degraded
    assert cfg.links.degraded == Limits(rtt_p95_ms=200.0, loss_ratio=default.loss_ratio,
                                        rsrp_dbm=default.rsrp_dbm, sinr_db=default.sinr_db)


def test_path_as_string(tmp_path: Path) -> None:
    """A str path works as well as a Path."""
    cfg = load_config(str(_write(tmp_path, '[mqtt]\nurl = "mqtt://h:1"\n')))
    assert cfg.mqtt.url == "mqtt://h:1"


@pytest.mark.parametrize(("text", "key"), [
    ("[mqtt]\nurll = 'mqtt://h'\n", "urll"),
    ("[bogus]\nx = 1\n", "bogus"),
    ("[links]\nstale_after = 2.0\n", "stale_after"),
    ("[links.degraded]\nrtt_p95 = 100.0\n", "rtt_p95"),
    ("[ingest]\nmax_payload = 10\n", "max_payload"),
    ("[fleet]\nmax_vehicle = 10\n", "max_vehicle"),
])
def test_unknown_key_is_named(tmp_path: Path, text: str, key: str) -> None:
    """A typo'd key is an error naming the key, never silently ignored."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=f"unknown field `{key}`") as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("url", [
    "http://broker:1883", "broker:1883", "mqtt://", "mqtt://:1883", "mqtt://h:99999", "",
])
def test_bad_mqtt_url(tmp_path: Path, url: str) -> None:
    """A URL that is not mqtt:// or mqtts:// with a host (and a valid port) is refused."""
    with pytest.raises(ConfigError, match=r"\$\.mqtt"):
        load_config(_write(tmp_path, f'[mqtt]\nurl = "{url}"\n'))


@pytest.mark.parametrize(("data", "words"), [
    ({"mqtt": {"client": "paho"}}, "client"),
    ({"mqtt": {"backoff_initial_s": 5.0, "backoff_max_s": 1.0}}, "backoff"),
    ({"http": {"listen": "localhost"}}, "HOST:PORT"),
    ({"ingest": {"max_payload_bytes": 0}}, "max_payload_bytes"),
    ({"ingest": {"eval_interval_s": 0}}, "eval_interval_s"),
    ({"ingest": {"max_age_s": "long"}}, "max_age_s"),
    ({"links": {"degraded_clear": {"rtt_p95_ms": 200.0}}}, "degraded_clear.rtt_p95_ms"),
    ({"links": {"window_s": 0}}, "window_s"),
    ({"fleet": {"max_vehicles": "many"}}, "max_vehicles"),
])
def test_invalid_values_are_config_errors(data: dict, words: str) -> None:
    """Bad values raise ConfigError (a ValueError) saying what is wrong."""
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        config_from_dict(data)


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    """A missing file and broken TOML are ConfigErrors naming the file."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="cannot read config") as info:
        load_config(missing)
    assert str(missing) in str(info.value)
    broken = _write(tmp_path, "[mqtt\nurl = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_overrides_win_over_file(tmp_path: Path) -> None:
    """Command-line broker, client and listen address replace the file's, the rest stays."""
    cfg = load_config(_write(tmp_path, FULL))
    out = with_overrides(cfg, broker="mqtt://other:1999", http="127.0.0.1:7000",
                         mqtt_client="gmqtt")
    assert out.mqtt.url == "mqtt://other:1999"
    assert out.mqtt.client == "gmqtt"
    assert out.http.listen == "127.0.0.1:7000"
    assert out.mqtt.shared_group == "hubs"
    assert out.links == cfg.links
    assert out.ingest == cfg.ingest
    assert cfg.mqtt.url == "mqtts://broker.example:8884"  # the original is untouched
    assert with_overrides(cfg) == cfg


def test_overrides_are_validated() -> None:
    """A bad value given on the command line is refused like one in the file."""
    with pytest.raises(ConfigError, match="not an MQTT URL"):
        with_overrides(HubConfig(), broker="tcp://h:1883")
    with pytest.raises(ConfigError, match="HOST:PORT"):
        with_overrides(HubConfig(), http="8080")


@pytest.mark.parametrize(("listen", "expected"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("localhost:65535", ("localhost", 65_535)),
    ("[::1]:9000", ("::1", 9000)),
])
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    """HOST:PORT splits at the last colon; IPv6 brackets are removed."""
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", [
    "localhost", ":8080", "host:", "host:http", "host:65536", "host:-1", "host:80 ", "",
])
def test_parse_listen_errors(listen: str) -> None:
    """Missing host or port, or a port that is not 0-65535, is a ValueError quoting the input."""
    with pytest.raises(ValueError, match="expected HOST:PORT") as info:
        parse_listen(listen)
    assert repr(listen) in str(info.value)


@pytest.mark.parametrize(("mqtt", "words"), [
    ({"cert_file": "hub.crt", "key_file": "hub.key"}, "command connection needs one of its own"),
    ({"command_client_id": "l4mon-hub"}, "command_client_id must differ"),
    ({"command_cert_file": "c.crt"}, "command_cert_file and command_key_file go together"),
])
def test_the_command_connection_needs_an_identity_of_its_own(mqtt: dict, words: str) -> None:
    """A broker that names a client by its certificate would make a command connection on
    the hub's certificate the hub's own session, each taking it from the other: refused at
    load, as is the hub's own client id or half a certificate."""
    with pytest.raises(ConfigError, match=words):
        config_from_dict({"mqtt": mqtt})


def test_the_command_connection_takes_its_own_certificate_or_none() -> None:
    """Its own certificate, or off: both load; the command client id is the hub's + -commands."""
    from l4mon.commands.connection import command_settings

    own = config_from_dict({"mqtt": {"cert_file": "hub.crt", "key_file": "hub.key",
                                     "command_cert_file": "c.crt", "command_key_file": "c.key"}})
    derived = command_settings(own.mqtt)
    assert (derived.client_id, derived.cert_file, derived.key_file) == (
        "l4mon-hub-commands", "c.crt", "c.key")
    assert derived.topics() == ["l4mon/v1/+/vehicle/+/command_ack"]
    off = config_from_dict({"mqtt": {"cert_file": "hub.crt", "key_file": "hub.key",
                                     "command_connection": False}})
    assert not off.mqtt.command_connection
