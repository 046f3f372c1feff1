"""deploy/prometheus/l4mon-rules.yml: valid for Prometheus (promtool), and about metrics the
hub really exposes (an alert on a misspelt metric is silent forever)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from l4mon.assembly import build_runtime
from l4mon.auth import hash_token
from l4mon.clock import ManualClock
from l4mon.config import config_from_dict
from l4mon.faces.api.app import create_app
from l4mon.ingest._gmqtt import self_check
from l4mon.ingest.buffer import BatchBuffer
from l4mon.ingest.mqtt import MqttSettings, MqttStatus
from tests.parts import require_part

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "l4mon-rules.yml"
TOKEN = "ops-test-token"


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` (Debian package prometheus, installed by scripts/test.sh)."""
    require_part("promtool")
    promtool = str(shutil.which("promtool"))
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _scrape(tmp_path: Path) -> dict[str, set[tuple[tuple[str, str], ...]]]:
    """The sample names of a live hub's /metrics, each with the label sets it carries."""
    config = config_from_dict({
        "alerts": {"journal": str(tmp_path / "journal.sqlite")},
        "auth": {"tokens": [{"name": "prom", "role": "viewer", "sha256": hash_token(TOKEN)}]},
    })
    # what `serve` wires: the MQTT source's buffer and status, after its start-up self-check
    status = MqttStatus()
    asyncio.run(self_check(MqttSettings(), status))
    runtime = build_runtime(config, clock=ManualClock(1_700_000_000.0), buffer=BatchBuffer(),
                            mqtt=status)

    async def scrape() -> str:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            response.raise_for_status()
            return response.text

    try:
        text = asyncio.run(scrape())
    finally:
        runtime.hub.alerts.journal.close()  # type: ignore[union-attr]
    samples: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).add(tuple(sorted(sample.labels.items())))
    return samples


def test_every_metric_in_the_rules_is_exposed(tmp_path: Path) -> None:
    """Each l4mon_* name in an expression is a sample name on /metrics, and each label
    matcher on it names a label value the hub really emits."""
    samples = _scrape(tmp_path)
    text = RULES.read_text()
    used = set(re.findall(r"\bl4mon_[a-z0-9_]+", text))
    assert len(used) >= 10, used  # the regex still finds them
    missing = sorted(name for name in used if name not in samples)
    assert not missing, f"not exposed by the hub: {missing}"
    for name, label, value in re.findall(r'\b(l4mon_[a-z0-9_]+)\{(\w+)="([^"]*)"\}', text):
        assert any((label, value) in labels for labels in samples[name]), (name, label, value)


def test_operations_doc_covers_every_section_and_metric(tmp_path: Path) -> None:
    """docs/operations.md explains every config section and every metric the hub exposes."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    example = (ROOT / "docs" / "hub.example.toml").read_text()
    sections = re.findall(r"^\[([a-z_.]+)\]", example, flags=re.MULTILINE)
    assert len(sections) >= 10
    assert [s for s in sections if f"`[{s}]`" not in doc] == []
    exposed = {name for name in _scrape(tmp_path) if name.startswith("l4mon_")}
    assert [name for name in sorted(exposed) if f"`{name}`" not in doc] == []
