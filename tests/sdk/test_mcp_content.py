"""Rich results (the MIME bundles of SHAPES.md) as MCP content: no stack needed."""

import mcp_types as types

from llmsafespace.sdk.mcp_server import clip, rich_content

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


def test_svg_and_html_are_text_and_a_bare_repr_is_passed_over() -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg"/>'
    repr_ = "<__main__.Page object at 0x7f19796afd10>"
    bundles = [
        {"data": {"image/svg+xml": svg, "text/plain": "<Drawing>"}, "isMainResult": True},
        {"data": {"text/html": "<b>x</b>", "text/plain": repr_}, "isMainResult": False},
        {"data": {"text/html": "<table/>", "text/plain": "   a\n0  1"}, "isMainResult": False},
        {"data": {"text/html": "<table/>", "text/plain": "   a\n0  1"}, "isMainResult": True},
    ]
    assert rich_content(bundles) == [
        types.TextContent(type="text", text=svg),
        types.TextContent(type="text", text="<b>x</b>"),
        types.TextContent(type="text", text="   a\n0  1"),
    ]


def test_a_long_text_keeps_its_beginning_and_end() -> None:
    text = "a" * 10_000 + "b" * 30_000 + "c" * 10_000
    kept, dropped = clip(text)
    assert dropped == 30_000
    assert kept.startswith("a" * 5_000 + "\n[... 30000 characters dropped ...]\n")
    assert kept.endswith("b" * 5_000 + "c" * 10_000)
    assert clip("short") == ("short", 0)
    [content] = rich_content([{"data": {"text/markdown": text}, "isMainResult": False}])
    assert isinstance(content, types.TextContent)
    assert content.text == kept
