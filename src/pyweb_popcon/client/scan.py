"""Find the catalogue frameworks installed on a machine, and how.

Three places, as dpkg and pip leave them:
- the dpkg database: packages whose status is "install ok installed";
- system-wide pip: usr/local/lib/python3.*/dist-packages, and distributions
  in usr/lib/python3/dist-packages that no Debian package owns;
- virtual environments under the configured scan paths, found by their
  pyvenv.cfg.
Only catalogue names are ever kept; everything else is skipped unread.
Nothing below a SCAN_EXCLUDE directory is read, and with REPORT_USED=no
no access time is looked at.
"""

import glob
import logging
import os
import re
import time
from collections import defaultdict

from packaging.utils import canonicalize_name

from pyweb_popcon import catalogue
from pyweb_popcon.report import Entry, public_version

log = logging.getLogger(__name__)

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_INFO = "/var/lib/dpkg/info"
DEBIAN_SITE = "/usr/lib/python3/dist-packages"
PIP_SITES = "/usr/local/lib/python3.*/dist-packages"
VENV_SITES = "lib/python3.*/site-packages"
MAX_DEPTH = 6          # directories below a scan path searched for venvs
USED_DAYS = 30         # a framework read within this many days is "used"


# -- versions ---------------------------------------------------------------

def upstream_version(debian_version):
    """The upstream part of a Debian version: no epoch, no revision."""
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def pep440(version):
    """A PEP 440 public version for an installed version string, or None.

    Debian's "~" sorts before a release as PEP 440 pre-releases do; a
    Debian suffix such as "+dfsg" reads as a local part and is dropped.
    """
    found = public_version(version) or public_version(version.replace("~", ""))
    if found is None:
        release = re.match(r"[0-9]+(\.[0-9]+)*", version)
        found = release and public_version(release.group())
    return found


# -- the "used" vote ---------------------------------------------------------

class AccessTimes:
    """Whether files were read lately, where the filesystem says so."""

    def __init__(self, now=None, mountinfo="/proc/self/mountinfo"):
        self.since = (now or time.time()) - USED_DAYS * 86400
        self.mounts = []
        try:
            with open(mountinfo) as f:
                for line in f:
                    fields = line.split()
                    point = fields[4].replace("\\040", " ")
                    self.mounts.append((point, set(fields[5].split(","))))
        except OSError:
            pass
        self.mounts.sort(key=lambda m: len(m[0]), reverse=True)

    def kept(self, path):
        """False where the mount holding `path` never updates access times.

        Only noatime says so: a read-only view (a sandbox's ProtectSystem=)
        says nothing of the processes that import the framework.
        """
        real = os.path.realpath(path)
        for point, options in self.mounts:
            if real == point or real.startswith(point.rstrip("/") + "/"):
                return "noatime" not in options
        return bool(self.mounts)

    def used(self, site, modules):
        """True/False/None: were `modules` in directory `site` imported?

        Python reads the byte code, not the source, when the cache is
        fresh, so the .pyc files vote where they exist.  A read after
        installation moves the access time past the change time (relatime
        does that much), so installing alone is not a vote.
        """
        markers = []
        for module in modules:
            package = os.path.join(site, module)
            for base, stem in ((package, "__init__"), (site, module)):
                markers += glob.glob(os.path.join(
                    glob.escape(base), "__pycache__", f"{stem}.*.pyc"))
            if not markers:
                markers += [p for p in (os.path.join(package, "__init__.py"),
                                        package + ".py") if os.path.exists(p)]
        if not markers or not self.kept(site):
            return None
        for marker in markers:
            try:
                st = os.stat(marker)
            except OSError:
                continue
            if st.st_atime >= self.since and st.st_atime_ns > st.st_ctime_ns:
                return True
        return False


# -- what the administrator keeps out ----------------------------------------------

class Excluded:
    """SCAN_EXCLUDE: directories the scan never enters, as a test on paths.

    Paths are compared both as named and as their symbolic links resolve,
    so an excluded directory reached by another name stays out.
    """

    def __init__(self, root, directories):
        self.root = root
        self.directories = set()
        for directory in directories:
            self.directories |= self._names(root.path(directory))

    def _names(self, path):
        """The system paths `path` (in the tree) stands for."""
        names = {self.root.system_path(os.path.normpath(path))}
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.root.top]) == self.root.top:
            names.add(self.root.system_path(real))
        return names

    def __call__(self, path):
        if not self.directories:
            return False
        return any(name == d or name.startswith(d.rstrip("/") + "/")
                   for name in self._names(path) for d in self.directories)


# -- the dpkg database ---------------------------------------------------------

def dpkg_installed(root):
    """{package: (version, architecture)} of installed packages we care for.

    Only the catalogue's Debian packages and dpkg itself (whose architecture
    is the machine's) are parsed; every other paragraph is skipped unread.
    Hand-written for that speed: python3-debian's deb822 would parse all of
    a 3,000-package status file, and dpkg-query is a process per run.
    """
    wanted = set(catalogue.by_debian_package()) | {"dpkg"}
    found = {}
    try:
        with open(root.path(DPKG_STATUS), encoding="utf-8",
                  errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return found
    for paragraph in text.split("\n\n"):
        name = re.search(r"^Package: *(\S+)", paragraph, re.M)
        if not name or name.group(1) not in wanted:
            continue
        fields = dict(re.findall(r"^(Status|Version|Architecture): *(.*?) *$",
                                 paragraph, re.M))
        # "install ok installed", or "hold ok installed" for a held one.
        if fields.get("Status", "").split()[1:] == ["ok", "installed"]:
            found[name.group(1)] = (fields.get("Version", ""),
                                    fields.get("Architecture", ""))
    return found


class DpkgFiles:
    """Which paths Debian packages own, read from dpkg's .list files lazily."""

    def __init__(self, root, packages):
        self.root = root
        self.owned = self._read(root.path(f"{DPKG_INFO}/{p}.list")
                                for p in packages)
        self.everything = None

    def _read(self, paths):
        owned = set()
        for path in paths:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    owned.update(f.read().splitlines())
            except OSError:
                pass
        return owned

    def owns(self, system_path):
        if system_path in self.owned:
            return True
        if self.everything is None:     # rare: only for an unowned framework
            lists = glob.glob(self.root.path(f"{DPKG_INFO}/*.list"))
            self.everything = self._read(lists)
        return system_path in self.everything


# -- site directories -----------------------------------------------------------

def distributions(site):
    """Yield (Framework, version, metadata path) for catalogue dists in site."""
    try:
        names = os.listdir(site)
    except OSError as e:
        log.debug("skipping %s: %s", site, e.strerror)
        return
    index = catalogue.by_distribution()
    for entry in names:
        stem, dot, kind = entry.rpartition(".")
        if kind not in ("dist-info", "egg-info"):
            continue
        parts = stem.split("-")
        framework = index.get(canonicalize_name(parts[0]))
        if framework is None:
            continue
        path = os.path.join(site, entry)
        version = parts[1] if len(parts) > 1 else _metadata_version(path)
        version = version and pep440(version)
        if version:
            yield framework, version, path
        else:
            log.debug("%s: no usable version", path)


def _metadata_version(path):
    """The Version: field of a dist-info/egg-info (file or directory).

    Only the header is read, up to the Version: line: importlib.metadata
    would parse the whole file (long descriptions included) as email.
    """
    for candidate in (os.path.join(path, "METADATA"),
                      os.path.join(path, "PKG-INFO"), path):
        try:
            with open(candidate, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return None


# -- virtual environments ----------------------------------------------------------

def find_venvs(top, excluded):
    """Yield directories holding a pyvenv.cfg below `top`.

    Stays on top's filesystem, never follows symbolic links (so no loops),
    does not look inside a venv for more venvs, never enters a directory
    `excluded` says no to, and skips what it cannot read with a debug
    message.
    """
    if excluded(top):
        log.debug("skipping scan path %s: SCAN_EXCLUDE", top)
        return
    try:
        device = os.stat(top).st_dev
    except OSError as e:
        log.debug("skipping scan path %s: %s", top, e.strerror)
        return
    pending = [(top, 0)]
    while pending:
        directory, depth = pending.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as e:
            log.debug("skipping %s: %s", directory, e.strerror)
            continue
        if any(e.name == "pyvenv.cfg" for e in entries):
            yield directory
            continue
        if depth >= MAX_DEPTH:
            continue
        for e in entries:
            try:
                if (e.is_dir(follow_symlinks=False)
                        and e.stat(follow_symlinks=False).st_dev == device
                        and not excluded(e.path)):
                    pending.append((e.path, depth + 1))
            except OSError as err:
                log.debug("skipping %s: %s", e.path, err.strerror)


# -- the whole machine ----------------------------------------------------------------

class Tally:
    """Entries keyed by (name, version, via), counting environments."""

    def __init__(self):
        self.envs = defaultdict(int)
        self.votes = defaultdict(list)

    def add(self, framework, version, via, used):
        key = (framework.name, version, via)
        self.envs[key] += 1
        self.votes[key].append(used)

    def entries(self):
        return tuple(sorted(
            (Entry(n, v, via, self.envs[(n, v, via)],
                   _combine(self.votes[(n, v, via)]))
             for n, v, via in self.envs), key=Entry.sort_key))


def _combine(votes):
    if True in votes:
        return True
    return False if False in votes else None


def scan(root, config):
    """(entries, dpkg architecture) for the machine under `root`."""
    excluded = Excluded(root, config["SCAN_EXCLUDE"])
    access = AccessTimes() if config["REPORT_USED"] else None

    def used(site, modules):
        if access is None or excluded(site):
            return None
        return access.used(site, modules)

    def sites(base, pattern):
        """Site directories `pattern` matches below `base`, not excluded,
        found without listing an excluded directory on the way."""
        if excluded(os.path.join(base, pattern.partition("*")[0]
                                 .rpartition("/")[0])):
            return []
        return [p for p in sorted(glob.glob(os.path.join(glob.escape(base),
                                                         pattern)))
                if not excluded(p)]

    tally = Tally()
    dpkg = not any(excluded(root.path(p)) for p in (DPKG_STATUS, DPKG_INFO))
    installed = dpkg_installed(root) if dpkg else {}
    debian_site = root.path(DEBIAN_SITE)

    debs = [p for p in installed if p in catalogue.by_debian_package()]
    for package in debs:
        framework = catalogue.by_debian_package()[package]
        version = pep440(upstream_version(installed[package][0]))
        if version:
            tally.add(framework, version, "deb",
                      used(debian_site, framework.modules))

    # Unowned distributions in Debian's site are pip's; with the dpkg
    # database excluded there is no telling whose they are: none count.
    owners = DpkgFiles(root, debs)
    for site in [debian_site] if dpkg and not excluded(debian_site) else []:
        for framework, version, path in distributions(site):
            if not owners.owns(root.system_path(path)):
                tally.add(framework, version, "pip",
                          used(site, framework.modules))

    for site in sites(root.top, PIP_SITES.lstrip("/")):
        for framework, version, _ in distributions(site):
            tally.add(framework, version, "pip",
                      used(site, framework.modules))

    if config["SCAN_VENVS"]:
        for scan_path in config["SCAN_PATHS"]:
            for venv in find_venvs(root.path(scan_path), excluded):
                seen = set()    # one venv counts once, whatever its Pythons
                for site in sites(venv, VENV_SITES):
                    for framework, version, _ in distributions(site):
                        if (framework.name, version) not in seen:
                            seen.add((framework.name, version))
                            tally.add(framework, version, "venv",
                                      used(site, framework.modules))
    return tally.entries(), installed.get("dpkg", ("", ""))[1]
