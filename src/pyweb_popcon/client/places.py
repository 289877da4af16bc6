"""Where Python installs are below a directory, found by one bounded walk.

What a directory is, is told from its own listing:
- "venv": it holds pyvenv.cfg (venv, virtualenv, uv, poetry, pdm, hatch,
  pipx, pyenv-virtualenv);
- "conda": it holds conda-meta/ (conda and mamba environments and bases);
- "prefix": it holds lib/python3.X/site-packages (a self-built CPython,
  a pyenv version); in a home, its .local is the user's site instead;
- "target": it holds *.dist-info directories (pip --target; which of
  them an installer marked is for the site reader to say).
The walk does not look inside any of these for more, except the envs/
of a conda base or a pyenv version.  It never enters caches, container
storage, Trash, test-matrix environments or version-control data.
"""

import collections
import logging
import os
import posixpath
from dataclasses import dataclass

from pyweb_popcon.client import sites

log = logging.getLogger(__name__)

MAX_DEPTH = 6           # directories below a scan path looked into
MAX_HOME_DEPTH = 8      # below a home: hatch keeps its environments at 8
MAX_DIRECTORIES = 100_000   # listed per walk, so a hostile tree stays cheap
# Never entered, wherever they are: test matrices (remade on every run),
# version-control data and node_modules (no Python environments there).
SKIPPED_NAMES = {".tox", ".nox", ".git", ".hg", ".svn", "node_modules",
                 "__pycache__", ".Trash"}
# Never entered below a parent of this name: pip's and uv's caches (uv's
# holds unpacked wheels and build environments), the desktop's Trash,
# rootless container storage.
SKIPPED_BELOW = {(".cache", "pip"), (".cache", "uv"), ("share", "Trash"),
                 ("share", "containers"), ("share", "docker")}


@dataclass(frozen=True)
class Place:
    kind: str       # venv, conda, prefix, user or target
    path: str


def _skipped(parent, name):
    return (name in SKIPPED_NAMES or name.startswith(".Trash-")
            or (parent, name) in SKIPPED_BELOW)


def walk(top, excluded, max_depth=MAX_DEPTH, home=False):
    """Yield the Places below (and at) directory `top`.

    Breadth first, so a tree too big for MAX_DIRECTORIES loses its
    deepest parts, where environments rarely are.  Stays on top's
    filesystem, never follows symbolic links (so no loops), never enters
    a directory `excluded` says no to (by any of its names), and skips
    what it cannot read.  With `home`, top is a home directory, whose
    .local is the user's own site.
    """
    names = excluded.names(top)
    if excluded.covers(names):
        log.debug("skipping %s: SCAN_EXCLUDE", top)
        return
    try:
        device = os.stat(top).st_dev
    except OSError as e:
        log.debug("skipping %s: %s", top, e.strerror)
        return
    # (directory, its system names, depth, mode): mode "envs" for the
    # envs/ of a conda base or pyenv version, "env" for one below it.
    pending = collections.deque([(top, names, 0, None)])
    listed, full = 0, False
    while pending:
        directory, names, depth, mode = pending.popleft()
        listed += 1
        try:
            marks, subdirs, cut = _listing(
                directory, MAX_DIRECTORIES - listed - len(pending))
        except OSError as e:
            log.debug("skipping %s: %s", directory, e.strerror)
            continue
        place = _what(directory, marks, home and depth == 1)
        if place == "cache":
            log.debug("skipping %s: a cache", directory)
            continue
        if place:
            yield Place(place, directory)
        if place in ("conda", "prefix"):
            below, child_mode = [marks["envs"]] if "envs" in marks else [], \
                "envs"
        elif place in ("venv", "target") or mode == "env" or (
                depth >= max_depth and mode != "envs"):
            continue
        else:
            full |= cut
            parent = os.path.basename(directory)
            below = [e for e in subdirs if not _skipped(parent, e.name)
                     and not (place == "user" and e.name == "lib")]
            child_mode = "env" if mode else None
        for e in below:
            if len(pending) + listed >= MAX_DIRECTORIES:
                full = True
                break
            child = [posixpath.join(n, e.name) for n in names]
            try:
                if (e.is_dir(follow_symlinks=False)
                        and e.stat(follow_symlinks=False).st_dev == device
                        and not excluded.named(child)):
                    pending.append((e.path, child, depth + 1, child_mode))
            except OSError as err:
                log.debug("skipping %s: %s", e.path, err.strerror)
    if full:
        log.warning("%s: stopped after listing %d directories; SCAN_EXCLUDE "
                    "can keep big trees out", top, listed)


# The entries that tell what a directory is.
_MARKS = {"CACHEDIR.TAG", "pyvenv.cfg", "conda-meta", "lib", "diff", "work",
          "envs"}


def _listing(directory, room):
    """({mark: entry}, up to `room` subdirectories, whether more were left
    out): a directory of a million files costs time, not memory."""
    marks, subdirs, cut = {}, [], False
    with os.scandir(directory) as it:
        for e in it:
            if e.name in _MARKS:
                marks[e.name] = e
            elif e.name.endswith(".dist-info"):
                marks[".dist-info"] = e
            if e.is_dir(follow_symlinks=False):
                if len(subdirs) < room:
                    subdirs.append(e)
                else:
                    cut = True
    return marks, subdirs, cut


def _what(directory, marks, dot_local):
    """The kind of place a directory is from its marks, "cache", or None
    for an ordinary directory to look into."""
    # virtualenv, uv, poetry, pdm and hatch tag each venv they make as a
    # cache (it can be made again), so pyvenv.cfg is looked at first.
    if "pyvenv.cfg" in marks:
        return "venv"
    if "CACHEDIR.TAG" in marks:         # the Cache Directory Tagging spec
        return "cache"
    if "conda-meta" in marks and marks["conda-meta"].is_dir():
        return "conda"
    # A prefix's lib/ is its own: one that is a link may lead anywhere.
    if ("lib" in marks and marks["lib"].is_dir(follow_symlinks=False)
            and sites.lib_sites(directory)):
        if dot_local and os.path.basename(directory) == ".local":
            return "user"
        return "prefix"
    # An overlay filesystem's layer (Docker's, Podman's): diff/ and work/.
    if "diff" in marks and "work" in marks:
        return "cache"
    if ".dist-info" in marks:
        return "target"
    return None
