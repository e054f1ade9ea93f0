"""The sandbox list in Chromium: every live sandbox (creating, running, paused) however
many newer ones have ended, page after page, and the newest ended ones on request."""

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.async_api import Page, Route, expect

from llmsafespace.devstack import Stack

from .conftest import PageProblems
from .test_console import create_sandbox, sign_in

pytestmark = pytest.mark.stack

BATCH = 2  # created at once: with one more kept live, the test stack's quota of 3 live ones


@dataclass
class User:
    """A fresh plain user: the list holds their sandboxes and nobody else's."""

    key: str
    api: httpx.AsyncClient


@pytest.fixture
async def fresh_user(stack: Stack, api: httpx.AsyncClient) -> AsyncIterator[User]:
    created = await api.post("/users", json={"username": f"list-{secrets.token_hex(4)}"})
    assert created.status_code == 201, created.text
    key: str = created.json()["apiKey"]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as client:
        yield User(key, client)


async def ended_sandboxes(api: httpx.AsyncClient, count: int) -> None:
    """`count` sandboxes created and terminated, a batch at a time."""
    for first in range(0, count, BATCH):
        batch = range(min(BATCH, count - first))
        made = await asyncio.gather(*(create_sandbox(api) for _ in batch))
        ended = await asyncio.gather(*(api.delete(f"/sandboxes/{sandbox}") for sandbox in made))
        assert all(response.status_code == 200 for response in ended), ended


async def test_a_running_sandbox_is_listed_behind_more_than_a_page_of_newer_ended_ones(
    stack, page: tuple[Page, PageProblems], fresh_user: User
) -> None:
    browser, problems = page
    oldest = await create_sandbox(fresh_user.api)
    try:
        await ended_sandboxes(fresh_user.api, 101)  # GET /sandboxes answers 100 at most
        await sign_in(browser, stack, fresh_user.key)
        rows = browser.locator("#sandboxes tbody tr")
        await expect(rows).to_have_count(1)
        await expect(browser.locator(f"#sandboxes tr[data-sandbox='{oldest}']")).to_contain_text(
            "running"
        )
        # ended ones on request: the newest 100, and the page says that is not all
        await browser.get_by_label("Show ended").check()
        await expect(browser.locator("#ended-note")).to_have_text(
            "Showing the newest 100 of 101 ended sandboxes."
        )
        await expect(rows).to_have_count(101)
        await expect(rows.first).to_contain_text("terminated")
        await expect(rows.last).to_have_attribute("data-sandbox", oldest)  # newest first
        assert problems == []
    finally:
        await fresh_user.api.delete(f"/sandboxes/{oldest}")


async def smaller_pages(route: Route) -> None:
    """The page's list requests with pages of 2 instead of 100: more than a page of live
    sandboxes without the hundred and one a user's quota would not allow."""
    await route.continue_(url=route.request.url.replace("limit=100", "limit=2"))


async def test_live_sandboxes_are_listed_from_every_page(
    stack, page: tuple[Page, PageProblems], fresh_user: User
) -> None:
    browser, problems = page
    made = await asyncio.gather(*(create_sandbox(fresh_user.api) for _ in range(3)))
    try:
        await browser.route(re.compile(r"/api/v1/sandboxes\?"), smaller_pages)
        await sign_in(browser, stack, fresh_user.key)
        rows = browser.locator("#sandboxes tbody tr")
        await expect(rows).to_have_count(3)
        for sandbox_id in made:
            listed = browser.locator(f"#sandboxes tr[data-sandbox='{sandbox_id}']")
            await expect(listed).to_contain_text("running")
        assert problems == []
    finally:
        await asyncio.gather(*(fresh_user.api.delete(f"/sandboxes/{s}") for s in made))
