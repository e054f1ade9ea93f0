"""`Content-Disposition` for any file name a sandbox can make (RFC 6266)."""

from urllib.parse import unquote

import pytest

from llmsafespace.gateway.files import attachment


@pytest.mark.parametrize(
    "name", ["plain.tar.gz", 'a"b.tar.gz', "crlf\r\nSet-Cookie: x=1.tar.gz", "é ü.tar.gz", "a\\b"]
)
def test_any_name_makes_a_valid_header_with_the_exact_name_in_filename_star(name: str) -> None:
    header = attachment(name)
    assert header.isascii(), header
    assert header.isprintable(), header
    plain = header.split('filename="', 1)[1].split('"', 1)[0]
    assert '"' not in plain
    assert "\\" not in plain
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == name
