"""The framework catalogue: the closed list of names a report may contain."""

import functools
import os
import tomllib
from dataclasses import dataclass

from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Framework:
    name: str
    title: str
    pypi: tuple
    debian: tuple
    modules: tuple


@functools.cache
def frameworks():
    """Every catalogue framework by canonical name."""
    # Beside this module (importlib.resources would bring pathlib, and so
    # urllib, into the scanner's imports).
    with open(os.path.join(os.path.dirname(__file__), "catalogue.toml"),
              "rb") as f:
        entries = tomllib.load(f)
    return {
        name: Framework(name, entry["title"], tuple(entry["pypi"]),
                        tuple(entry["debian"]), tuple(entry["modules"]))
        for name, entry in entries.items()
    }


@functools.cache
def by_distribution():
    """PyPI distribution name, as PEP 503 normalises it -> Framework."""
    return {canonicalize_name(d): fw
            for fw in frameworks().values() for d in fw.pypi}


@functools.cache
def by_debian_package():
    """Debian binary package name -> Framework."""
    return {p: fw for fw in frameworks().values() for p in fw.debian}
