"""What one site directory holds: the catalogue's distributions, their
versions, where an editable install's code is, and which Python it is for.

Only catalogue names are ever opened; everything else is skipped unread.
"""

import functools
import json
import logging
import os
import re
import stat
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from pyweb_popcon import catalogue
from pyweb_popcon.report import public_version

log = logging.getLogger(__name__)

READ_LIMIT = 65536      # bytes of a metadata file read: its header is first
_SITE_PYTHON = re.compile(
    r"/lib/python(3\.[0-9]{1,2})/(?:site|dist)-packages$")
_PYC_TAG = re.compile(r"\.cpython-3([0-9]{1,2})\.pyc$")


# Distribution names repeat from one environment to the next.
_canonical = functools.lru_cache(maxsize=4096)(canonicalize_name)


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


def read_head(path, limit=READ_LIMIT):
    """The first `limit` bytes of the regular file `path` as text, or None.

    Opened without waiting: a FIFO or device planted under a name the
    scanner reads is skipped, not waited on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            log.debug("skipping %s: not a regular file", path)
            return None
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def metadata_version(path):
    """The Version: field of a dist-info/egg-info (file or directory).

    Only the header is read: importlib.metadata would parse the whole file
    (long descriptions included) as email.
    """
    for candidate in (os.path.join(path, "METADATA"),
                      os.path.join(path, "PKG-INFO"), path):
        text = read_head(candidate)
        if text is None:
            continue
        for line in text.splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
            if not line.strip():
                break
    return None


@dataclass(frozen=True)
class Dist:
    """A catalogue framework found in a site directory."""
    framework: object
    version: str
    metadata: str           # its .dist-info/.egg-info (or .egg-link)
    source: str | None      # an egg-link's source tree, where the code is


def distributions(site, root, excluded, installer=False):
    """Yield a Dist for each catalogue distribution in `site`.

    Legacy editable installs (NAME.egg-link) take their version from the
    egg-info in the source tree the link names, looked up under `root`
    unless `excluded` keeps it out.  With `installer`, only dist-infos an
    installer marked (an INSTALLER file, as pip --target leaves) count.
    """
    index = catalogue.by_distribution()
    for entry in _names(site):
        stem, _, kind = entry.rpartition(".")
        if kind not in ("dist-info", "egg-info", "egg-link"):
            continue
        parts = stem.split("-")
        framework = index.get(_canonical(parts[0]))
        if framework is None:
            continue
        path = os.path.join(site, entry)
        source = None
        if kind == "egg-link":
            if installer:
                continue
            source = _link_source(path, site, root, excluded)
            version = source and _source_version(source, framework)
        elif installer and not os.path.exists(
                os.path.join(path, "INSTALLER")):
            continue
        else:
            version = parts[1] if len(parts) > 1 else metadata_version(path)
        version = version and pep440(version)
        if version:
            yield Dist(framework, version, path, source)
        else:
            log.debug("%s: no usable version", path)


def _names(directory):
    """The names in `directory`, one at a time (a hostile site may hold a
    million), none if it cannot be read."""
    try:
        with os.scandir(directory) as it:
            yield from (e.name for e in it)
    except OSError as e:
        log.debug("skipping %s: %s", directory, e.strerror)


def _link_source(link, site, root, excluded):
    """The source tree an .egg-link names, inside `root`, or None."""
    text = read_head(link, 4096)
    target = text and text.splitlines()[0].strip()
    if not target:
        return None
    source = root.path(target) if target.startswith("/") else \
        os.path.normpath(os.path.join(site, target))
    if excluded(source):
        log.debug("%s: its source tree is not scanned", link)
        return None
    return source


def _source_version(source, framework):
    """The version in the egg-info a source tree holds for `framework`."""
    for entry in _names(source):
        stem, _, kind = entry.rpartition(".")
        if (kind == "egg-info" and _canonical(stem.split("-")[0])
                in map(_canonical, framework.pypi)):
            return metadata_version(os.path.join(source, entry))
    return None


def editable_source(dist, root, excluded):
    """Where an editable install's code is, or None for a regular one:
    the egg-link's source tree, or the directory a PEP 660 install's
    direct_url.json names."""
    if dist.source or not dist.metadata.endswith(".dist-info"):
        return dist.source
    text = read_head(os.path.join(dist.metadata, "direct_url.json"))
    try:
        url = json.loads(text) if text else {}
        editable = url.get("dir_info", {}).get("editable") is True
    except (ValueError, AttributeError, RecursionError):
        return None
    path = _file_url_path(url.get("url")) if editable else None
    source = path and root.path(path)
    return None if not source or excluded(source) else source


def _file_url_path(url):
    """The path of a file: URL (file:///x or file://localhost/x), or None.

    By hand: urllib would bring the network modules into the scanner.
    """
    if not isinstance(url, str) or not url.startswith("file://"):
        return None
    rest = url[len("file://"):]
    path = "/" + rest.partition("/")[2] if not rest.startswith("/") else rest
    return re.sub(rb"%([0-9A-Fa-f]{2})",
                  lambda m: bytes([int(m.group(1), 16)]),
                  path.encode()).decode("utf-8", "replace")


def code_places(source, modules):
    """Where in a source tree the code of `modules` is: the tree itself,
    or its src/ (the "src layout")."""
    nested = os.path.join(source, "src")
    for module in modules:
        if os.path.exists(os.path.join(nested, module)) or \
                os.path.exists(os.path.join(nested, module + ".py")):
            return nested
    return source


def lib_sites(prefix):
    """The prefix's lib/python3.X/site-packages directories."""
    lib = os.path.join(prefix, "lib")
    return sorted(os.path.join(lib, name, "site-packages")
                  for name in _names(lib) if name.startswith("python3.")
                  and os.path.isdir(os.path.join(lib, name, "site-packages")))


def site_python(site):
    """"3.X" for a site directory under lib/python3.X, else None."""
    m = _SITE_PYTHON.search(site)
    return m and m.group(1)


def byte_code(directory, stem):
    """The .pyc files Python compiled for `stem` (a module, or __init__
    of a package) in `directory`'s __pycache__."""
    cache = os.path.join(directory, "__pycache__")
    return [os.path.join(cache, name) for name in _names(cache)
            if name.startswith(stem + ".") and name.endswith(".pyc")]


def module_byte_code(site, module):
    """The .pyc files of `module` in `site`, a package's or a module's."""
    return (byte_code(os.path.join(site, module), "__init__")
            + byte_code(site, module))


def compiled_python(site, modules):
    """"3.X" when the byte code of `modules` in `site` was compiled by one
    Python only (as pip --target leaves it), else None."""
    tags = set()
    for module in modules:
        for pyc in module_byte_code(site, module):
            m = _PYC_TAG.search(pyc)
            if m:
                tags.add(f"3.{m.group(1)}")
    return tags.pop() if len(tags) == 1 else None
