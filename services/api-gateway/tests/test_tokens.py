"""Access tokens: only the exact signed text is accepted."""

import time

import pytest

from llmsafespace.gateway import tokens

SECRET = b"s" * 32


@pytest.fixture
def token() -> str:
    return tokens.sign({"sub": "usr-x", "kid": "key-1", "exp": int(time.time()) + 600}, SECRET)


def test_a_signed_token_verifies(token: str) -> None:
    assert tokens.verify(token, SECRET) is not None


@pytest.mark.parametrize("junk", ["=", "==", "!", "!!", "~", " ", "\n", "%"])
def test_junk_appended_to_the_signature_is_refused(token: str, junk: str) -> None:
    assert tokens.verify(token + junk, SECRET) is None


def test_junk_inside_the_signature_is_refused(token: str) -> None:
    head, body, signature = token.split(".")
    assert tokens.verify(f"{head}.{body}.{signature[:10]}!{signature[10:]}", SECRET) is None


def test_other_spellings_of_the_same_signature_bits_are_refused(token: str) -> None:
    """43 base64url characters carry 258 bits for a 256-bit MAC: the last character's two
    spare bits must be zero, or one signature would have four spellings."""
    head, body, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    for spare in (1, 2, 3):
        other = alphabet[last ^ spare]
        assert tokens.verify(f"{head}.{body}.{signature[:-1]}{other}", SECRET) is None
