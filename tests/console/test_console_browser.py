"""The console end to end in headless Chromium against Nexus served on 127.0.0.1.

Sign in with an admin token, see health, watch events published over HTTP arrive through
Socket.IO, leave and come back (resume without gap or repeat), filter, browse the data.
"""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from playwright.async_api import Locator, Page, expect

from azora_nexus.auth.tokens import Role
from tests.console.console_helpers import (
    ADMIN,
    ARTIFACTS,
    WAIT_MS,
    Watched,
    created,
    publish,
    register,
    token_for,
)

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow


def feed_row(page: Page, event_id: str) -> Locator:
    return page.locator(f'#feed-rows tr[data-event-id="{event_id}"]')


async def feed_ids(page: Page) -> list[str]:
    """The ids in the feed, top (newest) to bottom."""
    ids: list[str] = await page.locator("#feed-rows tr").evaluate_all(
        "rows => rows.map(row => row.dataset.eventId)"
    )
    return ids


async def sign_in(page: Page, base_url: str, token: str) -> None:
    await page.goto(f"{base_url}/console")
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def until_subscribed(page: Page, resumed_after: str | None = None) -> None:
    """Wait for the subscribe ack: events published from now on reach the page."""
    status = page.locator("#filter-status")
    text = f"(resumed after {resumed_after})" if resumed_after else "Subscribed to"
    await expect(status).to_contain_text(text, timeout=WAIT_MS)
    await expect(page.locator("#socket-status")).to_have_text("live")


async def test_signed_in_console_shows_health_and_live_events_and_resumes(
    tab: Watched, base_url: str, http: AsyncClient
) -> None:
    page = tab.page
    await sign_in(page, base_url, token_for(Role.ADMIN))
    await expect(page.locator("#health-status")).to_have_text("ok", timeout=WAIT_MS)
    checks = page.locator("#health-checks li")
    await expect(checks).to_have_count(3)
    await expect(page.locator("#who-name")).to_have_text("admin (admin)")
    await until_subscribed(page)

    first = await publish(http, "system.alert", {"message": "disk almost full"})
    row = feed_row(page, first)
    await expect(row).to_have_count(1, timeout=WAIT_MS)
    await expect(row).to_contain_text("system.alert")
    await expect(row).to_contain_text('{"message":"disk almost full"}')
    await expect(page.locator("#event-total")).to_have_text("1")
    await expect(page.locator("#event-rate")).to_have_text("0.1", timeout=WAIT_MS)

    # Away from the page (same tab, so the same sessionStorage) while two events happen.
    await page.goto("about:blank")
    second = await publish(http, "education.lesson.completed", {"lesson": "1"}, user_id="u-1")
    third = await publish(http, "system.alert", {"message": "disk full"})
    await page.goto(f"{base_url}/console")
    await until_subscribed(page, resumed_after=first)
    await expect(feed_row(page, third)).to_have_count(1, timeout=WAIT_MS)
    assert await feed_ids(page) == [third, second, first]
    await expect(feed_row(page, second)).to_contain_text("u-1")

    # A reload resumes after the newest id and repeats nothing; live events still arrive.
    await page.reload()
    await until_subscribed(page, resumed_after=third)
    fourth = await publish(http, "finance.mining.reward", {"amount": "1.50"})
    await expect(feed_row(page, fourth)).to_have_count(1, timeout=WAIT_MS)
    assert await feed_ids(page) == [fourth, third, second, first]
    await expect(page.locator("#last-event-id")).to_have_text(fourth)

    await expect(page.locator("#event-total")).to_have_text("1")  # counted since the reload

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "console-feed.png", full_page=True)


async def test_filters_choose_which_events_arrive(
    tab: Watched, base_url: str, http: AsyncClient
) -> None:
    page = tab.page
    await sign_in(page, base_url, token_for(Role.ADMIN))
    await until_subscribed(page)
    await page.get_by_label("system").uncheck()
    await page.get_by_label("finance").uncheck()
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator("#filter-status")).to_have_text(
        "Subscribed to education.*, marketplace.*.", timeout=WAIT_MS
    )
    hidden = await publish(http, "system.alert", {"message": "not for this filter"})
    shown = await publish(http, "education.course.enrolled", {"courseId": "c-1"})
    await expect(feed_row(page, shown)).to_have_count(1, timeout=WAIT_MS)
    # Delivery is in id order: had the alert been sent, it would be there already.
    await expect(feed_row(page, hidden)).to_have_count(0)

    types = page.get_by_label("More types or domain.* patterns")
    await types.fill("bogus.type")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator("#filter-status")).to_have_text(
        "Unknown event type or pattern: bogus.type"
    )
    await types.fill("system.alert")
    await page.get_by_role("button", name="Apply filters").click()
    # The newly chosen type replays from the last id seen: nothing older than `shown` comes.
    await until_subscribed(page, resumed_after=shown)
    alert = await publish(http, "system.alert", {"message": "now wanted"})
    await expect(feed_row(page, alert)).to_have_count(1, timeout=WAIT_MS)
    assert await feed_ids(page) == [alert, shown]


async def test_sign_in_refuses_tokens_that_are_not_admin(
    tab: Watched, base_url: str, http: AsyncClient
) -> None:
    page = tab.page
    await sign_in(page, base_url, token_for(Role.USER, "someone"))
    error = page.locator("#sign-in-error")
    await expect(error).to_have_text("Sign-in refused: This is not an admin token.")
    await expect(page.locator("#console")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "console-sign-in.png")
    await page.get_by_label("Admin token").fill("not-a-jwt")
    await page.get_by_role("button", name="Sign in").click()
    await expect(error).to_contain_text("Sign-in refused: ")
    await expect(error).not_to_contain_text("admin token")
    assert await page.evaluate("sessionStorage.length") == 0
    # Signing out forgets the token: a reload shows the sign-in form again.
    await page.get_by_label("Admin token").fill(token_for(Role.ADMIN))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#console")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await page.reload()
    await expect(page.locator("#sign-in")).to_be_visible()
    assert (await http.get("/health")).status_code == 200


async def test_browser_lists_users_wallets_and_courses_read_only(
    tab: Watched, base_url: str, http: AsyncClient
) -> None:
    ada, ada_auth = await register(http, "ada")
    await register(http, "grace")
    wallet = created(await http.post("/api/wallets", json={"currency": "USD"}, headers=ada_auth))
    lessons = [{"title": "Counting coins", "content": "one, two"}]
    course = {"title": "Money 101", "description": "Basics", "lessons": lessons}
    created(await http.post("/api/courses", json=course, headers=ADMIN))
    for _ in range(2):  # a miss then a hit: the cache tile moves off 0%
        assert (await http.get(f"/api/users/{ada['id']}", headers=ADMIN)).status_code == 200

    page = tab.page
    await sign_in(page, base_url, token_for(Role.ADMIN))
    users = page.locator("#browse-rows tr")
    await expect(users).to_have_count(2, timeout=WAIT_MS)
    await expect(users.first).to_contain_text("ada@example.com")
    await expect(page.locator("#cache-hit-rate")).not_to_have_text("0.0%", timeout=WAIT_MS)
    await expect(page.locator("#cache-hit-rate")).to_have_text("50.0%")

    await page.get_by_role("button", name="Profile of ada").click()
    await expect(page.locator("#details-body")).to_contain_text('"username": "ada"')

    await page.get_by_role("button", name="Wallets of ada").click()
    await expect(page.get_by_role("button", name="Wallets")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(page.get_by_label("Owner user id")).to_have_value(ada["id"])
    wallets = page.locator("#browse-rows tr")
    await expect(wallets).to_have_count(1)
    await expect(wallets.first).to_have_attribute("data-id", wallet["id"])
    await expect(wallets.first).to_contain_text("USD")
    await expect(wallets.first).to_contain_text("0.00")

    await page.get_by_role("button", name="Courses").click()
    await expect(page.locator("#browse-rows tr")).to_have_count(1)
    await page.get_by_role("button", name="Lessons of Money 101").click()
    await expect(page.locator("#details-body")).to_contain_text('"title": "Counting coins"')
    await expect(page.locator("#browse-status")).to_have_text("Courses: 1 shown.")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "console-browse.png", full_page=True)


async def test_a_refused_filter_is_not_kept_and_a_reload_comes_back_live(
    tab: Watched, base_url: str, http: AsyncClient
) -> None:
    page = tab.page
    await sign_in(page, base_url, token_for(Role.ADMIN))
    await until_subscribed(page)
    await page.get_by_label("More types or domain.* patterns").fill("bogus.type")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator("#filter-status")).to_have_text(
        "Unknown event type or pattern: bogus.type"
    )
    await expect(page.locator("#socket-status")).to_have_text("live")  # the old filter stays
    # Saved and applied again on load, the refused filter used to leave "connecting…" forever.
    await page.reload()
    await until_subscribed(page)
    await expect(page.get_by_label("More types or domain.* patterns")).to_have_value("")
    alert = await publish(http, "system.alert", {"message": "still live"})
    await expect(feed_row(page, alert)).to_have_count(1, timeout=WAIT_MS)


async def test_the_icon_is_served_and_the_feed_cells_stay_on_one_line(
    tab: Watched, base_url: str, http: AsyncClient
) -> None:
    page = tab.page
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    icon = await http.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"

    await page.set_viewport_size({"width": 700, "height": 900})
    await sign_in(page, base_url, token_for(Role.ADMIN))
    await until_subscribed(page)
    alert = await publish(http, "system.alert", {"message": "narrow window"}, user_id="u-42")
    row = feed_row(page, alert)
    await expect(row).to_have_count(1, timeout=WAIT_MS)
    for column in (1, 4, 6):  # time, user, id
        cell = row.locator(f"td:nth-child({column})")
        wraps: str = await cell.evaluate("td => getComputedStyle(td).whiteSpace")
        assert wraps == "nowrap", (column, wraps)
    assert missing == []
