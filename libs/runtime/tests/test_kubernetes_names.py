"""Label values for sandbox ids and pools: kept when Kubernetes accepts them whole."""

from llmsafespace.runtime.kubernetes.names import label_value


def test_a_valid_label_value_is_kept() -> None:
    assert label_value("sb-abc_DEF.1") == "sb-abc_DEF.1"
    assert label_value("") == ""


def test_a_value_with_a_trailing_newline_becomes_a_digest() -> None:
    """`^…$` with `match` kept `sb-abc\\n`, which the API server refuses."""
    assert label_value("sb-abc\n").startswith("h-")
    assert label_value("sb-abc\n") != label_value("sb-abc")
