"""One sandbox's page in Chromium: pause, resume and terminate a paused one; Markdown and
JSON results; the file browser's path box after a directory fails to open."""

import secrets

import httpx
import pytest
from playwright.async_api import Page, expect

from .conftest import PageProblems, console_url
from .test_console import create_sandbox, sign_in

pytestmark = pytest.mark.stack

POLL_SECONDS = 30  # the page reads the sandbox's status every few seconds


async def test_a_sandbox_is_paused_resumed_and_terminated_while_paused_from_its_page(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    browser, problems = page
    sandbox_id = await create_sandbox(user_api)
    try:
        await sign_in(browser, stack, user_key)
        await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
        status = browser.locator("#sandbox-status")
        run = browser.get_by_role("button", name="Run", exact=True)
        await expect(status).to_have_text("running")
        await browser.locator(f"button[data-pause='{sandbox_id}']").click()
        await expect(status).to_have_text("paused")
        assert (await user_api.get(f"/sandboxes/{sandbox_id}")).json()["status"] == "paused"
        await expect(browser.locator(".notice")).to_have_text("This sandbox is paused.")
        await expect(run).to_have_count(0)
        await expect(browser.locator("#terminal")).to_have_count(0)

        # the list counts it among the live ones, and it can be terminated from there
        await browser.get_by_role("link", name="Sandboxes").first.click()
        listed = browser.locator(f"#sandboxes tr[data-sandbox='{sandbox_id}']")
        await expect(listed).to_contain_text("paused")
        await expect(listed.locator(f"button[data-terminate='{sandbox_id}']")).to_be_visible()

        await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
        await browser.locator(f"button[data-resume='{sandbox_id}']").click()
        await expect(status).to_have_text("running")
        await browser.locator("textarea[name=code]").fill("print(6 * 7)")
        await run.click()
        await expect(browser.locator("#cell-output pre.stdout")).to_have_text("42\n")

        # paused elsewhere: the page's next poll sees it; then terminated while paused
        paused = await user_api.post(f"/sandboxes/{sandbox_id}/pause")
        assert paused.status_code == 200, paused.text
        await expect(status).to_have_text("paused", timeout=POLL_SECONDS * 1000)
        terminate = browser.locator(f"button[data-terminate='{sandbox_id}']")
        await terminate.click()
        await terminate.click()  # the second click confirms
        await expect(status).to_have_text("terminated")
        await expect(browser.locator(".notice")).to_have_text("This sandbox is terminated.")
        await expect(browser.locator(f"button[data-resume='{sandbox_id}']")).to_have_count(0)
        await expect(terminate).to_have_count(0)
        assert (await user_api.get(f"/sandboxes/{sandbox_id}")).json()["status"] == "terminated"
        assert problems == []
    finally:
        await user_api.delete(f"/sandboxes/{sandbox_id}")


NOTES = (
    "# Notes\n\nSome **bold**, *slanted* and `code` <img src=x onerror=alert(1)>\n\n- one\n- two"
)
RICH = (
    "class Notes:\n"
    "    def _repr_markdown_(self):\n"
    f"        return {NOTES!r}\n"
    "class Data:\n"
    "    def _repr_json_(self):\n"
    '        return {"a": 1, "b": [True, None]}\n'
    "display(Notes())\n"
    "Data()"
)


async def test_a_cell_shows_markdown_safely_and_json_pretty_printed_not_their_repr(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    browser, problems = page
    sandbox_id = await create_sandbox(user_api)
    try:
        await sign_in(browser, stack, user_key)
        await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
        await browser.locator("textarea[name=code]").fill(RICH)
        await browser.get_by_role("button", name="Run", exact=True).click()
        output = browser.locator("#cell-output")
        await expect(output.locator(".summary")).to_contain_text("completed")
        notes = output.locator(".markdown")
        await expect(notes.locator("h1")).to_have_text("Notes")
        await expect(notes.locator("strong")).to_have_text("bold")
        await expect(notes.locator("em")).to_have_text("slanted")
        await expect(notes.locator("code")).to_have_text("code")
        await expect(notes.locator("li")).to_have_text(["one", "two"])
        await expect(notes.locator("p")).to_contain_text("<img src=x onerror=alert(1)>")
        await expect(output.locator("img")).to_have_count(0)  # the tag stays text
        await expect(output.locator("pre.json")).to_have_text(
            '{\n  "a": 1,\n  "b": [\n    true,\n    null\n  ]\n}'
        )
        await expect(output).not_to_contain_text("object at 0x")  # neither repr
        assert problems == []
    finally:
        await user_api.delete(f"/sandboxes/{sandbox_id}")


async def test_a_directory_that_fails_to_open_leaves_the_path_box_at_the_listed_one(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    browser, problems = page
    sandbox_id = await create_sandbox(user_api)
    try:
        await sign_in(browser, stack, user_key)
        await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
        where = browser.locator("input[name=path]")
        await expect(browser.locator("#files tbody tr")).not_to_have_count(0)  # listed
        await expect(where).to_have_value("/workspace")
        await where.fill("/workspace/missing")
        await browser.get_by_role("button", name="Open", exact=True).click()
        await expect(browser.locator("section:has(#files) .error")).to_be_visible()
        await expect(where).to_have_value("/workspace")
        # an upload goes where the box says
        content = secrets.token_hex(8)
        await browser.locator("input[name=upload]").set_input_files(
            files=[{"name": "here.txt", "mimeType": "text/plain", "buffer": content.encode()}]
        )
        await expect(browser.locator("#files tr[data-file='here.txt']")).to_be_visible()
        stored = await user_api.get(f"/sandboxes/{sandbox_id}/files/workspace/here.txt")
        assert stored.text == content
        assert problems == []
    finally:
        await user_api.delete(f"/sandboxes/{sandbox_id}")
