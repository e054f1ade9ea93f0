"""`decode_json`, which reads every request body and socket frame: only JSON."""

import pytest

from llmsafespace.gateway.bodies import MalformedJson, decode_json


@pytest.mark.parametrize(
    "raw", ['{"timeout": NaN}', '{"cpu": Infinity}', '{"cpu": -Infinity}', "[NaN]", "NaN"]
)
def test_nan_and_infinity_are_not_json(raw: str) -> None:
    with pytest.raises(MalformedJson, match="is not a JSON number"):
        decode_json(raw)


def test_numbers_json_has_are_read() -> None:
    assert decode_json(b'{"a": 1.5e3, "b": -0, "c": 1E-2}') == {"a": 1500.0, "b": 0, "c": 0.01}
