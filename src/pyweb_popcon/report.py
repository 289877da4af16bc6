"""The report, format 2: the one definition client and server share.

A report is what a participating machine sends once a week; a forget
message asks the server to delete a host.  Clients send FORMAT; the
server also reads the formats of older clients still reporting (FORMATS).
Format 2 added to each framework entry the Python it runs under, and
three ways of installing (conda, user, target) to `via`.  `parse` accepts exactly the
documented shape and nothing else, naming the offending field; `serialise`
writes a report the same way every time, so the bytes a person previews
with `pyweb-popcon show` are the bytes that are encrypted and sent.
"""

import datetime
import functools
import itertools
import json
import re
import uuid
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from pyweb_popcon import catalogue

FORMAT = 2
FORMATS = (1, 2)
MAX_BYTES = 64 * 1024
MAX_FRAMEWORKS = 256
MAX_PYTHONS = 16
MAX_ENVS = 100_000
MAX_VERSION_LENGTH = 64
# Limits of what parse reads at all: a report nests 3 deep and its largest
# number has 6 digits.  Python's json recurses once per level and refuses
# integers of more than 4,300 digits, each with an exception of its own.
MAX_DEPTH = 16
MAX_DIGITS = 20

# How a framework was installed: a Debian package; pip into a Python's own
# site (Debian's, /usr/local's, a self-built or pyenv prefix's); a virtual
# environment (venv, virtualenv, uv, poetry, pdm, hatch, pipx); from
# format 2 on, a conda or mamba environment, a user's own site (pip
# --user), and a directory made by pip --target.
VIAS = ("deb", "pip", "venv", "conda", "user", "target")
VIAS_BY_FORMAT = {1: VIAS[:3], 2: VIAS}
VIRTS = ("none", "vm", "container")
AGES = ("1", "2-4", "5-24", "25+")

VENDOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+-]{0,31}")
RELEASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+/-]{0,31}")
ARCH = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")
_PYTHON = re.compile(r"3\.[0-9]{1,2}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A JSON string, or an unterminated one up to the end: possessive, so each
# character is looked at once whatever the input.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
_BRACKET = re.compile(r"[\[\]{}]")
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class ReportError(ValueError):
    """A document that is not a valid report or forget message."""


class NotJSON(ReportError):
    """A document that is not even UTF-8 JSON, or not JSON parse reads:
    nested deeper than MAX_DEPTH, numbers longer than MAX_DIGITS, NaN."""


@dataclass(frozen=True)
class OS:
    vendor: str
    release: str
    arch: str


@dataclass(frozen=True)
class Entry:
    """One framework at one version, installed one way, under one Python
    (major.minor; None where unknown, and in format 1), in `envs` places."""
    name: str
    version: str
    via: str
    envs: int
    used: bool | None
    python: str | None = None

    def sort_key(self):
        return (self.name, VIAS.index(self.via), _ordered(self.version),
                _python_key(self.python) if self.python else ())


@dataclass(frozen=True)
class Report:
    host_id: str | None
    date: str
    client: str
    os: OS
    virt: str
    age: str
    pythons: tuple = ()
    frameworks: tuple = ()
    format: int = FORMAT


@dataclass(frozen=True)
class Forget:
    host_id: str


# Versions repeat across hosts and reports: parsing each once keeps ingest
# from spending its time in packaging.version.
@functools.lru_cache(maxsize=4096)
def _ordered(text):
    return Version(text)


@functools.lru_cache(maxsize=4096)
def public_version(text):
    """`text` as a normalised PEP 440 public version, or None."""
    try:
        return Version(text).public
    except InvalidVersion:
        return None


def to_dict(message):
    """The JSON object for a Report or Forget, keys in documented order,
    in the message's format."""
    if isinstance(message, Forget):
        return {"format": FORMAT, "host_id": message.host_id, "forget": True}
    return {
        "format": message.format,
        "host_id": message.host_id,
        "date": message.date,
        "client": message.client,
        "os": {"vendor": message.os.vendor, "release": message.os.release,
               "arch": message.os.arch},
        "virt": message.virt,
        "age": message.age,
        "pythons": sorted(message.pythons, key=_python_key),
        "frameworks": [
            _entry_dict(e, message.format)
            for e in sorted(message.frameworks, key=Entry.sort_key)
        ],
    }


def _entry_dict(e, format):
    entry = {"name": e.name, "version": e.version, "via": e.via}
    if format >= 2:
        entry["python"] = e.python
    entry.update(envs=e.envs, used=e.used)
    return entry


def serialise(message):
    """UTF-8 JSON bytes, identical for equal messages."""
    return (json.dumps(to_dict(message), indent=2, ensure_ascii=False)
            + "\n").encode()


def parse(data):
    """A Report or Forget from bytes, or ReportError naming what is wrong.

    Whatever the bytes, nothing else is raised, in time linear in their
    length.  Checked by hand rather than with a JSON Schema library: none
    is in the dependencies, and the checks here are stricter (normalised
    versions, catalogue names, lower-case UUIDs) and name the field in
    plain words.
    """
    if len(data) > MAX_BYTES:
        raise ReportError(f"document: {len(data)} bytes, over the "
                          f"{MAX_BYTES}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotJSON(f"document: not UTF-8 ({e.reason})") from None
    # json recurses once per level: bound the depth first (counting is
    # enough for most reports, too few brackets to nest deeply).
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _nesting(text)
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                         parse_int=_integer, parse_constant=_constant)
    except json.JSONDecodeError as e:
        raise NotJSON(f"document: not JSON ({e})") from None
    return from_dict(doc)


def _nesting(text):
    """Refuse JSON `text` nested deeper than MAX_DEPTH, in one pass."""
    brackets = _BRACKET.findall(_STRING.sub("", text))
    depth = max(itertools.accumulate(map(_NESTING.__getitem__, brackets)),
                default=0)
    if depth > MAX_DEPTH:
        raise NotJSON(f"document: nested {depth} levels deep, more than "
                      f"the {MAX_DEPTH} read")


def _integer(text):
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise NotJSON(f"document: a number of {digits} digits, more than "
                      f"the {MAX_DIGITS} read")
    return int(text)


def _constant(name):
    raise NotJSON(f"document: not JSON ({name} is not a JSON number)")


def from_dict(doc):
    """A Report or Forget from a decoded JSON value."""
    _require(isinstance(doc, dict), "document", "must be a JSON object")
    if "forget" in doc:
        _keys(doc, ("format", "host_id", "forget"), "document")
        _require(doc["forget"] is True, "forget", "must be true")
        _format(doc)
        return Forget(_host_id(doc["host_id"]))
    _keys(doc, ("format", "host_id", "date", "client", "os", "virt", "age",
                "pythons", "frameworks"), "document")
    format = _format(doc)
    return Report(
        host_id=_host_id(doc["host_id"]),
        date=_date(doc["date"]),
        client=_version(doc["client"], "client"),
        os=_os(doc["os"]),
        virt=_choice(doc["virt"], VIRTS, "virt"),
        age=_choice(doc["age"], AGES, "age"),
        pythons=_pythons(doc["pythons"]),
        frameworks=_frameworks(doc["frameworks"], format),
        format=format,
    )


def _no_duplicate_keys(pairs):
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen = set()
        for key, _ in pairs:
            _require(key not in seen, "document",
                     f"duplicate key {_shown(key)}")
            seen.add(key)
    return obj


def _shown(value, limit=70):
    """A value a client chose, as a message may show it: its repr (which
    escapes what is not printable), cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _require(ok, where, what):
    if not ok:
        raise ReportError(f"{where}: {what}")


def _keys(obj, expected, where):
    def path(key):
        key = key if _KEY.fullmatch(key) else _shown(key)
        return key if where == "document" else f"{where}.{key}"
    unknown = set(obj) - set(expected)
    _require(not unknown, unknown and path(min(unknown)), "unknown key")
    missing = [k for k in expected if k not in obj]
    _require(not missing, missing and path(missing[0]), "missing")


def _string(value, where, max_length):
    _require(isinstance(value, str), where,
             f"must be a string, not {type(value).__name__}")
    _require(len(value) <= max_length, where,
             f"longer than {max_length} characters")
    return value


def _match(pattern, value, where, what):
    _string(value, where, 64)
    _require(pattern.fullmatch(value) is not None, where,
             f"{_shown(value)} is not {what}")
    return value


def _format(doc):
    value = doc["format"]
    _require(type(value) is int and value in FORMATS, "format",
             f"must be {' or '.join(map(str, FORMATS))}, not "
             f"{_shown(value)}")
    return value


def _host_id(value):
    _string(value, "host_id", 36)
    try:
        ok = str(uuid.UUID(value)) == value
    except ValueError:
        ok = False
    _require(ok, "host_id", f"{_shown(value)} is not a lower-case UUID")
    return value


def _date(value):
    _match(_DATE, value, "date", "a YYYY-MM-DD date")
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise ReportError(f"date: {_shown(value)} is not a calendar "
                          "date") from None
    return value


def _version(value, where):
    _string(value, where, MAX_VERSION_LENGTH)
    _require(public_version(value) == value, where,
             f"{_shown(value)} is not a normalised PEP 440 public version")
    return value


def _choice(value, choices, where):
    _require(value in choices if isinstance(value, str) else False, where,
             f"{_shown(value)} is not one of {', '.join(choices)}")
    return value


def _os(value):
    _require(isinstance(value, dict), "os", "must be an object")
    _keys(value, ("vendor", "release", "arch"), "os")
    return OS(_match(VENDOR, value["vendor"], "os.vendor", "a vendor name"),
              _match(RELEASE, value["release"], "os.release", "a release"),
              _match(ARCH, value["arch"], "os.arch", "a dpkg architecture"))


def _python_key(text):
    return tuple(int(p) for p in text.split("."))


def _pythons(value):
    _require(isinstance(value, list), "pythons", "must be a list")
    _require(len(value) <= MAX_PYTHONS, "pythons",
             f"more than {MAX_PYTHONS} entries")
    for i, item in enumerate(value):
        _match(_PYTHON, item, f"pythons[{i}]", "a 3.X Python version")
    _require(len(set(value)) == len(value), "pythons", "has duplicates")
    return tuple(sorted(value, key=_python_key))


def _frameworks(value, format):
    _require(isinstance(value, list), "frameworks", "must be a list")
    _require(len(value) <= MAX_FRAMEWORKS, "frameworks",
             f"more than {MAX_FRAMEWORKS} entries")
    entries = tuple(_entry(item, f"frameworks[{i}]", format)
                    for i, item in enumerate(value))
    seen = set()
    for i, e in enumerate(entries):
        key = (e.name, e.version, e.via, e.python)
        under = f" under Python {e.python}" if e.python else ""
        _require(key not in seen, f"frameworks[{i}]",
                 f"repeats {e.name} {e.version} via {e.via}{under}")
        seen.add(key)
    return tuple(sorted(entries, key=Entry.sort_key))


def _entry(item, where, format):
    _require(isinstance(item, dict), where, "must be an object")
    fields = ("name", "version", "via", "envs", "used")
    if format >= 2:
        fields = fields[:3] + ("python",) + fields[3:]
    _keys(item, fields, where)
    name = _string(item["name"], f"{where}.name", 64)
    _require(name in catalogue.frameworks(), f"{where}.name",
             "not a catalogue framework")
    envs = item["envs"]
    _require(type(envs) is int and 1 <= envs <= MAX_ENVS, f"{where}.envs",
             f"must be an integer from 1 to {MAX_ENVS}")
    used = item["used"]
    _require(used is None or isinstance(used, bool), f"{where}.used",
             "must be true, false or null")
    python = item.get("python")
    if python is not None:
        _match(_PYTHON, python, f"{where}.python",
               "a 3.X Python version or null")
    return Entry(name, _version(item["version"], f"{where}.version"),
                 _choice(item["via"], VIAS_BY_FORMAT[format], f"{where}.via"),
                 envs, used, python)
