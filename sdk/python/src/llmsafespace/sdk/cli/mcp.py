"""`llmsafespace mcp`: the MCP server over stdio, for desktop clients that spawn it."""

import anyio
import click

from ..config import ClientConfig
from ..mcp_server import serve_stdio
from .settings import CliSettings, pass_settings


@click.command("mcp")
@pass_settings
def mcp_command(settings: CliSettings) -> None:
    """Serve the sandbox tools over MCP on stdin/stdout (LLMSAFESPACE_API_URL / _KEY)."""
    config = ClientConfig.resolve(settings.api_url, settings.api_key)
    anyio.run(serve_stdio, config)
