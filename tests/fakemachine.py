"""Whole fake machines in a directory, for `--root`: real files, no mocks."""

import json
import os
import textwrap

from pyweb_popcon import report
from pyweb_popcon.client.paths import Root

PYTHON = "3.11"
# Appended to a configuration that says yes: a yes to the format sent now.
CONSENT = f'CONSENTED_FORMAT="{report.FORMAT}"\n'


def _write(path, text="", mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)
    return path


def status_paragraph(package, version, status="install ok installed",
                     arch="all"):
    return (f"Package: {package}\nStatus: {status}\nPriority: optional\n"
            f"Section: python\nMaintainer: Debian Python Team "
            f"<team+python@tracker.debian.org>\nArchitecture: {arch}\n"
            f"Version: {version}\nDescription: {package}\n "
            f"long description\n")


class FakeMachine:
    """A Debian-like tree: dpkg database, os-release, Pythons, config."""

    def __init__(self, top, arch="amd64"):
        self.top = str(top)
        self.root = Root(self.top)
        self.packages = [status_paragraph("dpkg", "1.21.22", arch=arch)]
        self.file("/etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 '
                  '(bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                  'VERSION_CODENAME=bookworm\nID=debian\n')
        self.file("/etc/dpkg/origins/default", "Vendor: Debian\n")
        self.file("/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
        self.file(f"/usr/bin/python{PYTHON}", "", mode=0o755)
        self.write_status()

    def path(self, system_path):
        return self.root.path(system_path)

    def file(self, system_path, text="", mode=None):
        return _write(self.path(system_path), text, mode)

    def config(self, text, name=None):
        path = (f"/etc/pyweb-popcon.conf.d/{name}" if name
                else "/etc/pyweb-popcon.conf")
        return self.file(path, textwrap.dedent(text))

    def write_status(self):
        self.file("/var/lib/dpkg/status", "\n".join(self.packages))

    def deb(self, package, version, status="install ok installed",
            files=()):
        """A package in the dpkg database, with its files and .list."""
        self.packages.append(status_paragraph(package, version, status))
        self.write_status()
        listed = {"/."}     # dpkg lists every directory a package has
        for f in files:
            self.file(f, "")
            listed.add(f)
            parent = os.path.dirname(f)
            while parent != "/":
                listed.add(parent)
                parent = os.path.dirname(parent)
        self.file(f"/var/lib/dpkg/info/{package}.list",
                  "".join(f"{f}\n" for f in sorted(listed)))

    def dist(self, site, name, version, kind="dist-info", module=None):
        """A distribution's metadata (and module) in a site directory."""
        site = self.path(site)
        if kind == "dist-info":
            meta = os.path.join(site, f"{name}-{version}.dist-info")
            _write(os.path.join(meta, "METADATA"),
                   f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        elif kind == "egg-info-file":
            meta = os.path.join(site, f"{name}-{version}-py{PYTHON}.egg-info")
            _write(meta, f"Metadata-Version: 1.1\nName: {name}\n"
                         f"Version: {version}\n")
        else:   # an egg-info directory without the version in its name
            meta = os.path.join(site, f"{name}.egg-info")
            _write(os.path.join(meta, "PKG-INFO"),
                   f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\n")
        if module:
            _write(os.path.join(site, module, "__init__.py"), "")
        return meta

    def venv(self, system_path, dists=(), python=PYTHON):
        """A virtual environment with (name, version[, module]) dists."""
        _write(self.path(os.path.join(system_path, "pyvenv.cfg")),
               f"home = /usr/bin\nversion = {python}.2\n")
        return self.prefix(system_path, dists, python, binary=False)

    def prefix(self, system_path, dists=(), python=PYTHON, binary=True):
        """A Python installed under a prefix (make install, a pyenv
        version): bin/pythonX.Y and lib/pythonX.Y/site-packages."""
        if binary:
            self.file(f"{system_path}/bin/python{python}", mode=0o755)
        site = os.path.join(system_path, f"lib/python{python}/site-packages")
        os.makedirs(self.path(site), exist_ok=True)
        for dist in dists:
            self.dist(site, *dist)
        return site

    def conda(self, system_path, dists=(), python=PYTHON):
        """A conda environment (or base): conda-meta/ beside the prefix."""
        self.file(f"{system_path}/conda-meta/history", "==> 2024-01-01 <==\n")
        return self.prefix(system_path, dists, python)

    def user_site(self, home, dists=(), python=PYTHON):
        """pip install --user's site in a home."""
        return self.prefix(f"{home}/.local", dists, python, binary=False)

    def target(self, system_path, name, version, module, python=None):
        """pip install --target: dist-info with INSTALLER, module, and its
        byte code as the installing `python` compiled it (if given)."""
        meta = self.dist(system_path, name, version, module=module)
        _write(os.path.join(meta, "INSTALLER"), "pip\n")
        if python:
            tag = python.replace(".", "")
            self.file(f"{system_path}/{module}/__pycache__/"
                      f"__init__.cpython-{tag}.pyc", "\0" * 16)
        return meta

    def source_tree(self, system_path, name, version, module):
        """A project's checkout with its egg-info, as setup.py develop
        leaves it."""
        self.file(f"{system_path}/{module}/__init__.py")
        self.file(f"{system_path}/{name}.egg-info/PKG-INFO",
                  f"Metadata-Version: 2.1\nName: {name}\n"
                  f"Version: {version}\n")
        return self.path(system_path)

    def egg_link(self, site, name, source):
        """A legacy editable install: NAME.egg-link naming the source."""
        self.file(f"{site}/{name}.egg-link", f"{source}\n.\n")
        self.file(f"{site}/easy-install.pth", f"{source}\n")

    def pep660(self, site, name, version, source):
        """A PEP 660 editable install: dist-info whose direct_url.json
        names the source directory."""
        meta = self.dist(site, name, version)
        _write(os.path.join(meta, "direct_url.json"),
               json.dumps({"url": f"file://{source}",
                           "dir_info": {"editable": True}}))
        return meta


# -- the machine the foundation issue describes, and what a scan finds ----

SITE = "/usr/lib/python3/dist-packages"
LOCAL = "/usr/local/lib/python3.11/dist-packages"
SECRET = "acme_internal_billing"


def build_machine(m):
    """The machine the foundation issue describes."""
    m.deb("python3-django", "3:4.2.11-1",
          files=[f"{SITE}/django/__init__.py",
                 f"{SITE}/Django-4.2.11.dist-info/METADATA"])
    m.dist(SITE, "Django", "4.2.11")                  # owned: not pip
    m.deb("python3-flask", "2.2.2-3", status="deinstall ok config-files")
    m.deb("python3-acme-secret", "1.0-1", files=[f"{SITE}/acme/__init__.py"])
    m.dist(SITE, "tornado", "6.4")                    # unowned: pip
    m.dist(LOCAL, "fastapi", "0.110.0", module="fastapi")
    m.dist(LOCAL, SECRET, "1.0")
    m.venv("/srv/app1/venv", [("Flask", "3.0.3", "dist-info", "flask"),
                              (SECRET, "2.0")])
    m.venv("/srv/app2/.venv", [("flask", "3.0.3"),
                               ("DjangoRestFramework", "3.14.0"),
                               ("web.py", "0.62")])
    m.venv("/opt/shop/venv", [("Django", "5.0.1"),
                              ("starlette", "0.37.2+corp.1")])
    m.venv("/var/www/legacy/env", [("Bottle", "0.12.19", "egg-info-file"),
                                   ("CherryPy", "18.1.0", "egg-info-dir")])
    m.venv("/srv/a/b/c/d/e/f/g/venv", [("flask", "9.9")])   # too deep
    os.symlink("../..", m.path("/srv/app1/loop"))
    os.symlink(m.path("/srv"), m.path("/opt/srv-link"))
    m.config('SCAN_PATHS="/srv /opt /var/www /nonexistent"\n')


EXPECTED = [
    ("bottle", "0.12.19", "venv", 1),
    ("cherrypy", "18.1.0", "venv", 1),
    ("django", "4.2.11", "deb", 1),
    ("django", "5.0.1", "venv", 1),
    ("djangorestframework", "3.14.0", "venv", 1),
    ("fastapi", "0.110.0", "pip", 1),
    ("flask", "3.0.3", "venv", 2),
    ("starlette", "0.37.2", "venv", 1),
    ("tornado", "6.4", "pip", 1),
    ("web-py", "0.62", "venv", 1),
]
