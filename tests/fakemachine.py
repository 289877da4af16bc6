"""Whole fake machines in a directory, for `--root`: real files, no mocks."""

import os
import textwrap

from pyweb_popcon.root import Root

PYTHON = "3.11"


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

    def venv(self, system_path, dists=()):
        """A virtual environment with (name, version[, module]) dists."""
        _write(self.path(os.path.join(system_path, "pyvenv.cfg")),
               f"home = /usr/bin\nversion = {PYTHON}.2\n")
        site = os.path.join(system_path, f"lib/python{PYTHON}/site-packages")
        os.makedirs(self.path(site), exist_ok=True)
        for dist in dists:
            self.dist(site, *dist)
        return site
