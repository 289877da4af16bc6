"""Hostile values for a report's fields, shared by the parse fuzz tests and
the ingest tests: raw JSON text (huge numbers and NaN cannot come out of
json.dumps) put in place of one field of a valid document."""

import json

RAW_VALUES = [
    "null", "true", "false", "0", "-1", "1.5", "1e999", "-1e999", "NaN",
    "Infinity", "-Infinity", "1" + "0" * 30, "-" + "9" * 5000, "9" * 4400,
    "[]", "{}", "[" * 17 + '"deep"' + "]" * 17, '{"a": {"b": {"c": 1}}}',
    '["3.11", "3.11"]', '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"',
    '"\\u001b[31mred\\u001b[0m\\u0007"', '"<script>alert(1)</script>"',
    '"\'; DROP TABLE hosts; --"', '"../../etc/passwd"', '"\\u202e\\u2028"',
    json.dumps("x" * 70_000), json.dumps("é" * 1000, ensure_ascii=False)]


def paths(value, path=()):
    """Every path to a value inside a decoded JSON document."""
    children = (value.items() if isinstance(value, dict) else
                enumerate(value) if isinstance(value, list) else ())
    for key, child in children:
        yield path + (key,)
        yield from paths(child, path + (key,))


def document_with(doc, path, raw):
    """JSON text of `doc` with the value at `path` replaced by the JSON
    text `raw`, or removed when `raw` is None."""
    doc = json.loads(json.dumps(doc))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if raw is None:
        del parent[path[-1]]
        return json.dumps(doc)
    parent[path[-1]] = "\0PLACE\0"
    return json.dumps(doc).replace('"\\u0000PLACE\\u0000"', raw)
