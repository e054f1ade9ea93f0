"""A real browser on the web console: Debian's Chromium driven by Playwright (its own
browser download is never used), against the suite's embedded stack. A failing test
leaves a screenshot of the page in tests/console/artifacts/."""

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from llmsafespace.devstack import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


def console_url(stack: Stack) -> str:
    return stack.api_url.removesuffix("/api/v1") + "/console/"


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
async def user_key(stack: Stack) -> str:
    """A plain user's API key (its own sandboxes and audit trail, nobody else's)."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers) as admin:
        created = await admin.post("/users", json={"username": f"web-{secrets.token_hex(4)}"})
    assert created.status_code == 201, created.text
    key: str = created.json()["apiKey"]
    return key


@pytest.fixture
async def user_api(stack: Stack, user_key: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {user_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        yield api


class PageProblems(list[str]):
    """Uncaught page errors, Content-Security-Policy violations and requests to anywhere
    but the gateway seen so far (failed requests are console errors too, and expected
    where a test sends bad input)."""


@pytest.fixture
async def page(
    request: pytest.FixtureRequest, browser: Browser, stack: Stack
) -> AsyncIterator[tuple[Page, PageProblems]]:
    context: BrowserContext = await browser.new_context(
        accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    opened = await context.new_page()
    problems = PageProblems()
    origin = console_url(stack).removesuffix("/console/")
    own = (origin, origin.replace("http", "ws", 1), "data:", "blob:", "about:")

    def elsewhere(url: str) -> None:
        if not url.startswith(own):
            problems.append(f"request elsewhere: {url}")

    opened.on("request", lambda sent: elsewhere(sent.url))
    opened.on("websocket", lambda socket: elsewhere(socket.url))
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    try:
        yield opened, problems
    finally:
        if request.node.stash.get(FAILED, False):
            ARTIFACTS.mkdir(exist_ok=True)
            await opened.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
        await context.close()
