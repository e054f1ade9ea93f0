"""The web console at /console in Chromium: sign in, sandboxes, a code cell, files, the
audit trail, keys, warm pools; the terminal and plots once the server offers them."""

import re
import secrets
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from llmsafespace.devstack import Stack

from .conftest import PageProblems, console_url

pytestmark = pytest.mark.stack


async def sign_in(page: Page, stack: Stack, key: str) -> None:
    await page.goto(console_url(stack))
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-out")).to_be_visible()


async def create_sandbox(api: httpx.AsyncClient, runtime: str = "python:3.11") -> str:
    created = await api.post("/sandboxes", json={"timeout": 600, "runtime": runtime})
    assert created.status_code == 201, created.text
    identifier: str = created.json()["id"]
    return identifier


async def test_the_console_is_served_with_a_strict_content_security_policy(stack) -> None:
    async with httpx.AsyncClient(base_url=console_url(stack)) as client:
        bare = await client.get(console_url(stack).removesuffix("/"))
        page = await client.get("")
        module = await client.get("js/app.js")
        vendored = await client.get("vendor/xterm.js")
        missing = await client.get("js/nothing.js")
    assert bare.status_code in (301, 302, 307, 308)
    assert bare.headers["location"].endswith("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    host = httpx.URL(console_url(stack)).netloc.decode()
    assert directives["connect-src"] == f"'self' ws://{host} wss://{host}"
    assert directives["frame-ancestors"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # no inline script
    assert "http://" not in page.text
    assert "https://" not in page.text  # nothing from a CDN
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]
    assert vendored.status_code == 200
    assert "content-security-policy" in vendored.headers
    assert missing.status_code == 404


async def test_a_bad_api_key_shows_the_apis_own_message(
    stack, page: tuple[Page, PageProblems]
) -> None:
    browser, problems = page
    async with httpx.AsyncClient() as client:
        refused = await client.post(
            stack.api_url + "/auth/token", headers={"Authorization": "Bearer lsp_nottherightkey"}
        )
    assert refused.status_code == 401
    await browser.goto(console_url(stack))
    await browser.get_by_label("API key").fill("lsp_nottherightkey")
    await browser.get_by_role("button", name="Sign in").click()
    await expect(browser.locator(".signin .error")).to_have_text(refused.json()["error"]["message"])
    assert await browser.evaluate("sessionStorage.length + localStorage.length") == 0
    assert problems == []


async def test_an_unknown_sandbox_shows_the_apis_not_found_message(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    browser, problems = page
    missing = await user_api.get("/sandboxes/sb-doesnotexist0000")
    assert missing.status_code == 404
    await sign_in(browser, stack, user_key)
    await browser.goto(console_url(stack) + "#/sandboxes/sb-doesnotexist0000")
    await expect(browser.locator("#main .error")).to_have_text(missing.json()["error"]["message"])
    assert problems == []


async def test_sign_in_create_run_a_cell_move_files_see_the_audit_and_terminate(
    stack,
    page: tuple[Page, PageProblems],
    user_key: str,
    user_api: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    browser, problems = page
    await sign_in(browser, stack, user_key)
    stored = await browser.evaluate("JSON.stringify({...sessionStorage, ...localStorage})")
    assert user_key not in stored  # only the short-lived token is kept
    assert "token" in stored

    # create with a profile: the page then shows the new sandbox
    profiles = (await user_api.get("/profiles")).json()["profiles"]
    await browser.get_by_label("Profile").select_option(profiles[0]["id"])
    await browser.get_by_role("button", name="Create sandbox").click()
    await expect(browser.locator("#sandbox-status")).to_have_text("running", timeout=60_000)
    sandbox_id = browser.url.rsplit("/", 1)[1]
    sandbox = (await user_api.get(f"/sandboxes/{sandbox_id}")).json()
    assert sandbox["status"] == "running"
    assert sandbox["resources"] == profiles[0]["resources"]

    # a code cell streams its output; state survives between runs
    code = browser.locator("textarea[name=code]")
    await code.fill("x = 6 * 7")
    await browser.get_by_role("button", name="Run", exact=True).click()
    await expect(browser.locator("#cell-output .summary")).to_contain_text("completed")
    await code.fill("import sys\nprint('answer', x)\nprint('oops', file=sys.stderr)")
    await code.press("Control+Enter")
    await expect(browser.locator("#cell-output .summary")).to_contain_text("completed")
    await expect(browser.locator("#cell-output pre.stdout")).to_have_text("answer 42\n")
    await expect(browser.locator("#cell-output pre.stderr")).to_have_text("oops\n")
    await code.fill("1 / 0")
    await code.press("Control+Enter")
    await expect(browser.locator("#cell-output .summary")).to_contain_text("failed")
    await expect(browser.locator("#cell-output")).to_contain_text("ZeroDivisionError")
    # a shell command, and a long run cancelled from the page
    await browser.locator("select[name=mode]").select_option("command")
    await code.fill("echo shell-$((1 + 2)); exit 3")
    await code.press("Control+Enter")
    await expect(browser.locator("#cell-output .summary")).to_contain_text("exit 3")
    await expect(browser.locator("#cell-output pre.stdout")).to_have_text("shell-3\n")
    await code.fill("echo started; sleep 60")
    await code.press("Control+Enter")
    await expect(browser.locator("#cell-output pre.stdout")).to_have_text("started\n")
    await browser.get_by_role("button", name="Cancel").click()
    await expect(browser.locator("#cell-output .summary")).to_contain_text("cancelled")
    await browser.locator("select[name=mode]").select_option("code")

    # upload a file into /workspace, see it listed, download it back
    content = "héllo from the browser\n" + secrets.token_hex(8)
    await browser.locator("input[name=upload]").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": content.encode()}]
    )
    row = browser.locator("#files tr[data-file='notes.txt']")
    await expect(row).to_be_visible()
    stored_file = await user_api.get(f"/sandboxes/{sandbox_id}/files/workspace/notes.txt")
    assert stored_file.text == content
    async with browser.expect_download() as waiting:
        await row.get_by_role("button", name="Download").click()
    download = await waiting.value
    assert download.suggested_filename == "notes.txt"
    await download.save_as(tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == content

    # the live list shows it running, with its runtime
    await browser.get_by_role("link", name="Sandboxes").first.click()
    listed = browser.locator(f"#sandboxes tr[data-sandbox='{sandbox_id}']")
    await expect(listed).to_contain_text("running")
    await expect(listed).to_contain_text(sandbox["runtime"])

    # the audit trail, filtered to this sandbox
    await browser.get_by_role("link", name="Audit trail").click()
    await browser.get_by_label("Sandbox").fill(sandbox_id)
    await browser.get_by_role("button", name="Filter").click()
    audit = browser.locator("#audit tbody")
    await expect(audit).to_contain_text("created")
    await expect(audit.locator("tr")).not_to_have_count(0)
    assert (
        await audit.locator(f"td:has-text('{sandbox_id}')").count()
        == await audit.locator("tr").count()
    )

    # terminate from the sandbox's page (a second click confirms)
    await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
    terminate = browser.locator(f"button[data-terminate='{sandbox_id}']")
    await terminate.click()
    await expect(terminate).to_have_text("Confirm terminate")
    await terminate.click()
    await expect(browser.locator("#sandbox-status")).to_have_text("terminated")
    ended = (await user_api.get(f"/sandboxes/{sandbox_id}")).json()
    assert ended["status"] in ("terminating", "terminated")
    # nothing is left to run or open, and the button is gone (it said Terminating...)
    await expect(browser.locator(".notice")).to_have_text("This sandbox is terminated.")
    await expect(terminate).to_have_count(0)
    for gone in ("Run", "Cancel", "New terminal", "Reconnect", "Up"):
        await expect(browser.get_by_role("button", name=gone, exact=True)).to_have_count(0)
    await expect(browser.locator("textarea[name=code]")).to_have_count(0)
    assert problems == []


async def test_a_sandbox_terminated_elsewhere_offers_nothing_to_run(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    browser, problems = page
    sandbox_id = await create_sandbox(user_api)
    await sign_in(browser, stack, user_key)
    await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
    await expect(browser.locator("#sandbox-status")).to_have_text("running")
    await expect(browser.get_by_role("button", name="Run", exact=True)).to_be_visible()
    assert (await user_api.delete(f"/sandboxes/{sandbox_id}")).status_code in (200, 202, 204)
    # the page's next status poll sees it (the poll runs every few seconds)
    await expect(browser.locator(".notice")).to_contain_text("This sandbox is", timeout=30_000)
    await expect(browser.get_by_role("button", name="Run", exact=True)).to_have_count(0)
    await expect(browser.locator(f"button[data-terminate='{sandbox_id}']")).to_have_count(0)
    assert problems == []


async def test_a_node_sandbox_runs_javascript_and_files_go_up_only_to_the_roots(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    browser, problems = page
    sandbox_id = await create_sandbox(user_api, runtime="node:20")
    try:
        made = await user_api.put(
            f"/sandboxes/{sandbox_id}/files/workspace/sub/a.txt", content=b"a"
        )
        assert made.status_code in (200, 201), made.text
        await sign_in(browser, stack, user_key)
        await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
        mode = browser.locator("select[name=mode]")
        await expect(mode.locator("option")).to_have_text(["JavaScript", "Shell"])
        code = browser.locator("textarea[name=code]")
        await expect(code).to_have_attribute("placeholder", "console.log('hello')")
        await code.fill("console.log(6 * 7)")
        await code.press("Control+Enter")
        await expect(browser.locator("#cell-output .summary")).to_contain_text("completed")
        await expect(browser.locator("#cell-output pre.stdout")).to_have_text("42\n")

        # Up stops at /workspace (the API refuses "/"): disabled there, enabled below it
        up = browser.get_by_role("button", name="Up", exact=True)
        where = browser.locator("input[name=path]")
        await expect(browser.locator("#files tr[data-file='sub']")).to_be_visible()
        await expect(up).to_be_disabled()
        await browser.locator("#files tr[data-file='sub'] a").click()
        await expect(where).to_have_value("/workspace/sub")
        await expect(up).to_be_enabled()
        await up.click()
        await expect(where).to_have_value("/workspace")
        await expect(up).to_be_disabled()
        await where.fill("/tmp")
        await browser.get_by_role("button", name="Open", exact=True).click()
        await expect(where).to_have_value("/tmp")
        await expect(up).to_be_disabled()
        assert problems == []
    finally:
        await user_api.delete(f"/sandboxes/{sandbox_id}")


async def test_api_keys_and_warm_pools_pages(
    stack, page: tuple[Page, PageProblems], user_key: str, api: httpx.AsyncClient
) -> None:
    browser, problems = page
    await sign_in(browser, stack, stack.admin_key)
    pool = f"console-{secrets.token_hex(3)}"
    created = await api.post(
        "/warmpools", json={"name": pool, "runtime": "python:3.11", "minSize": 0, "maxSize": 1}
    )
    assert created.status_code == 201, created.text
    try:
        await browser.get_by_role("link", name="Warm pools").click()
        row = browser.locator(f"#warmpools tr[data-pool='{pool}']")
        await expect(row).to_contain_text("python:3.11")
        await expect(row).to_contain_text("0\u20131")  # min to max, en dash
        # its conditions as warmpool-svc reports them: type, status, reason and message
        reported = (await api.get(f"/warmpools/{pool}")).json()["status"]["conditions"]
        assert reported, "the pool reports no conditions"
        shown = row.locator("td").nth(7).locator("li")
        await expect(shown).to_have_count(len(reported))
        for item, condition in zip(await shown.all(), reported, strict=True):
            await expect(item.locator("b")).to_have_text(condition["type"])
            await expect(item.locator(".status")).to_have_text(condition["status"])
            for detail in (condition["reason"], condition["message"]):
                await expect(item).to_contain_text(detail)
    finally:
        await api.delete(f"/warmpools/{pool}")

    await browser.get_by_role("link", name="API keys").click()
    name = f"browser-{secrets.token_hex(3)}"
    await browser.get_by_label("Name").fill(name)
    await browser.get_by_role("button", name="Create key").click()
    secret = await browser.locator("#new-key").text_content()
    assert secret is not None
    assert secret.startswith("lsp_")
    async with httpx.AsyncClient() as client:
        works = await client.get(
            stack.api_url + "/user", headers={"Authorization": f"Bearer {secret}"}
        )
    assert works.status_code == 200
    key_row = browser.locator("#keys tr", has_text=name)
    await key_row.get_by_role("button", name="Revoke").click()
    await expect(key_row).to_contain_text("revoked")
    # the expiry input stops at what the API accepts; past it (the limit taken off the
    # input, as an older page would) the API's field details are shown, not only its message
    days = browser.get_by_label("Expires in (days)")
    await expect(days).to_have_attribute("max", "3650")
    await days.evaluate("input => input.removeAttribute('max')")
    await browser.get_by_label("Name").fill(f"far-{secrets.token_hex(3)}")
    await days.fill("5000")
    await browser.get_by_role("button", name="Create key").click()
    refused = browser.locator("#main .error")
    await expect(refused.locator("p")).to_have_text("invalid request body")
    await expect(refused.locator("li")).to_contain_text(["expiresInDays: "])
    async with httpx.AsyncClient() as client:
        refused = await client.get(
            stack.api_url + "/user", headers={"Authorization": f"Bearer {secret}"}
        )
    assert refused.status_code == 401
    assert problems == []


UNKNOWN = "\u2013"  # an en dash
_AMOUNT = r"\d+(\.\d)? (B|KiB|MiB|GiB|TiB)"


def _bytes(count: int) -> str:
    """As the console writes an amount of memory (dom.js `bytes`)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    value, unit = float(count), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.1f} {units[unit]}" if unit else f"{count} B"


async def test_the_list_and_the_sandbox_page_show_cpu_and_memory(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    """CPU and memory from `/status`, as the runtime measures them: CPU time or cores,
    memory in use and the limit; a reading the runtime cannot take is shown as a dash."""
    browser, problems = page
    sandbox_id = await create_sandbox(user_api)
    try:
        report = (await user_api.get(f"/sandboxes/{sandbox_id}/status")).json()
        if report.get("cpuCores") is not None:
            cpu = r"\d+\.\d\d cores"
        elif report.get("cpuMs") is not None:
            cpu = r"\d+\.\d s"
        else:
            cpu = UNKNOWN
        limit = report.get("memoryLimitBytes")
        memory = re.escape(" / " + _bytes(limit)) if limit else ""
        memory = _AMOUNT + memory if report.get("memoryBytes") is not None else UNKNOWN
        await sign_in(browser, stack, user_key)
        cells = browser.locator(f"#sandboxes tr[data-sandbox='{sandbox_id}'] td")
        await expect(cells.nth(4)).to_have_text(re.compile(f"^{cpu}$"))
        await expect(cells.nth(5)).to_have_text(re.compile(f"^{memory}$"))
        await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
        usage = re.compile(rf"^CPU {cpu} · memory {memory} · up \d+ s$")
        await expect(browser.locator("#sandbox-usage")).to_have_text(usage)
        assert problems == []
    finally:
        await user_api.delete(f"/sandboxes/{sandbox_id}")


async def test_typing_in_the_terminal_shows_the_output(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    browser, problems = page
    sandbox_id = await create_sandbox(user_api)
    try:
        await sign_in(browser, stack, user_key)
        await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
        await expect(browser.locator("#terminal-state")).to_have_text("connected")
        await browser.locator("#terminal").click()
        await browser.keyboard.type("echo term-$((6 * 7))-ok\n")
        await expect(browser.locator("#terminal .xterm-rows")).to_contain_text("term-42-ok")
        # the PTY has the size the page's terminal shows (sent when it opened)
        rows = await browser.locator("#terminal .xterm-rows > div").count()
        await browser.keyboard.type("stty size\n")
        answer = re.compile(rf"^\s*{rows}\s\d+\s*$")
        await expect(browser.locator("#terminal .xterm-rows > div", has_text=answer)).to_have_count(
            1
        )
        assert problems == []
    finally:
        await user_api.delete(f"/sandboxes/{sandbox_id}")


PASTE = """(text) => {
    const data = new DataTransfer();
    data.setData("text/plain", text);
    document.querySelector("#terminal .xterm-helper-textarea").dispatchEvent(
        new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
}"""


async def test_a_paste_larger_than_one_input_message_reaches_the_shell_whole(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    """The API takes 16 KiB characters an input message: the page splits a larger paste
    (here ~40 KiB with characters outside the BMP) instead of having it refused."""
    browser, problems = page
    sandbox_id = await create_sandbox(user_api)
    text = "".join(f"line {n:05} é😀 {secrets.token_hex(24)}\n" for n in range(600))
    assert len(text) > 2 * 16 * 1024
    try:
        await sign_in(browser, stack, user_key)
        await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
        await expect(browser.locator("#terminal-state")).to_have_text("connected")
        await browser.locator("#terminal").click()
        # no echo (the screen stays small); the paste waits in the tty's queue for cat
        await browser.keyboard.type("stty -echo; echo cat-$((2 + 2)); cat > pasted.txt\n")
        await expect(browser.locator("#terminal .xterm-rows")).to_contain_text("cat-4")
        await browser.evaluate(PASTE, text)
        await browser.keyboard.press("Control+D")  # end of file for cat, after the paste
        await browser.keyboard.type("echo pasted-$((3 * 3))\n")
        rows = browser.locator("#terminal .xterm-rows")
        await expect(rows).to_contain_text("pasted-9", timeout=30_000)
        await expect(rows).not_to_contain_text("invalid_message")
        pasted = await user_api.get(f"/sandboxes/{sandbox_id}/files/workspace/pasted.txt")
        assert pasted.status_code == 200, pasted.text
        assert pasted.text == text
        assert problems == []
    finally:
        await user_api.delete(f"/sandboxes/{sandbox_id}")


async def test_a_cell_that_plots_shows_the_image(
    stack, page: tuple[Page, PageProblems], user_key: str, user_api: httpx.AsyncClient
) -> None:
    browser, problems = page
    sandbox_id = await create_sandbox(user_api, "python:3.11-data")  # matplotlib in it
    try:
        await sign_in(browser, stack, user_key)
        await browser.goto(console_url(stack) + f"#/sandboxes/{sandbox_id}")
        await browser.locator("textarea[name=code]").fill(
            "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
        )
        await browser.get_by_role("button", name="Run", exact=True).click()
        await expect(browser.locator("#cell-output .summary")).to_contain_text("completed")
        image = browser.locator("#cell-output img").first
        await expect(image).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
        assert await image.evaluate("img => img.naturalWidth") > 0
        assert problems == []
    finally:
        await user_api.delete(f"/sandboxes/{sandbox_id}")
