"""report.parse against hostile bytes: a message or ReportError, nothing
else, with a message that names what is wrong and shows a client's
strings only escaped.  Property-based (hypothesis), plus the inputs that
once crashed ingest."""

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hostile import RAW_VALUES, document_with, paths
from pyweb_popcon import report
from pyweb_popcon.report import OS, Entry, NotJSON, Report, ReportError

VALID = report.to_dict(Report(
    "2b0c1f5e-8d7a-4f4e-9b7e-3f0a9c1d2e4f", "2026-11-28", "0.1.0",
    OS("Debian", "12", "amd64"), "none", "25+", ("3.11",),
    (Entry("django", "4.2.11", "deb", 1, True),
     Entry("flask", "3.0.3", "venv", 3, False))))

FUZZ = settings(max_examples=300, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


def outcome(data):
    """What parse made of `data`: a message, or the ReportError, checked
    to be one bounded line of printable text."""
    try:
        return report.parse(data)
    except ReportError as e:
        text = str(e)
        assert text.isprintable() and len(text) < 300, text
        text.encode("utf-8")
        return e


# -- the inputs that crashed ingest (issue 9) -------------------------------

def test_60000_open_brackets():
    e = outcome(b"[" * 60_000)
    assert isinstance(e, NotJSON)
    assert str(e) == ("document: nested 60000 levels deep, more than the 16 "
                      "read")


def test_5000_digit_integer():
    e = outcome(b'{"format": 1, "n": ' + b"9" * 5000 + b"}")
    assert isinstance(e, NotJSON)
    assert str(e) == "document: a number of 5000 digits, more than the 20 read"


def test_lone_surrogate_key():
    e = outcome(b'{"\\ud800": 1}')
    assert str(e) == "'\\ud800': unknown key"


def test_control_characters_are_escaped():
    e = outcome(b'{"format": 1, "\\u001b[31mred": 1}')
    assert str(e) == "'\\x1b[31mred': unknown key"


HOSTILE_DOCUMENTS = [
    (b"NaN", "document: not JSON (NaN is not a JSON number)"),
    (b'{"format": -Infinity}',
     "document: not JSON (-Infinity is not a JSON number)"),
    (b"[" * 16 + b"]" * 16, "document: must be a JSON object"),
    (b"[" * 17 + b"]" * 17,
     "document: nested 17 levels deep, more than the 16 read"),
    # Brackets inside strings do not nest, whatever the escapes.
    (b'["\\"[[[[[[[[[[[[[[[[[[[[", 1]', "document: must be a JSON object"),
    (b'{"a": 1, "b": 2, "a": 3}', "document: duplicate key 'a'"),
    (b'{"' + b"k" * 5000 + b'": 1}', "'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"),
    (b'{"forget": true, "host_id": "", "format": "' + b"\\u0007" * 2000
     + b'"}', "format: must be 1 or 2, not '\\x07\\x07"),
]


@pytest.mark.parametrize("data,message", HOSTILE_DOCUMENTS,
                         ids=range(len(HOSTILE_DOCUMENTS)))
def test_hostile_documents(data, message):
    assert str(outcome(data)).startswith(message)


# -- properties --------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes(data):
    outcome(data)


def _json_values():
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(),
        st.text(max_size=50))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=10), inner, max_size=5)),
        max_leaves=30)


@FUZZ
@given(_json_values())
def test_any_json(value):
    outcome(json.dumps(value).encode())


@FUZZ
@given(st.integers(1, 70_000), st.sampled_from(["[", "{\"a\":", "[{\"a\":"]),
       st.booleans())
def test_deep_nesting(depth, opener, closed):
    closer = {"[": "]", "{\"a\":": "}", "[{\"a\":": "}]"}[opener]
    text = opener * depth + ("1" + closer * depth if closed else "")
    result = outcome(text.encode()[:report.MAX_BYTES + 10])
    assert isinstance(result, ReportError)


@FUZZ
@given(st.sampled_from(["1", "\"x\"", "[]", "{}", "null", "1.5e300"]),
       st.integers(0, 70_000))
def test_huge_documents(item, count):
    text = "[" + ",".join([item] * count) + "]"
    assert isinstance(outcome(text.encode()), ReportError)


PATHS = list(paths(VALID))
HOSTILE = st.one_of(
    st.sampled_from(RAW_VALUES),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.text().map(json.dumps),
    st.lists(st.text(max_size=5), max_size=5).map(json.dumps),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3).map(
        json.dumps))


def _where(path):
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (
            f".{key}" if out else key)
    return out


@FUZZ
@given(st.sampled_from(PATHS), st.one_of(st.none(), HOSTILE))
def test_one_field_hostile_or_removed(path, raw):
    result = outcome(document_with(VALID, path, raw).encode("utf-8",
                                                      "surrogatepass"))
    if isinstance(result, (report.Report, report.Forget)):
        return          # a value that happens to be valid (null for "used")
    if isinstance(result, NotJSON) or str(result).startswith("document:"):
        return          # refused before a field was looked at
    # Only one field changed: the message names it, or what is in it.
    where, text = _where(path), str(result)
    assert text.startswith(where) and text[len(where)] in ":.[", (where, text)
