"""The framework catalogue: the closed list of names a report may contain."""

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources


def normalise(name):
    """A distribution name as PEP 503 normalises it."""
    return re.sub(r"[-_.]+", "-", name).lower()


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
    text = resources.files(__package__).joinpath("catalogue.toml").read_text()
    return {
        name: Framework(name, entry["title"], tuple(entry["pypi"]),
                        tuple(entry["debian"]), tuple(entry["modules"]))
        for name, entry in tomllib.loads(text).items()
    }


@functools.cache
def by_distribution():
    """Normalised PyPI distribution name -> Framework."""
    return {normalise(d): fw for fw in frameworks().values() for d in fw.pypi}


@functools.cache
def by_debian_package():
    """Debian binary package name -> Framework."""
    return {p: fw for fw in frameworks().values() for p in fw.debian}
