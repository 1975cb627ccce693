"""The console over HTTP: sign-in and its cookie, CSRF, scoping of /ui/api/* as of /v1/*, the page's
headers and files, and the new read endpoints' numbers over a ledger with known calls."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.console import fleet
from tests.gateway_harness import Gateway


def signed_in(gateway: Any, key: str) -> httpx.Client:
    client = gateway.http(None)
    answer = client.post("/ui/login", json={"key": key}, headers={"origin": gateway.url})
    assert answer.status_code == 204, answer.text
    return client


def csrf_of(client: httpx.Client) -> str:
    page = client.get("/ui").text
    match = re.search(r'name="agentgw-csrf" content="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_sign_in_sets_a_session_cookie_that_holds_no_key(console_gateway: Any) -> None:
    client = console_gateway.http(None)
    answer = client.post("/ui/login", json={"key": fleet.CRAWLER_KEY}, headers={"origin": console_gateway.url})
    assert answer.status_code == 204
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert fleet.CRAWLER_KEY not in cookie
    page = client.get("/ui")
    assert page.status_code == 200 and 'name="agentgw-csrf"' in page.text
    assert fleet.CRAWLER_KEY not in page.text and "crawler-key" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"


def test_a_wrong_key_is_refused_without_echoing_it(console_gateway: Any) -> None:
    client = console_gateway.http(None)
    answer = client.post("/ui/login", json={"key": "not-a-real-key-12345"})
    assert answer.status_code == 401 and "not-a-real-key-12345" not in answer.text
    assert "set-cookie" not in answer.headers
    assert 'id="signin"' in client.get("/ui").text  # the sign-in page
    assert client.get("/ui/api/usage").status_code == 401


def test_cross_origin_sign_in_is_refused(console_gateway: Any) -> None:
    client = console_gateway.http(None)
    answer = client.post("/ui/login", json={"key": fleet.ADMIN_KEY}, headers={"origin": "https://evil.example"})
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


@pytest.mark.parametrize(
    ("key", "who"), [(fleet.ADMIN_KEY, "admin"), (fleet.LEAD_KEY, "lead"), (fleet.CRAWLER_KEY, "crawler")]
)
def test_the_console_sees_what_the_key_sees(console_gateway: Any, key: str, who: str) -> None:
    client = signed_in(console_gateway, key)
    mine = client.get("/ui/api/usage", params={"group_by": "agent"}).json()
    api = console_gateway.http(key).get("/v1/usage", params={"group_by": "agent"}).json()
    assert mine["data"] == api["data"]
    calls, cost = fleet.TOTALS[who]
    assert mine["totals"]["requests"] == calls and mine["totals"]["cost_usd"] == pytest.approx(cost)
    agents = {row["agent"] for row in mine["data"]}
    assert (
        agents
        == {"admin": {"crawler", "planner", "ops-bot"}, "lead": {"crawler", "planner"}, "crawler": {"crawler"}}[who]
    )


def test_an_agent_key_may_not_look_beyond_its_calls(console_gateway: Any) -> None:
    client = signed_in(console_gateway, fleet.CRAWLER_KEY)
    assert client.get("/ui/api/usage", params={"agent": "planner"}).status_code == 403
    assert client.get("/ui/api/sessions/sess-plan").status_code == 404
    assert client.get("/ui/api/routes").status_code == 403
    found = client.get("/ui/api/sessions").json()["data"]
    assert [row["session"] for row in found] == ["sess-crawl"]


def test_feedback_needs_the_csrf_token_and_the_same_origin(console_gateway: Any) -> None:
    client = signed_in(console_gateway, fleet.LEAD_KEY)
    body = {"request_id": f"req_{0:032x}", "label": "bad_answer"}
    assert client.post("/ui/api/feedback", json=body).status_code == 403
    assert client.post("/ui/api/feedback", json=body, headers={"x-csrf-token": "forged"}).status_code == 403
    token = csrf_of(client)
    evil = {"x-csrf-token": token, "origin": "https://evil.example"}
    assert client.post("/ui/api/feedback", json=body, headers=evil).status_code == 403
    saved = client.post("/ui/api/feedback", json=body, headers={"x-csrf-token": token, "origin": console_gateway.url})
    assert saved.status_code == 201, saved.text
    exported = client.get("/ui/api/feedback/export").text
    assert '"label": "bad_answer"' in exported.replace('":"', '": "') or "bad_answer" in exported


def test_signing_out_ends_the_session(console_gateway: Any) -> None:
    client = signed_in(console_gateway, fleet.ADMIN_KEY)
    token = csrf_of(client)
    old_cookie = client.cookies.get("agentgw_console")
    assert client.post("/ui/logout", headers={"x-csrf-token": token}).status_code == 204
    replay = console_gateway.http(None)
    replay.cookies.set("agentgw_console", old_cookie, path="/ui")
    assert replay.get("/ui/api/usage").status_code == 401


def test_a_rotated_key_ends_its_sessions(tmp_path: Any) -> None:
    fleet.write(tmp_path / "agentgw.db")
    gateway = Gateway(fleet.config(), tmp_path).start()
    try:
        client = signed_in(gateway, fleet.CRAWLER_KEY)
        assert client.get("/ui/api/usage").status_code == 200
        config = fleet.config()
        config["keys"][2]["key"] = "a-brand-new-crawler-key"
        gateway.write_config(config)
        from gateway.config_file import load_config
        from gateway.runtime import build_runtime

        runtime = gateway.app.state.runtime
        gateway.app.state.runtime = build_runtime(load_config(gateway.config_path), runtime.services)
        assert client.get("/ui/api/usage").status_code == 401
    finally:
        gateway.stop()


def test_the_files_are_versioned_compressed_and_local(console_gateway: Any) -> None:
    client = signed_in(console_gateway, fleet.ADMIN_KEY)
    page = client.get("/ui").text
    assets = re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page)
    assert any(a.endswith("/app.js") for a in assets) and any(a.endswith(".css") for a in assets)
    assert "http://" not in page and "https://" not in page
    script = client.get(assets[-1], headers={"accept-encoding": "gzip"})
    assert script.status_code == 200 and script.headers["content-encoding"] == "gzip"
    assert "immutable" in script.headers["cache-control"]
    assert client.get(assets[-1], headers={"if-none-match": script.headers["etag"]}).status_code == 304
    stale = re.sub(r"/ui/static/[^/]+/", "/ui/static/000000000000/", assets[-1])
    assert client.get(stale).status_code == 404
    assert client.get(assets[-1].rsplit("/", 1)[0] + "/index.html").status_code == 404


def test_overview_adds_up_the_fleet(console_gateway: Any) -> None:
    data = console_gateway.http(fleet.LEAD_KEY).get("/v1/overview").json()
    assert data["today"]["requests"] == 7 and data["today"]["cost_usd"] == pytest.approx(0.010)
    assert data["month"]["requests"] == 7 and data["month"]["errors"] == 1
    assert [row["agent"] for row in data["top_agents"]] == ["planner", "crawler"]
    assert [row["task"] for row in data["top_tasks"]] == ["T-2", "T-1"]
    assert data["latency_24h"]["calls"] == 6 and data["latency_24h"]["latency_p95_ms"] == 700.0
    assert console_gateway.http(fleet.LEAD_KEY).get("/v1/overview", params={"from": "7d"}).status_code == 400


def test_agents_with_cost_per_task_and_operations(console_gateway: Any) -> None:
    rows = console_gateway.http(fleet.ADMIN_KEY).get("/v1/agents").json()["data"]
    assert [r["agent"] for r in rows] == ["ops-bot", "planner", "crawler"]
    crawler = rows[2]
    assert crawler["requests"] == 4 and crawler["errors"] == 1 and crawler["error_rate"] == 0.25
    assert crawler["tasks"] == 1 and crawler["cost_per_task_usd"] == pytest.approx(0.004)
    assert crawler["operations"] == {"chat": 3, "responses": 1}
    assert crawler["latency_p50_ms"] == 200.0 and crawler["latency_p95_ms"] == 400.0  # answered calls only
    assert console_gateway.http(fleet.CRAWLER_KEY).get("/v1/agents", params={"team": "ops"}).status_code == 403


def test_session_search_and_replay_show_the_operation(console_gateway: Any) -> None:
    http = console_gateway.http(fleet.ADMIN_KEY)
    by_task = http.get("/v1/sessions", params={"task": "T-2"}).json()["data"]
    assert [(r["session"], r["calls"], r["agent"]) for r in by_task] == [("sess-plan", 3, "planner")]
    assert [r["session"] for r in http.get("/v1/sessions", params={"prefix": "sess-c"}).json()["data"]] == [
        "sess-crawl"
    ]
    failed = http.get("/v1/sessions", params={"failed": "true"}).json()["data"]
    assert [r["session"] for r in failed] == ["sess-crawl"]
    assert [r["session"] for r in http.get("/v1/sessions").json()["data"]] == ["sess-ops", "sess-plan", "sess-crawl"]
    calls = http.get("/v1/sessions/sess-crawl").json()["calls"]
    assert [c["operation"] for c in calls] == ["chat", "responses", "chat", "chat"]
    assert http.get("/v1/sessions", params={"limit": "0"}).status_code == 400


def test_latency_percentiles_and_guardrail_triggers(console_gateway: Any) -> None:
    http = console_gateway.http(fleet.ADMIN_KEY)
    by_team = {r["team"]: r for r in http.get("/v1/usage/latency", params={"group_by": "team"}).json()["data"]}
    assert by_team["ops"]["latency_p99_ms"] == 60.0 and by_team["research"]["calls"] == 6
    assert by_team["research"]["ttft_p50_ms"] == 200.0
    assert http.get("/v1/usage/latency", params={"group_by": "day"}).status_code == 400
    triggers = http.get("/v1/guardrails/triggers", params={"bucket": "hour"}).json()
    assert triggers["totals"] == [{"guardrail": "pii", "calls": 1, "matches": 2, "actions": {"redact": 1}}]
    assert [(r["agent"], r["calls"]) for r in triggers["by_agent"]] == [("crawler", 1)]
    assert http.get("/v1/guardrails/triggers", params={"bucket": "week"}).status_code == 400
    ops = console_gateway.http(fleet.LEAD_KEY).get("/v1/guardrails/triggers", params={"team": "ops"})
    assert ops.status_code == 403


def test_the_console_can_be_turned_off(tmp_path: Any) -> None:
    config = fleet.config()
    config["console"] = {"enabled": False}
    gateway = Gateway(config, tmp_path).start()
    try:
        assert gateway.http(None).get("/ui").status_code == 404
        assert gateway.http(fleet.ADMIN_KEY).get("/v1/agents").status_code == 200
    finally:
        gateway.stop()
