"""Find the catalogue frameworks installed on a machine, and how.

- the dpkg database: packages whose status is "install ok installed";
- system-wide pip: distributions in usr/lib/python3/dist-packages that no
  Debian package owns, and usr/local/lib/python3.*/{dist,site}-packages;
- below the configured scan paths, and in homes with SCAN_HOMES=yes, the
  places (environments, prefixes, --target directories, user sites) that
  places.walk finds.
Only catalogue names are ever kept; everything else is skipped unread.
Nothing below a SCAN_EXCLUDE directory is read, nor, without SCAN_HOMES,
anything in /home or /root; with REPORT_USED=no no access time is looked
at.
"""

import glob
import logging
import os
import re
import time
from collections import defaultdict

from pyweb_popcon import catalogue
from pyweb_popcon.client import paths, places, sites
from pyweb_popcon.client.sites import pep440
from pyweb_popcon.report import Entry

log = logging.getLogger(__name__)

DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_INFO = "/var/lib/dpkg/info"
DEBIAN_SITE = "/usr/lib/python3/dist-packages"
# pip of every Python installed system-wide: Debian's own, and a
# self-built CPython's (make install to /usr/local).
LOCAL_SITES = ("usr/local/lib/python3.*/dist-packages",
               "usr/local/lib/python3.*/site-packages")
VIA = {"venv": "venv", "conda": "conda", "prefix": "pip", "user": "user"}
# Container images and containers' storage: other machines' trees.
CONTAINER_STORAGE = ("/var/lib/docker", "/var/lib/containers",
                     "/var/lib/containerd")
MAX_RESOLVED = 100_000  # directories a scan remembers the real path of
USED_DAYS = 30         # a framework read within this many days is "used"


# -- versions ---------------------------------------------------------------

def upstream_version(debian_version):
    """The upstream part of a Debian version: no epoch, no revision."""
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


# -- the "used" vote ---------------------------------------------------------

class AccessTimes:
    """Whether files were read lately, where the filesystem says so."""

    def __init__(self, now=None, mountinfo="/proc/self/mountinfo",
                 resolve=os.path.realpath):
        self.since = (now or time.time()) - USED_DAYS * 86400
        self.resolve = resolve
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
        real = self.resolve(path)
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
            markers += sites.module_byte_code(site, module)
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


# -- what the administrator keeps out ---------------------------------------

class Excluded:
    """Directories the scan never enters, as a test on paths.

    Paths are compared both as named and as their symbolic links resolve,
    so an excluded directory reached by another name stays out.
    """

    def __init__(self, root, directories, resolve=os.path.realpath):
        self.root = root
        self.resolve = resolve
        self.directories = set()
        for directory in directories:
            self.directories |= self.names(root.path(directory))

    def names(self, path):
        """The system paths `path` (in the tree) stands for."""
        named = self._system(os.path.normpath(path))
        real = self._system(self.resolve(path))
        return {named or os.path.normpath(self.root.system_path(path))} | (
            {real} if real else set())

    def _system(self, path):
        """The system path of a normalised path in the tree, or None."""
        top = self.root.top
        if top == "/" or path == top:
            return "/" if path == top else path
        return path[len(top):] if path.startswith(top + "/") else None

    def covers(self, names):
        """True when one of the system paths `names` is kept out."""
        return any(name == d or name.startswith(d.rstrip("/") + "/")
                   for name in names for d in self.directories)

    def named(self, names):
        """covers() for a directory whose parent it does not cover."""
        return any(name in self.directories for name in names)

    def __call__(self, path):
        return bool(self.directories) and self.covers(self.names(path))


class Resolver:
    """os.path.realpath, remembering what it found for each directory:
    one scan resolves thousands of paths that share their parents."""

    def __init__(self):
        self.known = {}

    def __call__(self, path):
        if "/../" in path + "/":    # ".." after a link: let realpath say
            return os.path.realpath(path)
        path = os.path.abspath(path)
        # The nearest ancestor already resolved, then the rest one name
        # (one lstat) at a time, all of it again at a symbolic link.
        todo, base = [], path
        while base not in self.known and base != "/":
            base, name = os.path.split(base)
            todo.append(name)
        real = self.known.get(base, base)
        for name in reversed(todo):
            real = os.path.join(real, name)
            if os.path.islink(real):
                real = os.path.realpath(real)
            base = os.path.join(base, name)
            if len(self.known) < MAX_RESOLVED:
                self.known[base] = real
        return real


# -- the dpkg database -------------------------------------------------------

def dpkg_installed(root):
    """{package: (version, architecture)} of installed packages we care for.

    Only the catalogue's Debian packages, dpkg itself (whose architecture
    is the machine's) and python3 (whose version is the system Python's)
    are parsed; every other paragraph is skipped unread.
    Hand-written for that speed: python3-debian's deb822 would parse all of
    a 3,000-package status file, and dpkg-query is a process per run.
    """
    wanted = set(catalogue.by_debian_package()) | {"dpkg", "python3"}
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


# -- the whole machine -------------------------------------------------------

class Tally:
    """Entries keyed by (name, version, via, python), counting places;
    each site directory is read once, however many ways it is reached."""

    def __init__(self, root, excluded, access):
        self.root, self.excluded, self.access = root, excluded, access
        self.envs = defaultdict(int)
        self.votes = defaultdict(list)
        self.seen = set()

    def used(self, site, modules):
        if self.access is None or self.excluded(site):
            return None
        return self.access.used(site, modules)

    def add(self, framework, version, via, python, used):
        key = (framework.name, version, via, python)
        self.envs[key] += 1
        self.votes[key].append(used)

    def site(self, site, via, python=None, owners=None):
        """Count the catalogue distributions in `site`: all of them, or
        with `owners` those no Debian package owns."""
        try:
            st = os.stat(site)
        except OSError:
            return
        if (st.st_dev, st.st_ino) in self.seen:
            return
        self.seen.add((st.st_dev, st.st_ino))
        python = python or sites.site_python(site)
        counted = set()
        for dist in sites.distributions(site, self.root, self.excluded,
                                        installer=via == "target"):
            name, modules = dist.framework.name, dist.framework.modules
            if (name, dist.version) in counted or (
                    owners and owners.owns(self.root.system_path(
                        dist.metadata))):
                continue
            counted.add((name, dist.version))
            self.add(dist.framework, dist.version, via,
                     python or (via == "target" and
                                sites.compiled_python(site, modules)) or None,
                     self._vote(site, dist))

    def _vote(self, site, dist):
        """The "used" vote of `dist` in `site` (a site not excluded): from
        its code there, else from where an editable install's code is."""
        if self.access is None:
            return None
        modules = dist.framework.modules
        vote = None if dist.source else self.access.used(site, modules)
        if vote is None:
            source = sites.editable_source(dist, self.root, self.excluded)
            if source:
                vote = self.used(sites.code_places(source, modules), modules)
        return vote

    def place(self, place):
        if place.kind == "target":
            self.site(place.path, "target")
        elif not self.excluded(os.path.join(place.path, "lib")):
            for site in sites.lib_sites(place.path):
                if not self.excluded(site):
                    self.site(site, VIA[place.kind])

    def entries(self):
        return tuple(sorted(
            (Entry(n, v, via, count, _combine(self.votes[key]), python)
             for key, count in self.envs.items()
             for n, v, via, python in [key]), key=Entry.sort_key))


def _combine(votes):
    if True in votes:
        return True
    return False if False in votes else None


def _sites(base, pattern, excluded):
    """Site directories `pattern` matches below `base`, not excluded,
    found without listing an excluded directory on the way."""
    if excluded(os.path.join(base, pattern.partition("*")[0]
                             .rpartition("/")[0])):
        return []
    return [p for p in sorted(glob.glob(os.path.join(glob.escape(base),
                                                     pattern)))
            if not excluded(p)]


def _minor(debian_version):
    """"3.X" of a Debian python3 package's version, or None."""
    m = re.match(r"(?:[0-9]+:)?(3\.[0-9]{1,2})\b", debian_version)
    return m and m.group(1)


def _homes(root, excluded):
    """/root and every directory in /home, as the tree has them."""
    homes = [root.path("/root")]
    if not excluded(root.path("/home")):
        try:
            with os.scandir(root.path("/home")) as it:
                homes += sorted(e.path for e in it if e.is_dir())
        except OSError as e:
            log.debug("no homes in /home: %s", e.strerror)
    return [h for h in homes if os.path.isdir(h)]


def scan(root, config):
    """(entries, dpkg architecture) for the machine under `root`."""
    homes = config["SCAN_HOMES"]
    kept_out = config["SCAN_EXCLUDE"] + CONTAINER_STORAGE
    resolve = Resolver()
    excluded = Excluded(root, kept_out + (() if homes else paths.HOMES),
                        resolve)
    tally = Tally(root, excluded, AccessTimes(resolve=resolve)
                  if config["REPORT_USED"] else None)

    dpkg = not any(excluded(root.path(p)) for p in (DPKG_STATUS, DPKG_INFO))
    installed = dpkg_installed(root) if dpkg else {}
    system = _minor(installed.get("python3", ("",))[0])
    debian_site = root.path(DEBIAN_SITE)
    debs = [p for p in installed if p in catalogue.by_debian_package()]
    for package in debs:
        framework = catalogue.by_debian_package()[package]
        version = pep440(upstream_version(installed[package][0]))
        if version:
            tally.add(framework, version, "deb", system,
                      tally.used(debian_site, framework.modules))

    # Unowned distributions in Debian's site are pip's; with the dpkg
    # database excluded there is no telling whose they are: none count.
    if dpkg and not excluded(debian_site):
        tally.site(debian_site, "pip", system, owners=DpkgFiles(root, debs))
    for pattern in LOCAL_SITES:
        for site in _sites(root.top, pattern, excluded):
            tally.site(site, "pip")

    if config["SCAN_VENVS"]:
        # Homes are walked from their own tops, or not at all.
        fenced = Excluded(root, kept_out + paths.HOMES, resolve) if homes \
            else excluded
        for scan_path in config["SCAN_PATHS"]:
            for place in places.walk(root.path(scan_path), fenced):
                tally.place(place)
        for home in _homes(root, excluded) if homes else ():
            for place in places.walk(home, excluded, places.MAX_HOME_DEPTH,
                                     home=True):
                tally.place(place)
    return tally.entries(), installed.get("dpkg", ("", ""))[1]
