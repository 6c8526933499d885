"""NeonClient: retries, deadline, errors, operations — and the fake held to the published API."""

from __future__ import annotations

import json
import random
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from components.db.neon import NeonBranchProvider
from components.neon_api import (
    DEFAULT_API_URL, NeonApiError, NeonClient, NeonDeadlineExceeded, NeonOperationFailed,
)
from components.neon_sweep import sweep
from neon_fake import FakeNeon, OpenApiContract, reference_spec


class FakeTime:
    """A clock that only moves when the client sleeps: retry schedules run instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def scripted(responses, seen=None):
    """A MockTransport answering from a list of responses/exceptions, in order."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler)


def client(transport, t: FakeTime, **kw) -> NeonClient:
    return NeonClient("key", "https://neon.test/api/v2", transport=transport, sleep=t.sleep,
                      clock=t.clock, rng=random.Random(7), **kw)


def error(status, code="", message="boom", headers=None, request_id=None):
    body = {"code": code, "message": message}
    if request_id:
        body["request_id"] = request_id
    return httpx.Response(status, json=body, headers=headers or {})


OK = httpx.Response(200, json={"ok": True})


# ---- configuration --------------------------------------------------------------------


def test_missing_api_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("NEON_API_KEY", raising=False)
    with pytest.raises(ValueError, match="NEON_API_KEY: not set"):
        NeonClient()


def test_base_url_comes_from_argument_then_env_then_default(monkeypatch):
    monkeypatch.setenv("NEON_API_KEY", "k")
    monkeypatch.delenv("NEON_API_URL", raising=False)
    assert NeonClient().base_url == DEFAULT_API_URL
    monkeypatch.setenv("NEON_API_URL", "http://127.0.0.1:9/api/v2/")
    assert NeonClient().base_url == "http://127.0.0.1:9/api/v2"
    assert NeonClient(base_url="https://proxy.example/api/v2").base_url == "https://proxy.example/api/v2"
    monkeypatch.setenv("NEON_API_URL", "console.neon.tech")
    with pytest.raises(ValueError, match="NEON_API_URL: 'console.neon.tech' is not an http"):
        NeonClient()


def test_sends_bearer_key_and_a_request_id():
    seen: list[httpx.Request] = []
    t = FakeTime()
    assert client(scripted([OK], seen), t).request("GET", "/projects/p") == {"ok": True}
    assert seen[0].headers["authorization"] == "Bearer key"
    assert len(seen[0].headers["x-request-id"]) == 36
    assert str(seen[0].url) == "https://neon.test/api/v2/projects/p"


# ---- retries ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [423, 429, 503])
def test_retries_locked_rate_limited_and_unavailable(status):
    t = FakeTime()
    c = client(scripted([error(status), error(status), error(status), OK]), t)
    assert c.request("POST", "/projects/p/branches", json={}) == {"ok": True}
    assert c.request_count == 4
    # Exponential with equal jitter: each sleep lies in [step/2, step] for step = 0.2 * 2**n.
    for n, slept in enumerate(t.sleeps):
        step = 0.2 * 2 ** n
        assert step / 2 <= slept <= step
    assert t.sleeps[2] > t.sleeps[0]


def test_backoff_is_capped():
    t = FakeTime()
    c = client(scripted([error(423)] * 12 + [OK]), t, deadline=1000)
    c.request("GET", "/x")
    assert max(t.sleeps) <= 8.0 and t.sleeps[-1] >= 4.0


def test_honours_retry_after_seconds_and_http_date():
    t = FakeTime()
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    c = client(scripted([error(429, headers={"Retry-After": "3"}),
                         error(429, headers={"Retry-After": later}), OK]), t, deadline=100)
    c.request("GET", "/x")
    assert t.sleeps[0] == 3.0
    assert 28 <= t.sleeps[1] <= 30


def test_deadline_bounds_all_retries():
    t = FakeTime()
    c = client(scripted([error(423, request_id="rid-last")] * 100), t, deadline=5)
    with pytest.raises(NeonDeadlineExceeded) as caught:
        c.request("PATCH", "/projects/p/endpoints/ep-1", json={})
    assert sum(t.sleeps) <= 5
    assert caught.value.status == 423 and caught.value.request_id == "rid-last"
    assert "deadline 5s" in str(caught.value)


def test_retry_after_beyond_deadline_fails_at_once():
    t = FakeTime()
    c = client(scripted([error(429, headers={"Retry-After": "600"})]), t, deadline=60)
    with pytest.raises(NeonDeadlineExceeded, match="HTTP 429"):
        c.request("GET", "/x")
    assert t.sleeps == []


def test_other_errors_are_not_retried_and_carry_status_code_message_and_request_id():
    t = FakeTime()
    c = client(scripted([error(409, "BRANCHES_LIMIT_EXCEEDED", "branch limit reached", request_id="rid-1")]), t)
    with pytest.raises(NeonApiError) as caught:
        c.request("POST", "/projects/p/branches", json={})
    e = caught.value
    assert (e.status, e.code, e.message, e.request_id) == (409, "BRANCHES_LIMIT_EXCEEDED", "branch limit reached", "rid-1")
    assert "POST /projects/p/branches" in str(e) and "rid-1" in str(e)
    assert c.request_count == 1


def test_request_id_falls_back_to_the_response_header():
    t = FakeTime()
    c = client(scripted([httpx.Response(500, text="upstream down", headers={"X-Neon-Ret-Request-Id": "hdr-1"})]), t)
    with pytest.raises(NeonApiError) as caught:
        c.request("GET", "/x")
    assert caught.value.request_id == "hdr-1" and caught.value.message == "upstream down"


def test_connection_errors_retry_gets_and_unsent_posts_but_not_maybe_sent_posts():
    t = FakeTime()
    refused = httpx.ConnectError("refused")
    c = client(scripted([refused, httpx.ReadTimeout("slow"), OK]), t)
    assert c.request("GET", "/x") == {"ok": True}
    c = client(scripted([refused, OK]), t)
    assert c.request("POST", "/x", json={}) == {"ok": True}
    c = client(scripted([httpx.ReadTimeout("slow")]), t)
    with pytest.raises(NeonApiError, match="may already have taken effect") as caught:
        c.request("POST", "/x", json={})
    assert caught.value.status is None


def test_tolerated_status_is_returned_not_raised():
    t = FakeTime()
    c = client(scripted([error(404)]), t)
    assert c.request("DELETE", "/x", ok_statuses=(404,)) == {"_status": 404}


# ---- operations ---------------------------------------------------------------------------


def op(status, action="create_timeline", op_id="op-1"):
    return {"id": op_id, "action": action, "status": status, "branch_id": "br-1", "project_id": "p"}


def test_waits_for_operations_in_order_with_few_requests():
    t = FakeTime()
    seen: list[httpx.Request] = []
    replies = [httpx.Response(200, json={"operation": op("running")}),
               httpx.Response(200, json={"operation": op("finished")}),
               httpx.Response(200, json={"operation": op("finished", "start_compute", "op-2")})]
    c = client(scripted(replies, seen), t)
    c.wait_for_operations("p", [op("running"), op("scheduling", "start_compute", "op-2"), op("finished", op_id="op-0")])
    # While op-1 runs, op-2 (queued behind it) is not polled.
    assert [r.url.path.rsplit("/", 1)[-1] for r in seen] == ["op-1", "op-1", "op-2"]


@pytest.mark.parametrize("status", ["failed", "error"])
def test_failed_operation_is_reported_clearly(status):
    t = FakeTime()
    failed = {**op(status, "start_compute"), "error": "compute did not start"}
    c = client(scripted([httpx.Response(200, json={"operation": failed})]), t)
    with pytest.raises(NeonOperationFailed, match=f"start_compute op-1 on branch br-1 ended {status}: compute did not start"):
        c.wait_for_operations("p", [op("running", "start_compute")])


def test_operation_wait_has_a_timeout():
    t = FakeTime()
    c = client(scripted([httpx.Response(200, json={"operation": op("running")})] * 100), t)
    with pytest.raises(NeonDeadlineExceeded, match="create_timeline op-1"):
        c.wait_for_operations("p", [op("running")], timeout=3)
    assert sum(t.sleeps) <= 3


def test_pagination_follows_the_cursor(monkeypatch):
    with FakeNeon(seed=3) as fake:
        fake.add_project("p")
        for n in range(6):
            fake.add_branch("p", f"b{n}")
        with NeonClient("test-key", fake.url) as c:
            branches, _ = c.list_branches("p", page_size=2)
    assert sorted(b["name"] for b in branches) == ["b0", "b1", "b2", "b3", "b4", "b5", "main"]
    assert sum(1 for e in fake.exchanges if e.path == "/projects/p/branches") == 4


# ---- the fake and the client against the published description --------------------------


def test_fake_and_client_follow_the_published_api(monkeypatch):
    contract = OpenApiContract(reference_spec(__file__))
    with FakeNeon(op_seconds=0.02, locked_rate=0.2, burst_rate=0.05, seed=11, gone_delete_status=204) as fake:
        main = fake.add_project("shiny-wind-028834")
        fake.add_branch("shiny-wind-028834", "hand-made", parent_id=main["id"])
        monkeypatch.setenv("NEON_API_KEY", "test-key")
        monkeypatch.setenv("NEON_API_URL", fake.url)
        provider = NeonBranchProvider(poll_initial=0.01, poll_max=0.02, backoff_base=0.01)
        props = {"project_id": "shiny-wind-028834", "branch_name": "pr-3", "role": "neondb_owner",
                 "database": "app", "ttl_seconds": 3600, "min_cu": 0.25, "max_cu": 1,
                 "suspend_timeout_seconds": 300}
        created = provider.create(props)
        provider.create(props)  # adoption path: list endpoints/roles/databases, reset password
        provider.read(created.id, created.outs)
        news = {**props, "ttl_seconds": 7200, "max_cu": 2}
        provider.update(created.id, created.outs, news)
        schema_only = provider.create({**props, "branch_name": "schema", "schema_only": True, "role": "app"})
        with NeonClient() as c:
            sweep(c, "shiny-wind-028834", set(), apply=True, out=open("/dev/null", "w"))
            c.request("GET", "/projects/shiny-wind-028834/branches/br-none-000000", ok_statuses=(404,))
        provider.delete(schema_only.id, schema_only.outs)
        with NeonClient() as c:
            assert c.delete_branch("shiny-wind-028834", schema_only.id) is False  # already gone: 204
        with pytest.raises(NeonApiError):
            NeonClient("wrong-key", fake.url, deadline=0).request("GET", "/projects/shiny-wind-028834/branches")
    statuses = {e.status for e in fake.exchanges}
    assert {200, 201, 204, 404, 401, 423, 429} <= statuses, statuses
    problems = [p for e in fake.exchanges for p in contract.errors(e)]
    assert problems == []


def test_contract_checker_catches_a_bad_body():
    contract = OpenApiContract(reference_spec(__file__))
    from neon_fake import Exchange
    bad = Exchange("POST", "/projects/p/branches", {}, {"branch": {"name": 5}}, 201, {"branch": {}}, {})
    problems = contract.errors(bad)
    assert any("request body" in p for p in problems) and any("201 response" in p for p in problems)
    unknown = Exchange("GET", "/projects/p/nothing", {}, None, 200, {}, {})
    with pytest.raises(AssertionError, match="not in the published API description"):
        contract.errors(unknown)
    assert json.dumps(contract.spec["components"]["schemas"]["BranchUpdateRequest"]).count('"null"') == 1
