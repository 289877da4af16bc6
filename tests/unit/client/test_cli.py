"""show and status as an administrator runs them: real processes."""

import json
import os
import tempfile

import pytest

from cli_run import run_cli
from fakemachine import CONSENT, EXPECTED, SECRET, FakeMachine, build_machine
from pyweb_popcon.client import hostid


def tree_state(top):
    """Every path under top with its mode, size and modification time."""
    found = {}
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            found[path] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def summary(doc):
    return [(f["name"], f["version"], f["via"], f["envs"])
            for f in doc["frameworks"]]


@pytest.fixture
def public_machine():
    """A fake machine that an unprivileged user can read."""
    with tempfile.TemporaryDirectory(prefix="pyweb-popcon-test-") as top:
        os.chmod(top, 0o755)
        yield FakeMachine(os.path.join(top, "root"))


def test_show_prints_the_report_and_writes_nothing(machine):
    build_machine(machine)
    machine.config('PARTICIPATE="no"\nSCAN_PATHS="/srv /opt /var/www"\n')
    before = tree_state(machine.top)
    run = run_cli(["show", "--root", machine.top])
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert summary(doc) == EXPECTED
    assert doc["host_id"] is None
    assert doc["os"] == {"vendor": "Debian", "release": "12", "arch": "amd64"}
    assert doc["virt"] == "none" and doc["pythons"] == ["3.11"]
    assert "host_id is null: no host ID yet" in run.stderr
    assert SECRET not in run.stdout + run.stderr
    assert tree_state(machine.top) == before
    assert run.socket_events == []


def test_show_with_a_host_id_is_a_valid_report(machine):
    from pyweb_popcon import report
    build_machine(machine)
    made = hostid.ensure(machine.root)
    run = run_cli(["--root", machine.top, "show", "--virt", "vm"])
    parsed = report.parse(run.stdout.encode())
    assert parsed.host_id == made.host_id
    assert parsed.virt == "vm" and parsed.age == "1"
    assert run.stderr == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to nobody needs root")
def test_show_as_an_unprivileged_user(public_machine):
    m = public_machine
    build_machine(m)
    m.venv("/srv/private/venv", [("sanic", "23.12.1")])
    os.chmod(m.path("/srv/private"), 0)
    hostid.ensure(m.root)                 # 0600, root's
    run = run_cli(["show", "--root", m.top, "-v"], user="nobody")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert summary(doc) == EXPECTED
    assert doc["host_id"] is None
    assert "readable by root only" in run.stderr
    assert f"skipping {m.path('/srv/private')}: Permission denied" \
        in run.stderr
    assert run.socket_events == []


def test_show_config_error_exits_78(machine):
    path = machine.config('PARTICIPATE="perhaps"\n')
    run = run_cli(["show", "--root", machine.top])
    assert run.code == 78
    assert f"{path}:1: PARTICIPATE: expected yes or no" in run.stderr
    assert run.stdout == ""


def test_status_not_participating_by_default(machine):
    run = run_cli(["status", "--root", machine.top])
    assert run.code == 0
    assert run.stdout.splitlines()[0].startswith(
        "Participating: no (PARTICIPATE is no (default)")
    assert "Configuration read: none" in run.stdout
    assert "Host ID: none (no host ID yet" in run.stdout
    assert run.socket_events == []


def test_status_participating_and_do_not_track(machine):
    conf = machine.config('PARTICIPATE="yes"\n' + CONSENT)
    dropin = machine.config('USE_TOR="no"\n', name="10-site.conf")
    made = hostid.ensure(machine.root)
    run = run_cli(["status", "--root", machine.top])
    assert f"Participating: yes (PARTICIPATE is yes ({conf}:1))" in run.stdout
    assert f"Configuration read: {conf}, {dropin}" in run.stdout
    assert f"Host ID: {made.host_id}" in run.stdout
    run = run_cli(["status", "--root", machine.top],
                  env={"DO_NOT_TRACK": "1"})
    assert "Participating: no (DO_NOT_TRACK is set" in run.stdout


def test_help_lists_the_commands():
    run = run_cli(["--help"])
    assert run.code == 0
    assert "show" in run.stdout and "status" in run.stdout
