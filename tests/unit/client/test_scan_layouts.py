"""Every install layout the scanner counts, planted one at a time on a
fake machine: what is planted is what must be found, with its via and its
Python; and what must never count, beside a control that does."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cli_run import SRC, run_cli
from fakemachine import SITE
from pyweb_popcon.client import places, scan, settings
from pyweb_popcon.common.conffile import ConfigError

HOMES = 'SCAN_HOMES="yes"\n'
LINK_SITE = "/srv/dev/venv/lib/python3.11/site-packages"

# (layout, what to plant, configuration, (name, version, via, python)):
# the planting and the expectation say the same thing in two ways.
LAYOUTS = [
    ("deb", lambda m: (m.deb("python3", "3.11.2-1+b1"),
                       m.deb("python3-flask", "2.2.2-3")),
     "", ("flask", "2.2.2", "deb", "3.11")),
    ("deb, no python3 package", lambda m: m.deb("python3-flask", "2.2.2-3"),
     "", ("flask", "2.2.2", "deb", None)),
    ("Debian's site, unowned", lambda m: (m.deb("python3", "3.11.2-1+b1"),
                                          m.dist(SITE, "Flask", "3.0.3")),
     "", ("flask", "3.0.3", "pip", "3.11")),
    ("/usr/local dist-packages",
     lambda m: m.dist("/usr/local/lib/python3.11/dist-packages", "Flask",
                      "3.0.3"),
     "", ("flask", "3.0.3", "pip", "3.11")),
    ("/usr/local site-packages (self-built CPython)",
     lambda m: m.dist("/usr/local/lib/python3.12/site-packages", "Flask",
                      "3.0.3"),
     "", ("flask", "3.0.3", "pip", "3.12")),
    ("prefix /opt/python3.12",
     lambda m: m.prefix("/opt/python3.12", [("Django", "5.0.1")], "3.12"),
     "", ("django", "5.0.1", "pip", "3.12")),
    ("pyenv-style version tree",
     lambda m: m.prefix("/opt/pyenv/versions/3.13.1", [("Django", "5.1")],
                        "3.13"),
     "", ("django", "5.1", "pip", "3.13")),
    ("venv", lambda m: m.venv("/srv/app/.venv", [("Django", "5.0.1")]),
     "", ("django", "5.0.1", "venv", "3.11")),
    ("venv at depth 6",
     lambda m: m.venv("/srv/a/b/c/d/e/venv", [("Django", "5.0.1")]),
     "", ("django", "5.0.1", "venv", "3.11")),
    ("pipx with PIPX_HOME=/opt/pipx",
     lambda m: m.venv("/opt/pipx/venvs/streamlit", [("streamlit", "1.35.0")],
                      "3.12"),
     "", ("streamlit", "1.35.0", "venv", "3.12")),
    ("conda base", lambda m: m.conda("/opt/miniconda3", [("Flask", "3.0.3")]),
     "", ("flask", "3.0.3", "conda", "3.11")),
    ("conda env below a base",
     lambda m: (m.conda("/opt/miniconda3"),
                m.conda("/opt/miniconda3/envs/web", [("gradio", "4.31.0")],
                        "3.10")),
     "", ("gradio", "4.31.0", "conda", "3.10")),
    ("pip --target, byte code of 3.11",
     lambda m: m.target("/srv/app/vendor", "Flask", "3.0.3", "flask", "3.11"),
     "", ("flask", "3.0.3", "target", "3.11")),
    ("pip --target, no byte code",
     lambda m: m.target("/srv/app/vendor", "Flask", "3.0.3", "flask"),
     "", ("flask", "3.0.3", "target", None)),
    ("egg-link (legacy editable)",
     lambda m: (m.venv("/srv/dev/venv"),
                m.source_tree("/srv/src/flask", "Flask", "3.1.0.dev0",
                              "flask"),
                m.egg_link(LINK_SITE, "Flask", "/srv/src/flask")),
     "", ("flask", "3.1.0.dev0", "venv", "3.11")),
    ("PEP 660 editable",
     lambda m: (m.venv("/srv/dev/venv"),
                m.pep660(LINK_SITE, "Flask", "3.1.0.dev0", "/srv/src/flask")),
     "", ("flask", "3.1.0.dev0", "venv", "3.11")),
    # -- homes, when chosen
    ("user site", lambda m: m.user_site("/home/alice", [("Flask", "3.0.3")]),
     HOMES, ("flask", "3.0.3", "user", "3.11")),
    ("root's user site",
     lambda m: m.user_site("/root", [("Flask", "3.0.3")], "3.12"),
     HOMES, ("flask", "3.0.3", "user", "3.12")),
    ("project venv in a home",
     lambda m: m.venv("/home/alice/src/github.com/org/web/.venv",
                      [("fastapi", "0.111.0")]),
     HOMES, ("fastapi", "0.111.0", "venv", "3.11")),
    ("pipx in a home",
     lambda m: m.venv("/home/alice/.local/share/pipx/venvs/streamlit",
                      [("streamlit", "1.35.0")]),
     HOMES, ("streamlit", "1.35.0", "venv", "3.11")),
    ("old pipx in a home",
     lambda m: m.venv("/home/alice/.local/pipx/venvs/streamlit",
                      [("streamlit", "1.35.0")]),
     HOMES, ("streamlit", "1.35.0", "venv", "3.11")),
    ("poetry's cache venvs",
     lambda m: m.venv("/home/alice/.cache/pypoetry/virtualenvs/web-AbC-py3.12",
                      [("Django", "5.0.1")], "3.12"),
     HOMES, ("django", "5.0.1", "venv", "3.12")),
    ("hatch's environments (depth 8)",
     lambda m: m.venv("/home/alice/.local/share/hatch/env/virtual/web/"
                      "AbCd1234/web", [("Django", "5.0.1")]),
     HOMES, ("django", "5.0.1", "venv", "3.11")),
    ("pyenv version in a home",
     lambda m: m.prefix("/home/alice/.pyenv/versions/3.12.1",
                        [("Flask", "3.0.3")], "3.12"),
     HOMES, ("flask", "3.0.3", "pip", "3.12")),
    ("pyenv-virtualenv env",
     lambda m: (m.prefix("/home/alice/.pyenv/versions/3.12.1", (), "3.12"),
                m.venv("/home/alice/.pyenv/versions/3.12.1/envs/web",
                       [("Flask", "3.0.3")], "3.12")),
     HOMES, ("flask", "3.0.3", "venv", "3.12")),
    ("miniconda env in a home",
     lambda m: (m.conda("/home/alice/miniconda3"),
                m.conda("/home/alice/miniconda3/envs/ml",
                        [("gradio", "4.31.0")], "3.10")),
     HOMES, ("gradio", "4.31.0", "conda", "3.10")),
]


def found(machine):
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    return [(e.name, e.version, e.via, e.envs, e.python) for e in entries]


@pytest.mark.parametrize("plant,conf,entry", [c[1:] for c in LAYOUTS],
                         ids=[c[0] for c in LAYOUTS])
def test_each_layout(machine, plant, conf, entry):
    plant(machine)
    machine.config(conf)
    name, version, via, python = entry
    assert found(machine) == [(name, version, via, 1, python)]


def test_home_layouts_are_not_counted_without_scan_homes(machine):
    for _, plant, conf, _ in LAYOUTS:
        if conf == HOMES:
            plant(machine)
    assert found(machine) == []


def test_a_venv_of_two_pythons_counts_under_each(machine):
    machine.venv("/srv/app/venv", [("Flask", "3.0.3")])
    machine.prefix("/srv/app/venv", [("Flask", "3.0.3")], "3.12",
                   binary=False)
    assert found(machine) == [("flask", "3.0.3", "venv", 1, "3.11"),
                              ("flask", "3.0.3", "venv", 1, "3.12")]


def test_a_venv_its_tool_tagged_as_a_cache_is_counted(machine):
    """virtualenv, uv, poetry, pdm and hatch write CACHEDIR.TAG into each
    venv they make (the zoo of real installers found it)."""
    machine.venv("/srv/app/.venv", [("Flask", "3.0.3")])
    machine.file("/srv/app/.venv/CACHEDIR.TAG",
                 "Signature: 8a477f597d28d172789f06886806bc55\n")
    assert found(machine) == [("flask", "3.0.3", "venv", 1, "3.11")]


def test_overlapping_scan_paths_count_a_place_once(machine):
    machine.venv("/srv/app/venv", [("Flask", "3.0.3")])
    machine.conda("/srv/app/conda", [("Flask", "3.0.3")])
    machine.config('SCAN_PATHS="/srv /srv/app /srv/app/venv"\n')
    assert found(machine) == [("flask", "3.0.3", "venv", 1, "3.11"),
                              ("flask", "3.0.3", "conda", 1, "3.11")]


def test_a_home_named_in_scan_paths_counts_once(machine):
    machine.venv("/home/alice/web/venv", [("Flask", "3.0.3")])
    machine.config(f'SCAN_PATHS="/srv /home/alice/web"\n{HOMES}')
    assert found(machine) == [("flask", "3.0.3", "venv", 1, "3.11")]


# -- never counted ----------------------------------------------------------

def _never(m):
    """Each place that must not count holds Django; Flask is the control
    beside it, in the same tree, that must."""
    dj = [("Django", "5.0.1", "dist-info", "django")]
    for top in ("/var/lib/docker/volumes/web/_data/venv",
                "/var/lib/containers/storage/vfs/dir/abc/venv",
                "/srv/overlay/l1/diff/venv",            # an overlay layer
                "/srv/proj/.tox/py311", "/srv/proj/.nox/tests",
                "/srv/proj/.git/venv", "/srv/proj/node_modules/x/venv",
                "/home/alice/.local/share/containers/storage/vfs/dir/venv",
                "/home/alice/.cache/uv/builds-v0/.tmpAbC",
                "/home/alice/.local/share/Trash/files/venv",
                "/srv/.Trash-1000/files/venv",
                "/srv/tagged-cache/venv"):
        m.venv(top, dj)
    m.file("/srv/tagged-cache/CACHEDIR.TAG",
           "Signature: 8a477f597d28d172789f06886806bc55\n")
    m.file("/srv/overlay/l1/work/.keep")
    # uv's unpacked wheels, with INSTALLER; pip's wheel cache; a build tree.
    m.target("/home/alice/.cache/uv/archive-v0/AbC", "Django", "5.0.1",
             "django", "3.11")
    m.target("/root/.cache/pip/wheels/ab/cd", "Django", "5.0.1", "django")
    os.remove(m.path("/root/.cache/pip/wheels/ab/cd/"
                     "Django-5.0.1.dist-info/INSTALLER"))
    m.file("/root/.cache/pip/wheels/ab/Django-5.0.1-py3-none-any.whl", "PK")
    m.dist("/srv/proj/build/bdist.linux-x86_64/wheel", "Django", "5.0.1",
           module="django")
    m.dist("/srv/proj/build/lib", "Django", "5.0.1", module="django")
    m.file("/srv/proj/dist/Django-5.0.1-py3-none-any.whl", "PK")
    # The controls.
    m.venv("/srv/proj/.venv", [("Flask", "3.0.3")])
    m.venv("/home/alice/.cache/pypoetry/virtualenvs/proj-py3.11",
           [("Flask", "3.0.3")])


def test_never_counted(machine):
    _never(machine)
    machine.config(f'SCAN_PATHS="/srv /var/lib"\n{HOMES}')
    assert found(machine) == [("flask", "3.0.3", "venv", 2, "3.11")]


# -- homes: chosen, or never looked at -------------------------------------

_WATCHED = """
import json, os, sys
seen = []
sys.addaudithook(lambda event, args: event in ("open", "os.scandir",
                                               "os.listdir")
                 and args and isinstance(args[0], (str, bytes))
                 and seen.append(os.fsdecode(args[0])))
from pyweb_popcon.client import scan, settings
from pyweb_popcon.client.paths import Root
root = Root(sys.argv[1])
entries, _ = scan.scan(root, settings.load(root))
print(json.dumps({"entries": [[e.name, e.version, e.via, e.envs, e.python]
                              for e in entries], "seen": seen}))
"""


def watched_scan(machine, wrapper=()):
    """(entries, every path opened or listed) of a scan in a fresh Python,
    started through `wrapper`."""
    done = subprocess.run([*wrapper, sys.executable, "-c", _WATCHED,
                           machine.top],
                          capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": SRC, "PATH": os.environ["PATH"],
                               "PYTHONDONTWRITEBYTECODE": "1"})
    result = json.loads(done.stdout)
    return [tuple(e) for e in result["entries"]], result["seen"]


def _homes_with_everything(m):
    for home in ("/home/alice", "/root"):
        m.user_site(home, [("Flask", "3.0.3")])
        m.venv(f"{home}/web/.venv", [("Django", "5.0.1")])
        m.venv(f"{home}/.local/share/pipx/venvs/st", [("streamlit", "1.35")])
    # Ways into a home from outside one: an egg-link and a PEP 660 install
    # whose source is there, and a scan path that is a link into one.
    site = m.venv("/srv/dev/venv")
    m.source_tree("/home/alice/src/flask", "Flask", "3.1.0.dev0", "flask")
    m.egg_link(site, "Flask", "/home/alice/src/flask")
    m.pep660(site, "Django", "5.1.dev0", "/home/alice/src/django")
    os.symlink("../home/alice", m.path("/srv/alice"))
    os.symlink("home/alice/web", m.path("/web-link"))


def test_without_scan_homes_nothing_in_a_home_is_listed_or_read(machine):
    _homes_with_everything(machine)
    # An environment and a prefix whose lib/ is a link into a home.
    for trick in ("/srv/trick-venv", "/srv/trick-prefix"):
        os.makedirs(machine.path(trick))
        os.symlink("../../home/alice/.local/lib",
                   machine.path(f"{trick}/lib"))
    machine.file("/srv/trick-venv/pyvenv.cfg")
    machine.config('SCAN_PATHS="/ /srv /web-link"\n')
    entries, seen = watched_scan(machine)
    assert entries == [("django", "5.1.dev0", "venv", 1, "3.11")]
    # By the name used, and by where it leads.
    homes = [p for p in seen for q in (p, os.path.realpath(p))
             if machine.root.system_path(q).startswith(("/home", "/root"))]
    assert homes == []
    assert machine.path("/srv/dev/venv/lib/python3.11/site-packages") in seen


def test_with_scan_homes_everything_in_homes_counts(machine):
    _homes_with_everything(machine)
    machine.config(HOMES)
    entries, _ = watched_scan(machine)
    assert entries == [("django", "5.0.1", "venv", 2, "3.11"),
                       ("django", "5.1.dev0", "venv", 1, "3.11"),
                       ("flask", "3.1.0.dev0", "venv", 1, "3.11"),
                       ("flask", "3.0.3", "user", 2, "3.11"),
                       ("streamlit", "1.35", "venv", 2, "3.11")]


def test_scan_exclude_wins_in_homes(machine):
    _homes_with_everything(machine)
    machine.config(f'{HOMES}SCAN_EXCLUDE="/root /home/alice/web"\n')
    entries, seen = watched_scan(machine)
    assert entries == [("django", "5.1.dev0", "venv", 1, "3.11"),
                       ("flask", "3.1.0.dev0", "venv", 1, "3.11"),
                       ("flask", "3.0.3", "user", 1, "3.11"),
                       ("streamlit", "1.35", "venv", 1, "3.11")]
    assert not [p for p in seen if machine.root.system_path(p).startswith(
        ("/root", "/home/alice/web"))]


@pytest.mark.parametrize("paths", ["/home", "/srv /home/alice/web", "/root"])
def test_a_scan_path_in_a_home_needs_scan_homes(machine, paths):
    conf = machine.config(f'SCAN_PATHS="{paths}"\n')
    with pytest.raises(ConfigError, match=f"{conf}:1: SCAN_PATHS: .*"
                       'SCAN_HOMES="yes"'):
        settings.load(machine.root)


def test_show_lists_homes_only_when_chosen(machine):
    machine.user_site("/home/alice", [("Flask", "3.0.3")])
    machine.venv("/srv/app/venv", [("Django", "5.0.1")])

    def shown():
        run = run_cli(["show", "--root", machine.top])
        assert run.code == 0, run.stderr
        return [(f["name"], f["via"]) for f in
                json.loads(run.stdout)["frameworks"]]

    assert shown() == [("django", "venv")]
    machine.config(HOMES)
    assert shown() == [("django", "venv"), ("flask", "user")]


# -- "used" where an editable install's code is ------------------------------

def _read_later(path):
    time.sleep(0.05)        # past the kernel's coarse timestamp tick
    with open(path, "rb") as f:
        f.read()


@pytest.mark.parametrize("kind", ["egg-link", "pep660", "pep660 src layout"])
def test_editable_used_looks_at_the_source(machine, kind):
    site = machine.venv("/srv/dev/venv")
    source = "/srv/src/flask"
    code = source + ("/src" if "src" in kind else "")
    machine.source_tree(code, "Flask", "3.1.0.dev0", "flask")
    if kind == "egg-link":
        machine.egg_link(site, "Flask", source)
    else:
        machine.pep660(site, "Flask", "3.1.0.dev0", source)
    pyc = machine.file(f"{code}/flask/__pycache__/__init__.cpython-311.pyc",
                       "x")
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert [e.used for e in entries] == [False]
    _read_later(pyc)
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert [e.used for e in entries] == [True]


# -- hostile trees stay bounded ---------------------------------------------

@pytest.fixture
def few_directories(monkeypatch):
    monkeypatch.setattr(places, "MAX_DIRECTORIES", 200)


def test_a_wide_tree_stops_at_the_cap_with_a_warning(machine, caplog,
                                                     few_directories):
    for i in range(400):
        os.makedirs(machine.path(f"/srv/{i}/x"))
    machine.venv("/opt/app/venv", [("Flask", "3.0.3")])
    # The cap is per scan path: /opt is still walked.
    assert found(machine) == [("flask", "3.0.3", "venv", 1, "3.11")]
    assert (f"{machine.path('/srv')}: stopped after listing 200 directories"
            in caplog.text)


def test_deep_trees_loops_and_fifos_do_not_hold_the_scan(machine):
    deep = "/srv/" + "/".join(["d"] * 200)
    os.makedirs(machine.path(deep))
    machine.venv(deep + "/venv", [("Django", "5.0.1")])
    os.symlink("..", machine.path("/srv/d/loop"))
    os.symlink(machine.path("/srv"), machine.path("/srv/d/d/up"))
    site = machine.venv("/srv/app/venv", [("Flask", "3.0.3")])
    # A FIFO where metadata is read would block an open() for ever.
    os.makedirs(machine.path(f"{site}/bottle.egg-info"))
    os.mkfifo(machine.path(f"{site}/bottle.egg-info/PKG-INFO"))
    os.mkfifo(machine.path(f"{site}/sanic.egg-link"))
    # And JSON nested past Python's recursion limit where a URL is read.
    meta = machine.pep660(site, "Django", "5.0.1", "/srv/src/django")
    with open(os.path.join(meta, "direct_url.json"), "w") as f:
        f.write("[" * 60000)
    signal.alarm(60)
    try:
        entries = found(machine)
    finally:
        signal.alarm(0)
    assert entries == [("django", "5.0.1", "venv", 1, "3.11"),
                       ("flask", "3.0.3", "venv", 1, "3.11")]


def test_unreadable_directories_are_skipped(machine):
    machine.venv("/srv/open/venv", [("Flask", "3.0.3")])
    machine.venv("/srv/closed/venv", [("Django", "5.0.1")])
    machine.venv("/srv/site-closed/venv", [("sanic", "23.12.1")])
    os.chmod(machine.path("/srv/closed"), 0)
    os.chmod(machine.path("/srv/site-closed/venv/lib/python3.11"), 0)
    # Root reads any directory: without its capabilities it reads as the
    # unit's user would.
    wrapper = ("setpriv", "--bounding-set=-all", "--inh-caps=-all", "--") \
        if os.geteuid() == 0 else ()
    try:
        entries, _ = watched_scan(machine, wrapper)
    finally:
        os.chmod(machine.path("/srv/closed"), 0o755)
        os.chmod(machine.path("/srv/site-closed/venv/lib/python3.11"), 0o755)
    assert entries == [("flask", "3.0.3", "venv", 1, "3.11")]
