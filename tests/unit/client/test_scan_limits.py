"""SCAN_EXCLUDE and REPORT_USED on fake machines with real files.

What the scanner opens and lists is watched with an audit hook in a fresh
interpreter, so "never entered" is observed, not assumed.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from cli_run import SRC, run_cli
from fakemachine import EXPECTED, LOCAL, SITE, build_machine
from pyweb_popcon.client import scan, settings
from pyweb_popcon.common.conffile import ConfigError

_WATCHED = """
import json, os, sys
seen = []
sys.addaudithook(lambda event, args: event in ("open", "os.scandir",
                                               "os.listdir")
                 and args and args[0] is not None
                 and seen.append(os.fsdecode(args[0])))
from pyweb_popcon.client import scan, settings
from pyweb_popcon.client.paths import Root
root = Root(sys.argv[1])
entries, _ = scan.scan(root, settings.load(root))
print(json.dumps({"entries": [[e.name, e.version, e.via, e.envs, e.used]
                              for e in entries], "seen": seen}))
"""


def watched_scan(machine):
    """(entries as lists, every path opened or listed) of a scan."""
    done = subprocess.run([sys.executable, "-c", _WATCHED, machine.top],
                          capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": SRC, "PATH": os.environ["PATH"],
                               "PYTHONDONTWRITEBYTECODE": "1"})
    found = json.loads(done.stdout)
    return found["entries"], found["seen"]


def summary(entries):
    return [tuple(e[:4]) for e in entries]


def under(paths, directory):
    return [p for p in paths if p == directory
            or p.startswith(directory.rstrip("/") + "/")]


def test_an_excluded_directory_is_never_entered(machine):
    build_machine(machine)
    machine.config('SCAN_PATHS="/srv /opt /var/www"\n'
                   'SCAN_EXCLUDE="/srv/app2 /opt/shop/venv"\n')
    entries, seen = watched_scan(machine)
    want = [e for e in EXPECTED
            if e not in (("djangorestframework", "3.14.0", "venv", 1),
                         ("web-py", "0.62", "venv", 1),
                         ("django", "5.0.1", "venv", 1),
                         ("starlette", "0.37.2", "venv", 1))]
    want[want.index(("flask", "3.0.3", "venv", 2))] = ("flask", "3.0.3",
                                                       "venv", 1)
    assert summary(entries) == want
    assert under(seen, machine.path("/srv/app2")) == []
    assert under(seen, machine.path("/opt/shop/venv")) == []
    # The rest of the same scan paths was looked at.
    assert under(seen, machine.path("/srv/app1"))
    assert under(seen, machine.path("/opt/shop"))


def test_excluded_by_where_a_link_leads(machine):
    """A scan path that is a link into an excluded directory, and an
    excluded link, keep the directory out either way."""
    machine.venv("/srv/secret/venv", [("sanic", "23.12.1")])
    machine.venv("/data/www/venv", [("bottle", "0.12.25")])
    os.symlink("srv/secret", machine.path("/secret-link"))
    os.symlink("data/www", machine.path("/www-link"))
    machine.config('SCAN_PATHS="/secret-link /data"\n'
                   'SCAN_EXCLUDE="/srv/secret /www-link"\n')
    entries, seen = watched_scan(machine)
    assert entries == []
    assert under(seen, machine.path("/srv/secret")) == []
    assert under(seen, machine.path("/data/www")) == []


def test_excluded_site_directories(machine):
    build_machine(machine)
    machine.config('SCAN_EXCLUDE="/usr/local /usr/lib/python3"\n',
                   name="50-exclude.conf")
    entries, seen = watched_scan(machine)
    # Debian's package is still in the dpkg database, but its files are
    # not looked at for the vote; pip's are not looked at at all.
    assert ["django", "4.2.11", "deb", 1, None] in entries
    assert not [e for e in entries if e[2] == "pip"]
    assert under(seen, machine.path("/usr/local")) == []
    assert under(seen, machine.path("/usr/lib/python3")) == []


def test_excluded_dpkg_database(machine):
    build_machine(machine)
    machine.config('SCAN_EXCLUDE="/var/lib/dpkg"\n', name="50-exclude.conf")
    entries, seen = watched_scan(machine)
    assert not [e for e in entries if e[2] == "deb"]
    # Unowned or not, Debian's site cannot be told apart without it.
    assert ("tornado", "6.4", "pip", 1) not in summary(entries)
    assert ("fastapi", "0.110.0", "pip", 1) in summary(entries)
    assert under(seen, machine.path("/var/lib/dpkg")) == []


def test_report_used_no_sends_null_and_reads_no_access_time(machine):
    site = "/srv/app/venv/lib/python3.11/site-packages"
    machine.venv("/srv/app/venv", [("Flask", "3.0.3", "dist-info", "flask")])
    machine.dist(LOCAL, "fastapi", "0.110.0", module="fastapi")
    machine.deb("python3-django", "3:4.2.11-1",
                files=[f"{SITE}/django/__init__.py"])
    pyc = machine.file(f"{site}/flask/__pycache__/__init__.cpython-311.pyc",
                       "x")
    time.sleep(0.05)
    with open(pyc, "rb") as f:
        f.read()
    entries, _ = watched_scan(machine)
    assert {e[0]: e[4] for e in entries}["flask"] is True
    machine.config('REPORT_USED="no"\n')
    entries, seen = watched_scan(machine)
    assert [e[4] for e in entries] == [None, None, None]
    assert "/proc/self/mountinfo" not in seen


def test_show_reflects_both(machine):
    build_machine(machine)
    machine.config('SCAN_PATHS="/srv /opt /var/www"\nREPORT_USED="no"\n'
                   'SCAN_EXCLUDE="/var/www"\n')
    run = run_cli(["show", "--root", machine.top])
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    names = {f["name"] for f in doc["frameworks"]}
    assert "django" in names and not names & {"bottle", "cherrypy"}
    assert {f["used"] for f in doc["frameworks"]} == {None}


def test_defaults_change_nothing(machine):
    build_machine(machine)
    conf = settings.load(machine.root)
    assert conf["SCAN_EXCLUDE"] == () and conf["REPORT_USED"] is True
    entries, _ = scan.scan(machine.root, conf)
    assert [(e.name, e.version, e.via, e.envs) for e in entries] == EXPECTED


@pytest.mark.parametrize("line,message", [
    ('SCAN_EXCLUDE="srv/secret"', "SCAN_EXCLUDE: expected an absolute path"),
    ('REPORT_USED="sometimes"', "REPORT_USED: expected yes or no"),
])
def test_bad_values_name_the_line(machine, line, message):
    path = machine.config(f"\n{line}\n")
    with pytest.raises(ConfigError, match=f"{path}:2: {message}"):
        settings.load(machine.root)
