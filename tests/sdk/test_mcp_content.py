"""Rich results (the MIME bundles of SHAPES.md) as MCP content: no stack needed."""

import mcp_types as types

from llmsafespace.sdk.mcp_server import rich_content

PNG = "iVBORw0KGgo="


def test_images_become_image_content_and_text_displays_text_content() -> None:
    bundles = [
        {"data": {"image/png": PNG, "text/plain": "<Figure>"}, "isMainResult": False},
        {"data": {"text/markdown": "**bold**", "text/plain": "bold"}, "isMainResult": False},
        {"data": {"text/plain": "42"}, "isMainResult": True},  # already the `result`
        {"data": "not a bundle", "isMainResult": False},
    ]
    content = rich_content(bundles)
    assert content == [
        types.ImageContent(type="image", data=PNG, mime_type="image/png"),
        types.TextContent(type="text", text="**bold**"),
    ]


def test_a_main_result_that_is_an_image_is_kept() -> None:
    bundle = {"data": {"image/jpeg": PNG, "text/plain": "<Image>"}, "isMainResult": True}
    assert rich_content([bundle]) == [
        types.ImageContent(type="image", data=PNG, mime_type="image/jpeg")
    ]
