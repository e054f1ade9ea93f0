"""Every error code the API answers is in the README's list, under its HTTP status."""

import re
from pathlib import Path

from llmsafespace.contracts import ErrorCode
from llmsafespace.contracts.errors import HTTP_STATUS

README = Path(__file__).parents[3] / "README.md"


def test_the_readme_lists_every_error_code_under_its_status() -> None:
    text = README.read_text()
    listed = text[text.index("Errors always have one shape") :].split("\nEvery response")[0]
    for code in ErrorCode:
        mention = re.search(rf"(`\d{{3}} )?{code.value}`", listed)
        assert mention is not None, f"{code.value} is not in the README's list"
        statuses = re.findall(r"`(\d{3}) ", listed[: mention.end()])
        assert statuses[-1] == str(HTTP_STATUS[code]), f"{code.value} is under {statuses[-1]}"
