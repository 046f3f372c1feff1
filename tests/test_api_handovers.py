"""GET /api/handovers and /api/intersections on a hub that drove through a junction."""

from __future__ import annotations

from functools import partial

import pytest

from l4mon.auth import TokenStore, hash_token
from l4mon.clock import ManualClock
from l4mon.runtime import LiveParts, Runtime
from tests.test_api import _get as api_get
from tests.test_intersections import IN_A, OUTSIDE, T0, Drive, make_hub, site

TOKEN = "handover-api-token"


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=OUTSIDE)
    drive.run(3, at=IN_A)
    drive.run(2, at=IN_A, cells={"l5g": None, "lte": "e1"})  # a failure inside ix-a
    drive.run(7, at=IN_A, cells={"l5g": "n2", "lte": "e1"})
    drive.run(3, at=OUTSIDE, cells={"l5g": "n2", "lte": "e2"})  # a success outside
    drive.settle()
    return Runtime(hub=hub, clock=ManualClock(T0 + drive.t), parts=LiveParts(site=site()),
                   tokens=TokenStore([("t", "viewer", hash_token(TOKEN))]))


#: The in-process API client of tests/test_api.py, with this file's token.
_get = partial(api_get, token=TOKEN)


@pytest.mark.parametrize("path", ["/api/handovers", "/api/intersections",
                                  "/api/intersections/ix-a"])
def test_no_token_no_data(runtime: Runtime, path: str) -> None:
    response = _get(runtime, path, token=None)
    assert response.status_code == 401
    assert "ix-a" not in response.text


def test_handovers_newest_first_with_filters(runtime: Runtime) -> None:
    body = _get(runtime, "/api/handovers").json()
    assert [(h["link"], h["kind"], h["intersection"]) for h in body["handovers"]] == [
        ("lte", "success", None), ("l5g", "failure", "ix-a")]
    assert body["counts"] == {"failure": 1, "success": 1}
    failure = body["handovers"][1]
    assert failure["vehicle"] == "v1" and failure["interruption_ms"] >= 2000.0
    assert failure["lat"] == IN_A[0] and failure["lon"] == IN_A[1]
    only = _get(runtime, "/api/handovers", intersection="ix-a").json()["handovers"]
    assert [h["kind"] for h in only] == ["failure"]
    assert [h["link"] for h in _get(runtime, "/api/handovers", in_intersection=False)
            .json()["handovers"]] == ["lte"]
    assert _get(runtime, "/api/handovers", kind="ping_pong").json()["handovers"] == []
    assert len(_get(runtime, "/api/handovers", limit=1).json()["handovers"]) == 1
    late = _get(runtime, "/api/handovers", since=failure["at"] + 0.001).json()["handovers"]
    assert [h["link"] for h in late] == ["lte"]


@pytest.mark.parametrize("params", [{"kind": "bogus"}, {"limit": 0}, {"limit": 10_001},
                                    {"vehicle": "a/b"}, {"since": -1}])
def test_handover_filters_are_validated(runtime: Runtime, params: dict) -> None:
    assert _get(runtime, "/api/handovers", **params).status_code == 422


def test_intersections_list_and_detail(runtime: Runtime) -> None:
    listed = _get(runtime, "/api/intersections").json()
    assert [ix["id"] for ix in listed] == ["ix-a", "ix-b"]
    a = listed[0]
    assert a["name"] == "Alpha junction"
    assert a["links"]["l5g"]["failures"] == 1 and a["links"]["l5g"]["success_rate"] == 0.0
    assert a["links"]["l5g"]["time_down_s"] > 1.5
    assert listed[1]["links"] == {}  # nobody drove through ix-b
    detail = _get(runtime, "/api/intersections/ix-a").json()
    assert detail["links"] == a["links"]
    assert {d["link"] for d in detail["degradations"]} == {"l5g"}
    assert _get(runtime, "/api/intersections/nope").status_code == 404


def test_failovers_both_links_down_then_lte_first() -> None:
    hub = make_hub()
    drive = Drive(hub)
    drive.run(5, at=OUTSIDE)
    drive.run(0.3, at=OUTSIDE, cells={"lte": "e1"})  # l5g silent: lte carries at once
    drive.run(3, at=OUTSIDE, cells={})  # both silent: no usable link
    drive.run(8, at=OUTSIDE, cells={"lte": "e1"})  # lte back first
    drive.run(8, at=OUTSIDE)
    runtime = Runtime(hub=hub, clock=ManualClock(T0 + drive.t), parts=LiveParts(site=site()),
                      tokens=TokenStore([("t", "viewer", hash_token(TOKEN))]))
    events = _get(runtime, "/api/failovers", vehicle="v1").json()["failovers"]
    # Oldest last: l5g failed over to lte at once; then lte failed too and came back itself.
    assert [(e["link"], e["to_link"]) for e in reversed(events)] == [
        ("l5g", "lte"), ("lte", "lte")]
    first, second = reversed(events)
    assert first["failover_s"] == 0.0 and first["both_unusable_s"] == 0.0
    assert second["failover_s"] is None  # lte came back before any other link
    # Both links unusable from lte going stale (1 s of silence) until it is usable again.
    assert 1.5 <= second["both_unusable_s"] <= 3.5
    assert _get(runtime, "/api/failovers", vehicle="nobody").json()["failovers"] == []


def test_after_seq_is_a_cursor_in_the_order_records_became_final(runtime: Runtime) -> None:
    body = _get(runtime, "/api/handovers").json()
    assert body["last_seq"] == 1
    assert [h["seq"] for h in body["handovers"]] == [1, 0]
    newer = _get(runtime, "/api/handovers", after_seq=0).json()["handovers"]
    assert [h["seq"] for h in newer] == [1]
    assert _get(runtime, "/api/handovers", after_seq=1).json()["handovers"] == []
    assert len(_get(runtime, "/api/handovers", after_seq=-1).json()["handovers"]) == 2
    assert [h["seq"] for h in _get(runtime, "/api/handovers", after_seq=-1, before_seq=1)
            .json()["handovers"]] == [0]
