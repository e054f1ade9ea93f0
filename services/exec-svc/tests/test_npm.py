"""How the npm mirror picks versions: as npm does."""

import pytest

from llmsafespace.exec_svc.npm import packument_file, pick, split_spec

PACKUMENT = {
    "dist-tags": {"latest": "1.2.0", "next": "2.0.0-beta.1"},
    "versions": {v: {} for v in ("1.0.0", "1.2.0", "1.3.0", "2.0.0-beta.1", "2.1.0")},
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("left-pad", ("left-pad", "latest")),
        ("left-pad@^1.0.0", ("left-pad", "^1.0.0")),
        ("@scope/pkg", ("@scope/pkg", "latest")),
        ("@scope/pkg@>=1 <2", ("@scope/pkg", ">=1 <2")),
    ],
)
def test_specs_split_into_name_and_range(spec: str, expected: tuple[str, str]) -> None:
    assert split_spec(spec) == expected


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("latest", "1.2.0"),  # the tag, though 2.1.0 is higher
        ("*", "1.2.0"),  # latest satisfies the range: npm takes it
        ("^1.0.0", "1.2.0"),
        ("~1.3", "1.3.0"),
        (">=2", "2.1.0"),  # latest does not satisfy: the highest that does
        ("next", "2.0.0-beta.1"),
        ("^3", None),
    ],
)
def test_versions_are_picked_the_way_npm_picks_them(wanted: str, expected: str | None) -> None:
    assert pick(PACKUMENT, wanted) == expected


def test_scoped_packuments_keep_their_at_sign_and_escape_the_slash() -> None:
    assert packument_file("@scope/pkg") == "@scope%2Fpkg.json"
