"""A machine with web frameworks installed every way people install them.

build(top) lays out, under a --root tree, what issue 20 lists: Debian's
package, pip system-wide, venvs from each tool, conda, pip --target and
--user, editable installs old and new, pipx, pyenv, poetry's cache, and
in homes; and beside them what must never count (container storage, a
build tree, caches, Trash, SCAN_EXCLUDE).  The real installers make each:
dpkg, Debian's pip 23.0.1, and pip, uv, poetry, pdm, hatch, pipx and
virtualenv from PyPI, each installed once into a cached venv of its own;
the frameworks' wheels, sdists and the .deb are fetched once into CACHE,
and every install reads them from there with no index.

What each layout holds is the oracle's word, not the scanner's: the
environment's own interpreter listing its distributions with
importlib.metadata, `pip list --path` for a site with no interpreter of
its own, dpkg-query for the dpkg database; a site's Python is the one
that installed into it, or the one it is laid out for.  Two layouts
cannot be made for real here, and are emulated with the real pip into
the tree such a Python would have: a self-built CPython or a pyenv
version (no compiler run within CI's time; a Python other than Debian's
3.11 gets its site from `pip install --target --python-version`), and
conda (no conda channel is reachable: conda-meta/ is written as conda
writes it, the framework installed with pip, as people do inside conda
environments).
"""

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import Version

from pyweb_popcon import catalogue

CACHE = "/var/cache/pyweb-popcon-tests/zoo"
SYSTEM_PYTHON = "/usr/bin/python3"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# Each in a venv of its own, as pipx would: their dependencies differ.
# pdm 2.29.4 allows hishel 2, which it cannot use.
TOOLS = {"pip": ("pip==26.3",), "uv": ("uv==0.13.9",),
         "poetry": ("poetry==2.5.1",), "pipx": ("pipx==1.18.4",),
         "pdm": ("pdm==2.29.4", "hishel==1.4.0"),
         "hatch": ("hatch==1.18.2",), "virtualenv": ("virtualenv==21.15.14",)}
# Small wheels without dependencies, a version of its own for each layout
# and control, so that a count in the wrong place shows; and what pip
# needs to upgrade itself and build an editable install.
WHEELS = (
    *(f"bottle=={v}" for v in ("0.12.16", "0.12.17", "0.12.18", "0.12.19",
                               "0.12.20", "0.12.21", "0.13.0", "0.13.1",
                               "0.13.2", "0.13.3", "0.13.4")),
    *(f"falcon=={v}" for v in ("4.0.0", "4.0.1", "4.0.2", "4.1.0", "4.2.0",
                               "4.3.0", "4.3.1", "4.4.0")),
    *(f"tornado=={v}" for v in ("6.2", "6.3", "6.3.3", "6.4", "6.4.1",
                                "6.5", "6.5.1", "6.5.2", "6.5.3", "6.5.4",
                                "6.5.5")),
    "pip==26.3", "setuptools==84.2.1")
# Built from source: an editable install needs the tree, and pip's cache
# keeps only the wheels it builds.
SDISTS = ("bottle==0.12.22", "bottle==0.12.24", "bottle==0.12.25",
          "bottle==0.13.5")
# Falcon's compiled wheels are 12 MB: its pure-Python one instead.
PURE = {"falcon"}
# The framework's package, then the system Python it depends on (in that
# order: the interpreter is left out, so its postinst must not find
# py3compile yet).
DEBS = ("python3-bottle", "python3-minimal", "python3")
USER = ("alice", 1000)          # a user with a 0700 home, as adduser makes
# SCAN_EXCLUDE in every run of the test: a venv below each.
EXCLUDED = ("/srv/excluded", f"/home/{USER[0]}/scratch")


@dataclass
class Layout:
    """One way of installing, where it put things, and what it holds.

    `expected` is {(framework, version, via, python)} for a layout that
    counts; for a control (`control`) it is what it holds, as
    {(framework, version)}, none of which may be counted from there."""
    name: str
    path: str
    expected: frozenset
    home: bool = False
    control: bool = False


# -- the cache: tools, wheels, sdists and the .deb, fetched once -------------

def _run(command, env=None, cwd=None):
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600)
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, command))} exited "
                           f"{done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def _online():
    """An environment for reaching PyPI: this machine's pip.conf aside."""
    return {"PATH": PATH, "HOME": CACHE, "LC_ALL": "C.UTF-8",
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_RETRIES": "5"}


def _tools():
    """The tools' venvs, made once per pin."""
    directory = os.path.join(CACHE, "tools")
    for name, specs in TOOLS.items():
        venv = os.path.join(directory, _venv_name(specs))
        if not os.path.exists(os.path.join(venv, ".complete")):
            shutil.rmtree(venv, ignore_errors=True)
            _run([SYSTEM_PYTHON, "-m", "venv", venv])
            _run([f"{venv}/bin/pip", "install", "-q", *specs], env=_online())
            open(os.path.join(venv, ".complete"), "w").close()
    return directory


def _venv_name(specs):
    return "+".join(s.replace("==", "-") for s in specs)


def _tool(tools, name):
    return os.path.join(tools, _venv_name(TOOLS[name]), "bin", name)


def _fetched(directory, spec, suffixes):
    name, version = spec.split("==")
    return any(glob.glob(os.path.join(directory, f"{name}-{version}{s}"))
               for s in suffixes)


def _wheels(tools):
    directory = os.path.join(CACHE, "wheels")
    os.makedirs(directory, exist_ok=True)
    pure = ("--platform", "any", "--implementation", "py",
            "--python-version", "3.11")
    for spec in WHEELS:
        if not _fetched(directory, spec, ("-*.whl",)):
            _run([_tool(tools, "pip"), "download", "-q", "--no-deps",
                  "--only-binary", ":all:", "-d", directory, spec,
                  *(pure if spec.split("==")[0] in PURE else ())],
                 env=_online())
    return directory


def _sdists(tools):
    directory = os.path.join(CACHE, "sdists")
    os.makedirs(directory, exist_ok=True)
    for spec in SDISTS:
        if not _fetched(directory, spec, (".tar.gz",)):
            _run([_tool(tools, "pip"), "download", "-q", "--no-deps",
                  "--no-binary", ":all:", "-d", directory, spec],
                 env=_online())
    return directory


def _debs():
    """The .deb files of DEBS, in that order."""
    directory = os.path.join(CACHE, "debs")
    os.makedirs(directory, exist_ok=True)

    def found():
        return [next(iter(glob.glob(os.path.join(directory,
                                                 f"{package}_*.deb"))), None)
                for package in DEBS]
    if None in found():
        try:
            _run(["apt-get", "download", "-q", *DEBS], cwd=directory)
        except RuntimeError:        # no package lists yet on a new machine
            _run(["apt-get", "update", "-q"])
            _run(["apt-get", "download", "-q", *DEBS], cwd=directory)
    return found()


def cache():
    """(tool venvs, wheel directory, sdist directory, .debs), fetched
    once."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tools = _tools()
        return tools, _wheels(tools), _sdists(tools), _debs()


# -- the oracle --------------------------------------------------------------

_LIST = ("import importlib.metadata as m, json, sys; print(json.dumps("
         "[sys.version_info[:2], [[d.metadata['Name'], d.version] "
         "for d in m.distributions()]]))")


def _framework(name, version):
    """(catalogue name, public version), or None for a non-catalogue dist."""
    framework = catalogue.by_distribution().get(canonicalize_name(name))
    return framework and (framework.name, Version(version).public)


def interpreter_holds(python):
    """(python "3.X", {(framework, version)}) as the environment's own
    interpreter lists its distributions (importlib.metadata, -I: nothing
    from this process's environment on its path)."""
    (major, minor), dists = json.loads(_run([python, "-I", "-c", _LIST],
                                            env={"PATH": PATH}))
    found = {_framework(n, v) for n, v in dists} - {None}
    return f"{major}.{minor}", found


def site_holds(site):
    """{(framework, version)} in a site directory, as `pip list --path`
    (Debian's pip) lists it."""
    listed = json.loads(_run([SYSTEM_PYTHON, "-m", "pip", "list", "--path",
                              site, "--format", "json"],
                             env={"PATH": PATH, "PIP_CONFIG_FILE": os.devnull,
                                  "PIP_DISABLE_PIP_VERSION_CHECK": "1"}))
    return {_framework(d["name"], d["version"]) for d in listed} - {None}


def dpkg_python(top):
    """The system Python, "3.X", as dpkg says python3's version is."""
    version = _run(["dpkg-query", f"--root={top}", "-W", "-f=${Version}",
                    "python3"])
    return ".".join(version.split(".")[:2])


def dpkg_holds(top):
    """{(framework, upstream version)} dpkg says is installed under `top`."""
    out = _run(["dpkg-query", f"--root={top}", "-W",
                "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n"])
    found = set()
    for line in out.splitlines():
        package, version, status = line.split("\t")
        framework = catalogue.by_debian_package().get(package)
        if framework and status.strip() == "ii":
            upstream = version.split(":")[-1].rsplit("-", 1)[0]
            found.add((framework.name, Version(upstream).public))
    return found


def files_hold(directory):
    """{(framework, version)} that a tree's files hold, by their names:
    dist-info and egg-info directories, wheels and built archives (an
    egg-info without a version in its name by its PKG-INFO)."""
    found = set()
    for place, dirs, files in os.walk(directory):
        for entry in dirs + files:
            if not entry.endswith((".dist-info", ".egg-info", ".tar.gz",
                                   ".whl")):
                continue
            named = re.match(r"([^-]+)-([0-9]+(\.[0-9]+)*)", entry)
            if named:
                found.add(_framework(*named.group(1, 2)))
            elif entry.endswith(".egg-info"):
                with open(os.path.join(place, entry, "PKG-INFO")) as f:
                    version = next(line.split(":")[1].strip() for line in f
                                   if line.startswith("Version:"))
                found.add(_framework(entry.split(".")[0], version))
    return found - {None}


def _entries(held, via, python):
    return frozenset((name, version, via, python) for name, version in held)


# -- the zoo -----------------------------------------------------------------

class Zoo:
    """Builds the layouts under `top`, one method each."""

    def __init__(self, top, scratch):
        self.top = str(top)
        self.scratch = str(scratch)
        self.tools, self.wheels, self.sdists, self.debs = cache()
        self.alice = f"/home/{USER[0]}"
        self.layouts = []

    def path(self, system_path):
        return os.path.join(self.top, system_path.lstrip("/"))

    def env(self, home=None, **extra):
        """The installers' environment: no index, the cached wheels, pip's
        and uv's caches in alice's home; HOME outside the tree unless a
        layout is a user's."""
        return {"PATH": PATH, "LC_ALL": "C.UTF-8",
                "HOME": self.path(home) if home else
                os.path.join(self.scratch, "home"),
                "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
                "PIP_FIND_LINKS": self.wheels, "PIP_NO_INPUT": "1",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PIP_CACHE_DIR": self.path(f"{self.alice}/.cache/pip"),
                "UV_CACHE_DIR": self.path(f"{self.alice}/.cache/uv"),
                "UV_OFFLINE": "1", "UV_FIND_LINKS": self.wheels,
                "UV_PYTHON_DOWNLOADS": "never", "UV_LINK_MODE": "copy",
                "UV_NO_CONFIG": "1",
                "VIRTUALENV_NO_PERIODIC_UPDATE": "1",
                "PDM_CHECK_UPDATE": "false", **extra}

    def run(self, *command, home=None, cwd=None, **extra):
        return _run(list(command), env=self.env(home, **extra),
                    cwd=cwd and self.path(cwd))

    def tool(self, name):
        return _tool(self.tools, name)

    def add(self, name, path, held, via, python, home=False):
        self.layouts.append(Layout(name, path, _entries(held, via, python),
                                   home=home))
        self.check(name, held)

    def check(self, name, held):
        """A layout holds something, and what no other layout holds: a
        count in the wrong place cannot hide."""
        if not held:
            raise RuntimeError(f"{name}: its oracle lists no framework")
        for other in self.layouts[:-1]:
            if not other.control and {k[:2] for k in other.expected} & held:
                raise RuntimeError(f"{name} holds what {other.name} holds")

    def add_env(self, name, path, via="venv", home=False):
        """A layout with an interpreter of its own: ask it."""
        python, held = interpreter_holds(self.path(f"{path}/bin/python"))
        self.add(name, path, held, via, python, home)

    def control(self, name, path, held):
        self.layouts.append(Layout(name, path, frozenset(held),
                                   control=True))
        if not held:
            raise RuntimeError(f"{name}: holds no framework")

    def build(self):
        self.machine()
        for step in (self.deb_package, self.debian_site, self.usr_local,
                     self.self_built, self.prefixes, self.stdlib_venv,
                     self.virtualenv, self.uv_venv, self.uv_project,
                     self.poetry_project, self.pdm_project,
                     self.hatch_project, self.pipx_global, self.conda,
                     self.targets, self.egg_link, self.pep660,
                     self.user_sites, self.user_tools, self.user_pyenv,
                     self.home_project, self.containers, self.trash,
                     self.build_tree, self.excluded, self.caches):
            step()
        self.homes()
        return self.layouts

    # -- the machine itself --------------------------------------------------

    def machine(self):
        """A Debian 12 tree: dpkg's database, Python 3.11, what the
        packages' maintainer scripts run (dpkg runs them chrooted: sh and
        a few commands), alice's account."""
        from fakemachine import FakeMachine
        FakeMachine(self.top)           # os-release, dpkg status, python3.11
        for d in ("/var/lib/dpkg/info", "/var/lib/dpkg/updates", "/dev",
                  "/usr/lib64", "/usr/lib/python3/dist-packages", self.alice,
                  "/root"):
            os.makedirs(self.path(d), exist_ok=True)
        open(self.path("/var/lib/dpkg/available"), "w").close()
        for link, target in (("bin", "usr/bin"), ("lib", "usr/lib"),
                             ("lib64", "usr/lib64")):
            os.symlink(target, self.path(link))
        os.symlink("dash", self.path("/usr/bin/sh"))
        for command in ("dash", "rm", "mkdir", "cat", "sed"):
            self.copy_in(f"/usr/bin/{command}")
            for word in _run(["ldd", f"/usr/bin/{command}"]).split():
                if word.startswith("/"):
                    self.copy_in(word)
        os.mknod(self.path("/dev/null"), 0o666 | 0o020000,
                 os.makedev(1, 3))
        name, uid = USER
        with open(self.path("/etc/passwd"), "w") as f:
            f.write(f"root:x:0:0:root:/root:/bin/bash\n"
                    f"{name}:x:{uid}:{uid}::{self.alice}:/bin/bash\n")

    def copy_in(self, path):
        """A file of this machine into the tree, its symbolic links too."""
        while not os.path.lexists(self.path(path)):
            os.makedirs(os.path.dirname(self.path(path)), exist_ok=True)
            if not os.path.islink(path):
                shutil.copy(path, self.path(path))
                return
            link = os.readlink(path)
            os.symlink(link, self.path(path))
            path = os.path.normpath(os.path.join(os.path.dirname(path), link))

    def homes(self):
        """Homes as Debian 12's adduser leaves them: 0700, the user's."""
        name, uid = USER
        home = self.path(self.alice)
        for directory, dirs, files in os.walk(home):
            for entry in dirs + files:
                os.lchown(os.path.join(directory, entry), uid, uid)
        os.chown(home, uid, uid)
        os.chmod(home, 0o700)
        os.chmod(self.path("/root"), 0o700)

    # -- Debian's own places -------------------------------------------------

    def deb_package(self):
        """The framework's package and python3, by dpkg; the interpreter
        and the rest of what they depend on are left out."""
        for deb in self.debs:
            _run(["dpkg", f"--root={self.top}", "--force-depends", "-i",
                  deb])
        self.add("Debian package (dpkg --root)",
                 "/usr/lib/python3/dist-packages", dpkg_holds(self.top),
                 "deb", dpkg_python(self.top))

    def debian_site(self):
        """Files no package owns in Debian's own site, as pip leaves them
        with Debian's install layout (DEB_PYTHON_INSTALL_LAYOUT=deb)."""
        site = "/usr/lib/python3/dist-packages"
        self.run(SYSTEM_PYTHON, "-m", "pip", "install", "-q", "--root",
                 self.top, "--prefix", "/usr", "tornado==6.2",
                 DEB_PYTHON_INSTALL_LAYOUT="deb")
        held = site_holds(self.path(site)) - dpkg_holds(self.top)
        self.add("Debian's pip into Debian's site, no package owning it",
                 site, held, "pip", dpkg_python(self.top))

    def usr_local(self):
        site = "/usr/local/lib/python3.11/dist-packages"
        self.run(SYSTEM_PYTHON, "-m", "pip", "install", "-q", "--root",
                 self.top, "--break-system-packages", "tornado==6.3")
        self.add("Debian's pip system-wide (pip --root)", site,
                 site_holds(self.path(site)), "pip", "3.11")

    def prefix(self, prefix, spec, version="3.11"):
        """A Python installed under `prefix` (emulated: its landmarks), and
        pip's install into its site: --prefix where it is this Python's
        version, else --target with --python-version."""
        os.makedirs(self.path(f"{prefix}/bin"), exist_ok=True)
        with open(self.path(f"{prefix}/bin/python{version}"), "w"):
            pass
        os.chmod(self.path(f"{prefix}/bin/python{version}"), 0o755)
        site = f"{prefix}/lib/python{version}/site-packages"
        if version == "3.11":
            self.run(self.tool("pip"), "install", "-q", "--prefix",
                     self.path(prefix), spec)
        else:
            self.run(self.tool("pip"), "install", "-q", "--no-compile",
                     "--target", self.path(site), "--python-version",
                     version, "--only-binary", ":all:", spec)
        shutil.copy("/usr/lib/python3.11/os.py",
                    self.path(f"{prefix}/lib/python{version}/os.py"))
        return site

    def self_built(self):
        site = self.prefix("/usr/local", "falcon==4.0.0")
        self.add("self-built CPython's pip in /usr/local (emulated)", site,
                 site_holds(self.path(site)), "pip", "3.11")

    def prefixes(self):
        site = self.prefix("/opt/python3.11", "falcon==4.0.1")
        self.add("Python prefix /opt/python3.11 (emulated)", site,
                 site_holds(self.path(site)), "pip", "3.11")
        site = self.prefix("/opt/pyenv/versions/3.12.8", "falcon==4.0.2",
                           "3.12")
        self.add("pyenv version under /opt (emulated)", site,
                 site_holds(self.path(site)), "pip", "3.12")

    # -- environments by each tool, under the scan paths ---------------------

    def stdlib_venv(self):
        venv = "/srv/app/venv"
        self.run(SYSTEM_PYTHON, "-m", "venv", self.path(venv))
        self.run(self.path(f"{venv}/bin/pip"), "install", "-q",
                 "bottle==0.12.16")
        self.add_env("python3 -m venv, its pip", venv)

    def virtualenv(self):
        venv = "/srv/blog/env"
        self.run(self.tool("virtualenv"), "-q", "-p", SYSTEM_PYTHON,
                 self.path(venv))
        self.run(self.path(f"{venv}/bin/pip"), "install", "-q",
                 "bottle==0.12.17")
        self.add_env("virtualenv", venv)

    def uv(self, venv, spec):
        """uv venv, then uv pip install into it."""
        self.run(self.tool("uv"), "venv", "-q", "-p", SYSTEM_PYTHON, venv)
        self.run(self.tool("uv"), "pip", "install", "-q", "-p",
                 f"{venv}/bin/python", spec)
        return venv

    def uv_venv(self):
        self.uv(self.path("/srv/api/.venv"), "bottle==0.12.18")
        self.add_env("uv venv + uv pip install", "/srv/api/.venv")

    def uv_project(self):
        project = "/srv/uvapp"
        self.run(self.tool("uv"), "init", "-q", "--python", SYSTEM_PYTHON,
                 self.path(project))
        self.run(self.tool("uv"), "add", "-q", "tornado==6.3.3",
                 cwd=project)
        self.add_env("uv init + uv add", f"{project}/.venv")

    def poetry_project(self):
        """Poetry resolves from indexes it reaches over HTTP only: the
        framework is added as the cached wheel's path."""
        project = "/srv/shop"
        os.makedirs(self.path(project))
        self.run(self.tool("poetry"), "init", "-n", "--name", "shop",
                 cwd=project)
        self.run(self.tool("poetry"), "add", "-n", self.wheel("bottle",
                                                              "0.12.19"),
                 cwd=project, POETRY_VIRTUALENVS_IN_PROJECT="true")
        self.add_env("poetry, in-project venv", f"{project}/.venv")

    def wheel(self, name, version):
        return glob.glob(os.path.join(self.wheels,
                                      f"{name}-{version}-*.whl"))[0]

    def pdm_project(self):
        project = "/srv/pdmapp"
        os.makedirs(self.path(project))
        self.run(self.tool("pdm"), "init", "-n", "--python", SYSTEM_PYTHON,
                 cwd=project)
        with open(self.path(f"{project}/pyproject.toml"), "a") as f:
            f.write(f'\n[[tool.pdm.source]]\nname = "pypi"\n'
                    f'url = "file://{self.wheels}"\ntype = "find_links"\n')
        self.run(self.tool("pdm"), "add", "falcon==4.1.0", cwd=project)
        self.add_env("pdm", f"{project}/.venv")

    def hatch_project(self):
        project = "/srv/hatchapp"
        # No license in the template: hatch would fetch its text, and
        # wait for a DNS answer that never comes here.
        config = os.path.join(self.scratch, "hatch.toml")
        with open(config, "w") as f:
            f.write('[template]\nname = "Alice"\nemail = "alice@example.org"'
                    '\n[template.licenses]\nheaders = false\ndefault = []\n')
        self.run(self.tool("hatch"), "new", "hatchapp", self.path(project),
                 HATCH_CONFIG=config)
        with open(self.path(f"{project}/pyproject.toml"), "a") as f:
            f.write('\n[tool.hatch.envs.default]\npath = ".venv"\n'
                    'skip-install = true\ndependencies = ["falcon==4.2.0"]\n')
        self.run(self.tool("hatch"), "env", "create", cwd=project,
                 HATCH_CONFIG=config)
        self.add_env("hatch", f"{project}/.venv")

    def pipx_global(self):
        self.run(self.tool("pipx"), "install", "--global", "bottle==0.13.0",
                 PIPX_GLOBAL_HOME=self.path("/opt/pipx"),
                 PIPX_GLOBAL_BIN_DIR=self.path("/usr/local/bin"),
                 PIPX_GLOBAL_MAN_DIR=self.path("/usr/local/share/man"),
                 PIPX_DEFAULT_PYTHON=SYSTEM_PYTHON)
        self.add_env("pipx --global (PIPX_HOME /opt/pipx)",
                     "/opt/pipx/venvs/bottle")

    def conda(self):
        """conda-meta/ as conda leaves it, for a base and a named env."""
        for prefix, spec, version in (("/opt/conda", "falcon==4.3.0", "3.11"),
                                      ("/opt/conda/envs/web", "tornado==6.4",
                                       "3.12")):
            meta = self.path(f"{prefix}/conda-meta")
            os.makedirs(meta)
            with open(os.path.join(meta, "history"), "w") as f:
                f.write(f"==> 2026-01-05 10:00:00 <==\n# cmd: conda create "
                        f"-p {prefix} python={version}\n"
                        f"+conda-forge/linux-64::python-{version}.0-h1_0\n")
            with open(os.path.join(meta, f"python-{version}.0-h1_0.json"),
                      "w") as f:
                json.dump({"name": "python", "version": f"{version}.0",
                           "build": "h1_0", "channel": "conda-forge",
                           "files": [f"bin/python{version}"]}, f)
            site = self.prefix(prefix, spec, version)
            self.add(f"conda {'env' if 'envs' in prefix else 'base'} "
                     "(emulated), pip inside", prefix,
                     site_holds(self.path(site)), "conda", version)

    def targets(self):
        for directory, spec, compiled in (
                ("/srv/lambda/package", "bottle==0.12.20", True),
                ("/opt/vendor/lib", "bottle==0.12.21", False)):
            self.run(SYSTEM_PYTHON, "-m", "pip", "install", "-q",
                     *(() if compiled else ("--no-compile",)),
                     "--target", self.path(directory), spec)
            self.add("pip --target" + ("" if compiled else " --no-compile"),
                     directory, site_holds(self.path(directory)), "target",
                     "3.11" if compiled else None)

    def source(self, spec, directory):
        """An sdist unpacked at `directory`, as a checkout would be."""
        name, version = spec.split("==")
        with tarfile.open(os.path.join(self.sdists,
                                       f"{name}-{version}.tar.gz")) as t:
            t.extractall(self.path(os.path.dirname(directory)))
        os.rename(self.path(f"{os.path.dirname(directory)}/"
                            f"{name}-{version}"), self.path(directory))
        return self.path(directory)

    def egg_link(self):
        """bookworm's pip 23.0.1 on a setup.py project: setup.py develop,
        an .egg-link and easy-install.pth, the metadata in the tree."""
        venv = "/srv/legacy/venv"
        tree = self.source("bottle==0.12.25", "/srv/legacy/bottle")
        self.run(SYSTEM_PYTHON, "-m", "venv", self.path(venv))
        self.run(self.path(f"{venv}/bin/pip"), "install", "-q", "-e", tree)
        self.add_env("editable, legacy .egg-link (pip 23.0.1)", venv)
        # The link names the tree where the machine has it, as pip run
        # there writes it: the tree's own path is a test's temporary one.
        site = self.path(f"{venv}/lib/python3.11/site-packages")
        for name in ("bottle.egg-link", "easy-install.pth"):
            with open(os.path.join(site, name)) as f:
                text = f.read()
            with open(os.path.join(site, name), "w") as f:
                f.write(text.replace(self.top + "/", "/"))

    def pep660(self):
        venv = "/srv/modern/venv"
        tree = self.source("bottle==0.13.5", "/srv/modern/bottle")
        self.run(SYSTEM_PYTHON, "-m", "venv", self.path(venv))
        self.run(self.path(f"{venv}/bin/pip"), "install", "-q", "-U",
                 "pip==26.3")
        self.run(self.path(f"{venv}/bin/pip"), "install", "-q", "-e", tree)
        self.add_env("editable, PEP 660 (pip 26.3)", venv)

    # -- homes ---------------------------------------------------------------

    def user_sites(self):
        """pip --user for alice (from an sdist: pip's cache keeps the
        wheel it builds) and for root."""
        for home, spec in ((self.alice, os.path.join(
                self.sdists, "bottle-0.12.22.tar.gz")),
                           ("/root", "tornado==6.4.1")):
            self.run(SYSTEM_PYTHON, "-m", "pip", "install", "-q", "--user",
                     "--break-system-packages", spec, home=home)
            site = f"{home}/.local/lib/python3.11/site-packages"
            self.add(f"pip --user ({home})", site,
                     site_holds(self.path(site)), "user", "3.11", home=True)

    def user_tools(self):
        """pipx, uv tool and poetry's own venvs, in alice's home."""
        home = self.alice
        self.run(self.tool("pipx"), "install", "bottle==0.13.1", home=home,
                 PIPX_DEFAULT_PYTHON=SYSTEM_PYTHON)
        self.add_env("pipx (alice)", f"{home}/.local/share/pipx/venvs/bottle",
                     home=True)
        self.run(self.tool("uv"), "tool", "install", "-q", "-p",
                 SYSTEM_PYTHON, "falcon==4.4.0", home=home)
        self.add_env("uv tool install (alice)",
                     f"{home}/.local/share/uv/tools/falcon", home=True)
        project = f"{home}/blog"
        os.makedirs(self.path(project))
        self.run(self.tool("poetry"), "init", "-n", "--name", "blog",
                 cwd=project, home=home)
        self.run(self.tool("poetry"), "add", "-n",
                 self.wheel("bottle", "0.13.2"), cwd=project, home=home)
        venv, = glob.glob(self.path(
            f"{home}/.cache/pypoetry/virtualenvs/blog-*-py3.11"))
        self.add_env("poetry's cache venv (alice)",
                     self.system_path(venv), home=True)

    def system_path(self, path):
        return "/" + os.path.relpath(path, self.top)

    def user_pyenv(self):
        site = self.prefix(f"{self.alice}/.pyenv/versions/3.13.1",
                           "falcon==4.3.1", "3.13")
        self.add("pyenv version (alice, emulated)", site,
                 site_holds(self.path(site)), "pip", "3.13", home=True)

    def home_project(self):
        venv = f"{self.alice}/site/.venv"
        self.run(SYSTEM_PYTHON, "-m", "venv", self.path(venv),
                 home=self.alice)
        self.run(self.path(f"{venv}/bin/pip"), "install", "-q",
                 "bottle==0.13.3", home=self.alice)
        self.add_env("project venv in a home (alice)", venv, home=True)

    # -- never counted -------------------------------------------------------

    def staged_venv(self, spec):
        """A real venv (uv) made outside the tree, to be copied or moved."""
        venv = self.uv(os.path.join(self.scratch, "staged", spec), spec)
        return venv, interpreter_holds(f"{venv}/bin/python")[1]

    def containers(self):
        """Image layers holding a copy of a venv: docker's, podman's, and
        rootless podman's in a home."""
        layer = hashlib.sha256(b"layer").hexdigest()
        for name, storage, spec in (
                ("docker", "/var/lib/docker/overlay2", "tornado==6.5"),
                ("podman", "/var/lib/containers/storage/overlay",
                 "tornado==6.5.1"),
                ("rootless podman",
                 f"{self.alice}/.local/share/containers/storage/overlay",
                 "tornado==6.5.2")):
            venv, held = self.staged_venv(spec)
            place = f"{storage}/{layer}/diff/srv/app/venv"
            shutil.copytree(venv, self.path(place), symlinks=True)
            os.makedirs(self.path(f"{storage}/{layer}/work/work"))
            with open(self.path(f"{storage}/{layer}/link"), "w") as f:
                f.write(layer[:26].upper())
            self.control(f"{name} image layer, a venv in it", place, held)

    def trash(self):
        venv, held = self.staged_venv("bottle==0.13.4")
        trash = f"{self.alice}/.local/share/Trash"
        os.makedirs(self.path(f"{trash}/info"))
        shutil.copytree(venv, self.path(f"{trash}/files/old-site"),
                        symlinks=True)
        with open(self.path(f"{trash}/info/old-site.trashinfo"), "w") as f:
            f.write(f"[Trash Info]\nPath={self.alice}/old-site\n"
                    "DeletionDate=2026-11-30T10:00:00\n")
        self.control("Trash, a venv deleted", f"{trash}/files/old-site",
                     held)

    def build_tree(self):
        """A checkout built in place: build/ and dist/ left behind."""
        tree = self.source("bottle==0.12.24", "/srv/src/bottle")
        for command in (("bdist_wheel", "--keep-temp"),
                        ("bdist_dumb", "--relative", "--keep-temp")):
            self.run(SYSTEM_PYTHON, "setup.py", "-q", *command,
                     cwd=self.system_path(tree))
        self.control("build tree (bdist --keep-temp), dist/ wheel",
                     "/srv/src/bottle", files_hold(tree))

    def excluded(self):
        for place, spec in ((f"{EXCLUDED[0]}/venv", "tornado==6.5.4"),
                            (f"{EXCLUDED[1]}/.venv", "tornado==6.5.5")):
            venv = self.uv(self.path(place), spec)
            self.control("under SCAN_EXCLUDE", place,
                         interpreter_holds(f"{venv}/bin/python")[1])

    def caches(self):
        """pip's and uv's caches, filled by the installs above, and an
        ephemeral environment uv keeps in its cache."""
        self.run(self.tool("uv"), "run", "-q", "--no-project", "--with",
                 "tornado==6.5.3", "-p", SYSTEM_PYTHON, "python", "-c", "",
                 home=self.alice)
        for tool in ("uv", "pip"):
            cache = f"{self.alice}/.cache/{tool}"
            self.control(f"{tool}'s cache", cache,
                         files_hold(self.path(cache)))


def build(top, scratch):
    """The zoo under `top` (scratch: a directory outside it); its layouts."""
    return Zoo(top, scratch).build()
