"""The report format: what parse accepts, what it refuses, and round trips."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from pyweb_popcon import catalogue, report
from pyweb_popcon.report import Entry, Forget, OS, Report, ReportError

HOST = "2b0c1f5e-8d7a-4f4e-9b7e-3f0a9c1d2e4f"

DESIGN_EXAMPLE = {
    "format": 1,
    "host_id": HOST,
    "date": "2026-11-28",
    "client": "0.1.0",
    "os": {"vendor": "Debian", "release": "12", "arch": "amd64"},
    "virt": "none",
    "age": "25+",
    "pythons": ["3.11"],
    "frameworks": [
        {"name": "django", "version": "4.2.11", "via": "deb", "envs": 1,
         "used": True},
        {"name": "flask", "version": "3.0.3", "via": "venv", "envs": 3,
         "used": False},
    ],
}


def encode(doc):
    return json.dumps(doc).encode()


def test_design_example_parses_and_round_trips():
    parsed = report.parse(encode(DESIGN_EXAMPLE))
    assert parsed.frameworks[0] == Entry("django", "4.2.11", "deb", 1, True)
    assert json.loads(report.serialise(parsed)) == DESIGN_EXAMPLE


def test_serialise_is_deterministic_and_sorted():
    entries = (Entry("flask", "3.0.3", "venv", 1, None),
               Entry("django", "10.0", "pip", 1, True),
               Entry("django", "9.1", "pip", 2, False),
               Entry("django", "5.0", "deb", 1, None))
    a = Report(HOST, "2026-11-28", "0.1.0", OS("Debian", "12", "amd64"),
               "none", "1", ("3.9", "3.11"), entries)
    b = Report(HOST, "2026-11-28", "0.1.0", OS("Debian", "12", "amd64"),
               "none", "1", ("3.11", "3.9"), tuple(reversed(entries)))
    assert report.serialise(a) == report.serialise(b)
    doc = json.loads(report.serialise(a))
    assert list(doc) == ["format", "host_id", "date", "client", "os", "virt",
                         "age", "pythons", "frameworks"]
    assert [(f["name"], f["via"], f["version"]) for f in doc["frameworks"]] \
        == [("django", "deb", "5.0"), ("django", "pip", "9.1"),
            ("django", "pip", "10.0"), ("flask", "venv", "3.0.3")]
    assert doc["pythons"] == ["3.9", "3.11"]


def test_forget_message():
    msg = report.parse(encode({"format": 1, "host_id": HOST, "forget": True}))
    assert msg == Forget(HOST)
    assert report.parse(report.serialise(msg)) == msg


def changed(path, value, base=None):
    """A copy of `base` (DESIGN_EXAMPLE) with the value at `path` set, or
    removed for KeyError."""
    doc = json.loads(json.dumps(base or DESIGN_EXAMPLE))
    *parents, last = path
    target = doc
    for p in parents:
        target = target[p]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


FORMAT_2_EXAMPLE = dict(DESIGN_EXAMPLE, format=2, frameworks=[
    {"name": "django", "version": "4.2.11", "via": "deb", "python": "3.11",
     "envs": 1, "used": True},
    {"name": "fastapi", "version": "0.115.0", "via": "conda",
     "python": "3.12", "envs": 1, "used": None},
    {"name": "flask", "version": "3.0.3", "via": "venv", "python": "3.11",
     "envs": 2, "used": False},
    {"name": "flask", "version": "3.0.3", "via": "venv", "python": "3.13",
     "envs": 1, "used": False},
    {"name": "flask", "version": "3.0.3", "via": "target", "python": None,
     "envs": 1, "used": None},
])


def test_format_2_names_each_entrys_python_and_round_trips():
    parsed = report.parse(encode(FORMAT_2_EXAMPLE))
    assert parsed.format == 2
    assert [(e.name, e.via, e.python) for e in parsed.frameworks] == [
        ("django", "deb", "3.11"), ("fastapi", "conda", "3.12"),
        ("flask", "venv", "3.11"), ("flask", "venv", "3.13"),
        ("flask", "target", None)]
    assert json.loads(report.serialise(parsed)) == FORMAT_2_EXAMPLE


def test_format_1_is_still_read_and_written_as_format_1():
    parsed = report.parse(encode(DESIGN_EXAMPLE))
    assert parsed.format == 1
    assert all(e.python is None for e in parsed.frameworks)
    assert all("python" not in f for f in
               json.loads(report.serialise(parsed))["frameworks"])


def format_2_changed(path, value):
    return encode(changed(path, value, FORMAT_2_EXAMPLE))


@pytest.mark.parametrize("data,message", [
    (format_2_changed(["frameworks", 0, "python"], KeyError),
     "frameworks[0].python: missing"),
    (format_2_changed(["frameworks", 0, "python"], "3.11.2"),
     "frameworks[0].python: '3.11.2' is not a 3.X Python version or null"),
    (format_2_changed(["frameworks", 0, "python"], 3.11),
     "frameworks[0].python: must be a string"),
    (format_2_changed(["frameworks", 3, "python"], "3.11"),
     "frameworks[3]: repeats flask 3.0.3 via venv under Python 3.11"),
    (encode(changed(["frameworks", 1, "via"], "conda")),
     "frameworks[1].via: 'conda' is not one of deb, pip, venv"),
    (encode(changed(["frameworks", 1, "python"], "3.11")),
     "frameworks[1].python: unknown key"),
], ids=["missing", "not-minor", "number", "repeat", "format-1-via",
        "format-1-python"])
def test_format_2_rejections_name_the_field(data, message):
    with pytest.raises(ReportError) as e:
        report.parse(data)
    assert message in str(e.value)


REJECTIONS = [
    (changed(["extra"], 1), "extra: unknown key"),
    (changed(["os", "kernel"], "6.1"), "os.kernel: unknown key"),
    (changed(["frameworks", 0, "path"], "/srv"),
     "frameworks[0].path: unknown key"),
    (changed(["date"], KeyError), "date: missing"),
    (changed(["frameworks", 1, "used"], KeyError),
     "frameworks[1].used: missing"),
    (changed(["format"], 3), "format: must be 1 or 2"),
    (changed(["format"], True), "format: must be 1 or 2"),
    (changed(["host_id"], "not-a-uuid"), "host_id: 'not-a-uuid' is not"),
    (changed(["host_id"], HOST.upper()), "host_id:"),
    (changed(["host_id"], 42), "host_id: must be a string"),
    (changed(["date"], "28/11/2026"), "date: '28/11/2026' is not a YYYY"),
    (changed(["date"], "2026-02-30"), "date: '2026-02-30' is not a calendar"),
    (changed(["client"], "latest"), "client: 'latest' is not"),
    (changed(["os"], "Debian 12"), "os: must be an object"),
    (changed(["os", "arch"], "AMD64; rm"), "os.arch:"),
    (changed(["os", "vendor"], "x" * 100), "os.vendor: longer than 64"),
    (changed(["virt"], "docker"), "virt: 'docker' is not one of"),
    (changed(["age"], 3), "age: 3 is not one of"),
    (changed(["pythons"], "3.11"), "pythons: must be a list"),
    (changed(["pythons"], ["3.11", "3.11"]), "pythons: has duplicates"),
    (changed(["pythons"], ["2.7"]), "pythons[0]: '2.7' is not"),
    (changed(["pythons"], [f"3.{i}" for i in range(20)]),
     "pythons: more than 16"),
    (changed(["frameworks"], {}), "frameworks: must be a list"),
    (changed(["frameworks", 0, "name"], "requests"),
     "frameworks[0].name: not a catalogue framework"),
    (changed(["frameworks", 0, "name"], "Django"),
     "frameworks[0].name: not a catalogue framework"),
    (changed(["frameworks", 0, "version"], "4.2.11+deb12u1"),
     "frameworks[0].version: '4.2.11+deb12u1' is not a normalised PEP 440"),
    (changed(["frameworks", 0, "version"], "four"),
     "frameworks[0].version: 'four' is not"),
    (changed(["frameworks", 0, "version"], "1." * 40 + "0"),
     "frameworks[0].version: longer than 64"),
    (changed(["frameworks", 0, "via"], "conda"),
     "frameworks[0].via: 'conda' is not one of deb, pip, venv"),
    (changed(["frameworks", 0, "envs"], 0), "frameworks[0].envs: must be"),
    (changed(["frameworks", 0, "envs"], True), "frameworks[0].envs: must be"),
    (changed(["frameworks", 0, "envs"], 1.5), "frameworks[0].envs: must be"),
    (changed(["frameworks", 0, "used"], "yes"),
     "frameworks[0].used: must be true, false or null"),
    (changed(["frameworks", 1], dict(DESIGN_EXAMPLE["frameworks"][0])),
     "frameworks[1]: repeats django 4.2.11 via deb"),
    (changed(["frameworks"], [
        {"name": "django", "version": f"1.{i}", "via": "pip", "envs": 1,
         "used": None} for i in range(300)]),
     "frameworks: more than 256"),
    ([1, 2], "document: must be a JSON object"),
]


@pytest.mark.parametrize("doc,message", REJECTIONS,
                         ids=[m.split(":")[0] + "-" + str(i)
                              for i, (_, m) in enumerate(REJECTIONS)])
def test_rejections_name_the_field(doc, message):
    with pytest.raises(ReportError) as e:
        report.parse(encode(doc))
    assert str(e.value).startswith(message)


def test_rejects_raw_documents():
    for data, message in [
            (b"\xff\xfe", "document: not UTF-8"),
            (b"{", "document: not JSON"),
            (b'{"format": 1, "format": 1}', "document: duplicate key 'format'"),
            (b" " * (64 * 1024 + 1), "document: 65537 bytes, over the 65536"),
            (encode({"format": 1, "host_id": HOST, "forget": False}),
             "forget: must be true"),
            (encode({"format": 1, "host_id": HOST, "forget": True, "x": 1}),
             "x: unknown key")]:
        with pytest.raises(ReportError, match="^" + message):
            report.parse(data)


def test_unknown_name_is_not_echoed():
    secret = "internal-billing-portal"
    with pytest.raises(ReportError) as e:
        report.parse(encode(changed(["frameworks", 0, "name"], secret)))
    assert secret not in str(e.value)


# -- properties ------------------------------------------------------------

versions = st.builds(
    lambda parts, pre: ".".join(map(str, parts)) + pre,
    st.lists(st.integers(0, 2000), min_size=1, max_size=4),
    st.sampled_from(["", "a1", "b2", "rc1", ".post1", ".dev3"]))

entries = st.builds(
    Entry, st.sampled_from(sorted(catalogue.frameworks())), versions,
    st.sampled_from(report.VIAS), st.integers(1, report.MAX_ENVS),
    st.sampled_from([True, False, None]),
    st.one_of(st.none(), st.integers(0, 99).map(lambda n: f"3.{n}")))

reports = st.builds(
    Report,
    host_id=st.uuids().map(str),
    date=st.dates().map(lambda d: d.isoformat()).filter(
        lambda d: len(d) == 10),
    client=versions,
    os=st.builds(OS, st.from_regex(r"[A-Za-z][A-Za-z0-9 ._+-]{0,20}",
                                   fullmatch=True),
                 st.from_regex(r"[0-9][0-9.]{0,5}", fullmatch=True),
                 st.sampled_from(["amd64", "arm64", "i386", "ppc64el"])),
    virt=st.sampled_from(report.VIRTS),
    age=st.sampled_from(report.AGES),
    pythons=st.sets(st.integers(0, 99).map(lambda n: f"3.{n}"),
                    max_size=5).map(lambda s: tuple(sorted(
                        s, key=lambda v: int(v[2:])))),
    frameworks=st.lists(entries, max_size=30, unique_by=lambda e: (
        e.name, e.version, e.via, e.python)).map(lambda es: tuple(sorted(
            es, key=Entry.sort_key))),
)


@settings(max_examples=300, database=None)
@given(reports)
def test_round_trip(r):
    r = report.from_dict(report.to_dict(r))   # normalises the versions
    assert report.parse(report.serialise(r)) == r


@settings(max_examples=300, database=None)
@given(reports, st.text(min_size=1, max_size=30))
def test_nothing_outside_the_catalogue_survives(r, name):
    doc = report.to_dict(r)
    doc["frameworks"].append({"name": name, "version": "1.0", "via": "pip",
                              "python": "3.11", "envs": 1, "used": None})
    if name in catalogue.frameworks():
        return
    with pytest.raises(ReportError, match="not a catalogue framework"):
        report.parse(encode(doc))
