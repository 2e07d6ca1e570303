"""Masking of registered secrets in the forms they take on their way into output
(commands.redact / scrub): URL-encoded and -decoded, base64 in every alignment and
alphabet, each line of a multi-line value, a URL's password, repr() and JSON escapes."""

import base64
import json
import urllib.parse

import pytest

from shipcheck import commands
from shipcheck.commands import MASK

CANARY = "Canary-7f3e/with+odd=chars&more"  # "/", "+", "=", "&" change under URL encoding


@pytest.fixture(autouse=True)
def fresh_secrets(monkeypatch):
    monkeypatch.setattr(commands, "_SECRETS", set())


def masked(text: str, *secrets: str) -> bool:
    """`text` scrubbed holds a mask and none of the given strings."""
    out = commands.scrub(text)
    return MASK in out and not any(s in out for s in secrets)


def test_the_value_itself():
    commands.redact(CANARY)
    assert commands.scrub(f"key={CANARY}.") == f"key={MASK}."


@pytest.mark.parametrize("encode", [
    lambda v: urllib.parse.quote(v, safe=""),
    urllib.parse.quote,
    urllib.parse.quote_plus,
], ids=["quote-all", "quote-path", "quote-plus"])
def test_url_encoded_forms(encode):
    commands.redact(CANARY)
    encoded = encode(CANARY)
    assert encoded != CANARY
    assert commands.scrub(f"GET /login?token={encoded}&x=1") == f"GET /login?token={MASK}&x=1"


def test_url_decoded_form_of_an_encoded_value():
    commands.redact("p%40ss%2Fw0rd-xyz")  # registered as it sits in a URL; logged decoded
    assert commands.scrub("password is p@ss/w0rd-xyz") == f"password is {MASK}"


@pytest.mark.parametrize("b64", [base64.b64encode, base64.urlsafe_b64encode], ids=["standard", "urlsafe"])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_base64_of_the_value_alone(b64, padded):
    commands.redact(CANARY)
    encoded = b64(CANARY.encode()).decode()
    encoded = encoded if padded else encoded.rstrip("=")
    assert commands.scrub(f"data:\n  key: {encoded}\n") == f"data:\n  key: {MASK}\n"


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc", "user:", "Authorization: Basic "])
@pytest.mark.parametrize("suffix", ["", "\n", "xy", "@db:5432/todo"])
@pytest.mark.parametrize("b64", [base64.b64encode, base64.urlsafe_b64encode], ids=["standard", "urlsafe"])
def test_base64_of_the_value_inside_a_longer_string_in_every_alignment(prefix, suffix, b64):
    """`echo $SECRET | base64`, a Basic auth header, a Secret's data holding a whole URL:
    whatever precedes it, the characters that encode the value alone are masked."""
    commands.redact(CANARY)
    encoded = b64((prefix + CANARY + suffix).encode()).decode()
    out = commands.scrub(encoded)
    assert MASK in out
    # What is left is only what encodes the neighbours (and at most one character on
    # each side that mixes their bits with the value's): never enough to decode it.
    neighbours = len(b64((prefix + suffix).encode()).decode())
    assert len(out) - len(MASK) <= neighbours + 4


def test_each_line_of_a_multi_line_value():
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END KEY-----\n"
    commands.redact(key)
    assert commands.scrub("first line: MIIEvQIBADANBgkqhkiG9w0B") == f"first line: {MASK}"
    assert commands.scrub("error near 'AQEFAASCBKcwggSjAgEAAoIB'") == f"error near '{MASK}'"
    assert commands.scrub(key) == f"{MASK}"  # the whole value first (the longest form)


def test_lines_shorter_than_the_minimum_are_not_masked():
    commands.redact("ab\nlong-enough-line")
    assert commands.scrub("ab cd long-enough-line") == f"ab cd {MASK}"


def test_the_password_of_a_url():
    commands.redact("postgresql+psycopg://todo:Pa55w0rd-xyz@todo-postgres:5432/todo")
    assert commands.scrub("FATAL: password authentication failed: Pa55w0rd-xyz") == (
        f"FATAL: password authentication failed: {MASK}")
    assert commands.scrub("postgresql://todo:Pa55w0rd-xyz@other-host/todo") == f"postgresql://todo:{MASK}@other-host/todo"
    assert masked(base64.b64encode(b"Pa55w0rd-xyz").decode(), "UGE1NXcwcmQteHl6")


def test_the_percent_encoded_password_of_a_url_in_both_forms():
    commands.redact("postgresql://todo:p%40ss%3Aword99@db/todo")
    assert commands.scrub("password p@ss:word99 rejected") == f"password {MASK} rejected"
    assert commands.scrub("url todo:p%40ss%3Aword99@elsewhere") == f"url todo:{MASK}@elsewhere"


@pytest.mark.parametrize("value", ['tok"en\\x\nmore-secret', "naïve-sécret-välue", "tab\there-secret"])
def test_repr_and_json_escaped_forms(value):
    commands.redact(value)
    assert masked(repr({"k": value}), value)
    assert masked(json.dumps({"k": value}), value, json.dumps(value)[1:-1])
    assert masked(json.dumps({"k": value}, ensure_ascii=False), value)
    assert masked(f"{value!r}", repr(value)[1:-1])


def test_a_value_with_surrounding_whitespace_is_masked_without_it():
    commands.redact("  sk-or-v1-abcdef123456\n")
    assert commands.scrub("key sk-or-v1-abcdef123456 used") == f"key {MASK} used"


def test_short_values_and_short_derived_forms_are_never_masked():
    """1-3 characters occur in ordinary text: masking them would garble every line."""
    commands.redact("abc", "1", "")
    assert commands.scrub("abc 1 YWJj") == "abc 1 YWJj"
    assert all(len(form) >= commands.MIN_SECRET_LEN for form in commands._SECRETS)


def test_forms_of_an_ordinary_value_stay_few():
    forms = commands.derived_forms("hunter2hunter2")
    # the value, base64 alone (padded, unpadded) and its 3 alignment cores: no URL or escape
    # forms for a value those leave unchanged, no urlsafe twin without + or /
    assert len(forms) == 6 and "hunter2hunter2" in forms and "aHVudGVyMmh1bnRlcjI=" in forms
