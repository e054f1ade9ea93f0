"""`/console`: the web console, static files (page, ES modules, vendored xterm.js) served
with a strict Content-Security-Policy. It is a client of the public API on the same
origin, so it is mounted as a plain ASGI app: not an API operation, not in `/openapi.json`."""

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PATH = "/console"
_HOST = re.compile(r"^([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?$")


def content_security_policy(host: str | None) -> str:
    """Scripts, styles, fonts and connections from this origin only (the terminal and
    the code cell are WebSockets to it); images also as `data:` (PNG results); nothing
    may frame the console. Inline styles are allowed because xterm.js's renderer writes
    its theme as a `<style>` element; inline scripts are not."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            f"connect-src 'self'{sockets}",
            "frame-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class Secured:
    """Adds the console's security headers to every response of `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = content_security_policy(Headers(scope=scope).get("host"))

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cache-Control"] = "no-cache"
            await send(message)

        await self.app(scope, receive, secured_send)


def mount() -> Mount:
    files = StaticFiles(packages=[("llmsafespace.gateway", "static/console")], html=True)
    return Mount(PATH, app=Secured(files), name="console")
