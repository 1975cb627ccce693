"""The console in a real browser (headless Chromium): pages load against a ledger with known calls
and show its numbers, sign-in is scoped as the API is, the cookie is HttpOnly and SameSite, the key
stays out of the page and the browser's storage, and nothing logs an error to the console."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console import fleet

PAGES = ["overview", "usage", "budgets", "agents", "sessions", "routes", "guardrails", "feedback"]


class Tab:
    """A page in its own browser context, with every console error and uncaught exception kept."""

    def __init__(self, browser: Any, url: str) -> None:
        self.url = url
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def sign_in(self, key: str) -> None:
        answer = self.context.request.post(self.url + "/ui/login", data={"key": key})
        assert answer.status == 204

    def show(self, hash_path: str) -> Any:
        page_name = hash_path.split("?")[0]
        self.page.goto(f"{self.url}/ui#/{hash_path}")
        self.page.wait_for_selector(f"body[data-ready='{page_name}']", timeout=10_000)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, console_gateway: Any) -> Iterator[Tab]:
    opened = Tab(browser, console_gateway.url)
    yield opened
    opened.close()


def stat(page: Any, label: str) -> str:
    return str(page.locator(".stat", has_text=label).locator(".stat-value").inner_text())


def test_signing_in_through_the_form_shows_the_fleets_numbers(tab: Tab) -> None:
    page = tab.page
    page.goto(tab.url + "/ui")
    page.get_by_label("Gateway key").fill(fleet.ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("body[data-ready='overview']", timeout=10_000)
    assert stat(page, "Calls this month") == "9"
    assert stat(page, "Spend this month") == "$0.02"
    assert stat(page, "Errors this month") == "1"
    assert stat(page, "p95 latency") == "700 ms"
    top = page.locator("section", has_text="Top agents").locator("tbody tr").all_inner_texts()
    assert [row.split("\t")[0] for row in top] == ["ops-bot", "planner", "crawler"]
    cookie = next(c for c in tab.context.cookies() if c["name"] == "agentgw_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert fleet.ADMIN_KEY not in cookie["value"] and fleet.ADMIN_KEY not in page.content()
    storage = page.evaluate("() => [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage)]")
    assert storage == ["", "{}", "{}"]  # the page's script cannot read the session, and keeps nothing
    assert tab.errors == []


def test_every_page_loads_without_errors(tab: Tab) -> None:
    tab.sign_in(fleet.ADMIN_KEY)
    for name in PAGES:
        page = tab.show(name)
        assert page.locator("h1").first.inner_text(), name
        assert page.locator("[role=alert]").count() == 0, (name, page.locator("[role=alert]").all_inner_texts())
        assert page.locator("nav a[aria-current]").inner_text().lower() == name
    assert tab.errors == []


def test_an_agents_versions_side_by_side(tab: Tab) -> None:
    tab.sign_in(fleet.ADMIN_KEY)
    page = tab.show("agents")
    page.locator("tr", has_text="crawler").get_by_role("link", name="versions").click()
    page.wait_for_function("location.hash.includes('agent=crawler')")
    page.wait_for_selector("body[data-ready='agents']")
    rows = page.locator("table").first.locator("tbody tr").all_inner_texts()
    assert [row.split("\t")[1] for row in rows] == ["crawl-v2", "crawl-v1"]  # newest first
    side = page.get_by_role("region", name="Versions side by side")
    assert "crawl-v1 and crawl-v2 side by side" in side.inner_text()
    error_rate = side.locator("tr", has_text="Error rate").all_inner_texts()[0].split("\t")
    assert error_rate[1:] == ["0.0%", "50%", "50%"]  # crawl-v2 failed one call of two
    assert tab.errors == []


def test_the_usage_explorer_groups_and_offers_csv(tab: Tab) -> None:
    tab.sign_in(fleet.LEAD_KEY)
    page = tab.show("usage?group_by=agent&from=7d")
    rows = page.locator("table tbody tr").all_inner_texts()
    assert [row.split("\t")[0] for row in rows] == ["planner", "crawler"]  # by cost, the lead's team only
    assert "$0.006" in rows[0] or "$0.0060" in rows[0]
    assert page.locator("svg.chart").count() == 1
    csv = page.get_by_role("link", name="Download CSV").get_attribute("href")
    answer = tab.context.request.get(tab.url + csv)
    assert answer.status == 200 and answer.text().splitlines()[0].startswith("agent,requests")
    page.get_by_role("checkbox", name="operation").check()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function("location.hash.includes('operation')")
    page.wait_for_selector("body[data-ready='usage']")
    assert "messages" in page.locator("table tbody").inner_text()
    assert tab.errors == []


def test_an_agent_key_sees_only_its_own_calls(tab: Tab) -> None:
    tab.sign_in(fleet.CRAWLER_KEY)
    page = tab.show("overview")
    assert stat(page, "Calls this month") == "4"
    assert page.locator("#who").inner_text().startswith("crawler-key")
    page = tab.show("usage?group_by=agent,team")
    assert [row.split("\t")[0] for row in page.locator("table tbody tr").all_inner_texts()] == ["crawler"]
    page = tab.show("sessions")
    assert page.locator("table tbody").inner_text().count("sess-") == 1
    page = tab.show("routes")
    assert "Not for this key" in page.locator("[role=alert]").inner_text()
    assert tab.errors == [] or all("403" in e for e in tab.errors)


def test_a_team_admin_sees_its_team(tab: Tab) -> None:
    tab.sign_in(fleet.LEAD_KEY)
    page = tab.show("agents")
    listed = page.locator("table:not(.compare) tbody tr").all_inner_texts()
    assert sorted(row.split("\t")[1] for row in listed) == ["crawler", "planner"]
    compare = page.locator("table.compare")
    assert "Cost per task" in compare.inner_text() and "$0.004" in compare.inner_text()
    assert tab.errors == []


def test_session_replay_shows_each_call_and_flags_one(tab: Tab, console_gateway: Any) -> None:
    tab.sign_in(fleet.LEAD_KEY)
    page = tab.show("sessions?id=sess-crawl")
    cards = page.locator("article.call")
    assert cards.count() == 4
    page.locator(".timeline a").nth(3).click()  # jumps to the call, staying on the replay
    assert page.evaluate("document.activeElement.id") == "call-3" and "sess-crawl" in page.url
    assert "responses" in cards.nth(1).inner_text() and "pii redact" in cards.nth(1).inner_text()
    assert "$0.001" in cards.nth(0).inner_text()
    cards.nth(0).locator("summary").click()
    message = cards.nth(0).locator(".messages pre")
    assert message.inner_text() == "find <b>it</b>" and message.locator("b").count() == 0  # text, never HTML
    cards.nth(2).get_by_role("button", name="Flag this call").click()
    expect(cards.nth(2).get_by_role("status")).to_have_text("Flagged.")
    forged = page.evaluate(
        """async () => (await fetch('/ui/api/feedback', {method: 'POST', headers: {'content-type': 'application/json'},
            body: JSON.stringify({request_id: 'x', label: 'y'})})).status"""
    )
    assert forged == 403  # a POST without the page's CSRF token is refused
    exported = console_gateway.http(fleet.ADMIN_KEY).get("/v1/feedback/export").text
    assert f"req_{2:032x}" in exported
