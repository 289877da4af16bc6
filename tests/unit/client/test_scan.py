"""The scanner on whole fake machines built under a temporary --root."""

import contextlib
import os
import subprocess
import time

import pytest

from fakemachine import EXPECTED, LOCAL, SECRET, SITE, build_machine
from pyweb_popcon.client import scan, settings
from pyweb_popcon.client.scan import AccessTimes, pep440, upstream_version


def summary(entries):
    return [(e.name, e.version, e.via, e.envs) for e in entries]


def test_whole_machine(machine):
    build_machine(machine)
    entries, arch = scan.scan(machine.root, settings.load(machine.root))
    assert summary(entries) == EXPECTED
    assert arch == "amd64"
    assert SECRET not in repr(entries)


def test_held_package_is_installed(machine):
    machine.deb("python3-django", "3:4.2.11-1", status="hold ok installed")
    machine.deb("python3-flask", "2.2.2-3", status="install ok unpacked")
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert summary(entries) == [("django", "4.2.11", "deb", 1)]


def test_scan_venvs_no(machine):
    build_machine(machine)
    machine.config('SCAN_VENVS="no"\n', name="50-no-venvs.conf")
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert {e.via for e in entries} == {"deb", "pip"}


def test_home_only_when_added(machine):
    machine.venv("/home/alice/proj/venv", [("sanic", "23.12.1")])
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert entries == ()
    machine.config('SCAN_PATHS="/srv /home"\nSCAN_HOMES="yes"\n')
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert summary(entries) == [("sanic", "23.12.1", "venv", 1)]


def test_empty_machine(machine):
    assert scan.scan(machine.root, settings.load(machine.root)) == ((), "amd64")


def test_no_dpkg_database(tmp_path):
    from fakemachine import FakeMachine
    m = FakeMachine(tmp_path)
    os.unlink(m.path("/var/lib/dpkg/status"))
    assert scan.scan(m.root, settings.load(m.root)) == ((), "")


@contextlib.contextmanager
def mounted_tmpfs(path, options="rw"):
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs",
                           path], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=True)


def test_stays_on_one_filesystem(machine):
    machine.venv("/srv/here/venv", [("flask", "3.0.3")])
    with mounted_tmpfs(machine.path("/srv/mnt")):
        machine.venv("/srv/mnt/venv", [("django", "5.0.1")])
        entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert summary(entries) == [("flask", "3.0.3", "venv", 1)]


def test_scan_path_that_is_itself_a_mount_is_scanned(machine):
    with mounted_tmpfs(machine.path("/srv")):
        machine.venv("/srv/app/venv", [("django", "5.0.1")])
        entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert summary(entries) == [("django", "5.0.1", "venv", 1)]


# -- the "used" vote ------------------------------------------------------------

def byte_code(machine, site, module):
    path = machine.path(f"{site}/{module}/__pycache__/__init__.cpython-311.pyc")
    machine.file(path[len(machine.top):], "\0" * 16)
    return path


def read_later(path):
    time.sleep(0.05)        # past the kernel's coarse timestamp tick
    with open(path, "rb") as f:
        f.read()


def test_used_when_byte_code_was_read_after_install(machine):
    site = "/srv/app/venv/lib/python3.11/site-packages"
    machine.venv("/srv/app/venv", [("Flask", "3.0.3", "dist-info", "flask"),
                                   ("Django", "5.0.1", "dist-info", "django")])
    read_later(byte_code(machine, site, "flask"))
    byte_code(machine, site, "django")        # compiled at install, never read
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert {e.name: e.used for e in entries} == {"flask": True,
                                                 "django": False}


def test_not_used_when_last_read_long_ago(machine):
    site = "/srv/app/venv/lib/python3.11/site-packages"
    machine.venv("/srv/app/venv", [("Flask", "3.0.3", "dist-info", "flask")])
    pyc = byte_code(machine, site, "flask")
    read_later(pyc)
    old = time.time() - 40 * 86400
    os.utime(pyc, (old, old))
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert entries[0].used is False


def test_single_module_framework(machine):
    site = "/srv/app/venv/lib/python3.11/site-packages"
    machine.venv("/srv/app/venv", [("bottle", "0.12.25")])
    read_later(machine.file(f"{site}/__pycache__/bottle.cpython-311.pyc", "x"))
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert entries[0].used is True


def test_one_used_environment_makes_the_entry_used(machine):
    for app in ("a", "b"):
        machine.venv(f"/srv/{app}/venv", [("Flask", "3.0.3", "dist-info",
                                            "flask")])
    read_later(byte_code(machine, "/srv/b/venv/lib/python3.11/site-packages",
                         "flask"))
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert summary(entries) == [("flask", "3.0.3", "venv", 2)]
    assert entries[0].used is True


def test_null_without_access_times(machine):
    with mounted_tmpfs(machine.path("/srv"), "noatime"):
        machine.venv("/srv/app/venv", [("Flask", "3.0.3", "dist-info",
                                        "flask")])
        read_later(byte_code(
            machine, "/srv/app/venv/lib/python3.11/site-packages", "flask"))
        entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert entries[0].used is None


def test_null_without_module_files(machine):
    machine.venv("/srv/app/venv", [("Flask", "3.0.3")])
    entries, _ = scan.scan(machine.root, settings.load(machine.root))
    assert entries[0].used is None


def test_mount_options_are_read(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "42 27 0:39 / /srv/cache rw,noatime - tmpfs tmpfs rw\n"
        "43 27 0:40 / /srv/My\\040Docs rw,noatime - tmpfs tmpfs rw\n"
        "44 27 0:41 / /srv/sandboxed ro,relatime - ext4 /dev/vda rw\n")
    access = AccessTimes(mountinfo=str(info))
    assert access.kept("/srv/app")
    assert not access.kept("/srv/cache/app")
    assert access.kept("/srv/cachet")
    assert not access.kept("/srv/My Docs/x")
    assert access.kept("/srv/sandboxed/app")     # read-only here only


# -- versions ---------------------------------------------------------------------

@pytest.mark.parametrize("debian,upstream", [
    ("3:4.2.11-0+deb12u1", "4.2.11"), ("2.2.2-3", "2.2.2"), ("1:0.62-4", "0.62"),
    ("18.8.0", "18.8.0"), ("1.0-rc1-2", "1.0-rc1")])
def test_upstream_version(debian, upstream):
    assert upstream_version(debian) == upstream


@pytest.mark.parametrize("installed,public", [
    ("2.0+dfsg", "2.0"), ("1.0~rc1", "1.0rc1"), ("4.2.11", "4.2.11"),
    ("0.37.2+corp.1", "0.37.2"), ("3.0.0.post1", "3.0.0.post1"),
    ("1.0_beta", "1.0b0"), ("2021.3-git-abc", "2021.3"), ("snapshot", None),
    ("V1.0", "1.0")])
def test_pep440(installed, public):
    assert pep440(installed) == public
